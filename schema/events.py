"""Ingest over HTTP: the `publishCaseEvent` mutation, its input and result."""
from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import events as event_rules


@strawberry.input(description="A CloudEvent of CONTRACT §2; `subject` is the case id.")
class CaseEventInput:
    id: strawberry.ID
    source: str
    type: str
    subject: strawberry.ID
    time: datetime | None = None
    sequence: str | None = None
    data: JSON


@strawberry.enum
class PublishStatus(Enum):
    APPLIED = "APPLIED"
    DUPLICATE = "DUPLICATE"
    PARKED = "PARKED"


@strawberry.type
class PublishResult:
    event_id: strawberry.ID
    status: PublishStatus


@strawberry.type
class EventMutations:
    @strawberry.mutation(description="Ingest one CloudEvent through the same pipeline as Kafka.")
    async def publish_case_event(self, info: Info, event: CaseEventInput) -> PublishResult:
        result = await event_rules.publish_case_event(
            info.context, event_id=event.id, source=event.source, event_type=event.type,
            subject=event.subject, time=event.time, sequence=event.sequence, data=event.data,
        )
        return PublishResult(event_id=result.event_id, status=PublishStatus(result.status.value))
