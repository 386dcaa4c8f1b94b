"""Ingest over HTTP: the `publishCaseEvent` input and result."""
from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON


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
