"""Ingest over HTTP: `publishCaseEvent` runs the same pipeline as the Kafka consumer."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from consumers.cloudevents import InvalidEvent, parse_envelope
from consumers.pipeline import Deliverer, IngestResult, IngestStatus
from context import Context
from errors import BadInput, Conflict


async def publish_case_event(
    context: Context, *, event_id: str, source: str, event_type: str, subject: str,
    time: datetime | None, sequence: str | None, data: Any,
) -> IngestResult:
    envelope = {
        "specversion": "1.0", "id": event_id, "source": source, "type": event_type, "subject": subject,
        "time": time.isoformat() if time else None, "sequence": sequence,
        "datacontenttype": "application/json", "data": data,
    }
    try:
        event = parse_envelope(envelope)
    except InvalidEvent as error:
        await context.services.dead_letters.record(envelope, error.reason, origin="graphql")
        raise BadInput(f"event {event_id}: {error.reason}") from error
    principal = context.principal
    deliverer = Deliverer(principal.subject, principal.username) if principal else Deliverer("anonymous")
    [result] = await context.services.pipeline.ingest([event], actor=deliverer)
    context.audit.case_ids.add(subject)
    if result.status is IngestStatus.REJECTED:
        # Kafka would dead-letter it; over HTTP it is recorded the same way before the caller hears CONFLICT.
        await context.services.dead_letters.record(envelope, result.reason or "rejected", origin="graphql",
                                                   reason_class="rejected")
        raise Conflict(f"event {event_id}: {result.reason}")
    context.audit.applied(event_id, [])
    return result
