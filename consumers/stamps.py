"""Order stamps: every state field remembers the order ([sequence or time, event id]) of the event that set it."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from consumers.cloudevents import CaseEvent

Order = list[Any]


def merge_stamped(target: dict[str, Any], values: dict[str, Any], order: Order) -> None:
    """Set each value whose order is newer than the one that last set that field; remember the order."""
    stamps = target.setdefault("stamps", {})
    for key, value in values.items():
        current = stamps.get(key)
        if current is None or order > current:
            target[key] = value
            stamps[key] = order


def history_entry(event: CaseEvent, kind: str, summary: str, at: datetime | None = None) -> dict[str, Any]:
    """A history entry for `event`, told by the system that sent it."""
    return {
        "id": event.id, "eventId": event.id, "kind": kind, "summary": summary,
        "actor": {"type": "SYSTEM", "id": event.source, "name": None}, "channel": None,
        "at": at or event.time or datetime.now(timezone.utc), "details": None,
    }
