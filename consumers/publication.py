"""`case.state_changed` CloudEvents for `case-updates`: what the repository applied, without sensitive data.

The event carries the case's new state and the history entries this change added (`data.historyAdded`), never
the whole history, so its size does not grow with the case's age. A change that added more entries than fit in
`ENTRIES_BUDGET_BYTES` carries the newest that fit and says how many it added in all (`historyAddedCount`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from consumers.apply import public_state
from consumers.cloudevents import SOURCE

_CASE_TIMES = ("createdAt", "updatedAt", "closedAt")
_ITEM_TIMES = {"historyAdded": ("at",), "incidents": ("at", "lastRetryAt"), "tasks": ("dueAt",), "offers": ("validUntil",)}
# Kafka's default message limit is 1 MiB: the state plus this many bytes of entries stays well below it.
ENTRIES_BUDGET_BYTES = 256 * 1024
_ENTRY_FIELDS = ("id", "kind", "actor", "channel", "at", "summary", "details")
_WIRE = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


@dataclass(frozen=True)
class StateChange:
    """A case's new state, the status it had before (so list feeds can tell a status change) and the history
    entries the change added."""

    case: dict[str, Any]
    previous_status: str | None
    added: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class PublishedState:
    state: dict[str, Any]
    previous_status: str | None

    @property
    def case_id(self) -> str:
        return self.state["id"]

    @property
    def status_changed(self) -> bool:
        return self.state.get("status") != self.previous_status


def state_event(change: StateChange) -> dict[str, Any]:
    """The `case.state_changed` CloudEvent for the case's new state; its id is stable (case id and version)."""
    case = change.case
    data = public_state(case)
    data["historyAdded"] = _entries_within_budget(change.added)
    data["historyAddedCount"] = len(change.added)
    return {
        "specversion": "1.0", "id": f"{case['_id']}:{case['version']}", "source": SOURCE,
        "type": "case.state_changed", "subject": case["_id"], "time": case["updatedAt"],
        "sequence": str(case["version"]), "datacontenttype": "application/json",
        "previousstatus": change.previous_status, "data": data,
    }


def _entries_within_budget(added: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The newest entries whose encoded size fits the budget, oldest first."""
    chosen: list[dict[str, Any]] = []
    size = 0
    for entry in sorted(added, key=lambda e: (e["at"], e["id"]), reverse=True):
        public = {name: entry.get(name) for name in _ENTRY_FIELDS}
        size += len(orjson.dumps(public, option=_WIRE))
        if size > ENTRIES_BUDGET_BYTES:
            break
        chosen.append(public)
    return chosen[::-1]


def wire_value(event: dict[str, Any]) -> bytes:
    """A CloudEvent as the bytes of a structured-mode Kafka message."""
    return orjson.dumps(event, option=_WIRE)


def _time(value: Any) -> Any:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value


def state_from_event(value: bytes) -> PublishedState:
    """The case state carried by a `case.state_changed` event, with its timestamps as datetimes."""
    event = orjson.loads(value)
    state = event["data"]
    for name in _CASE_TIMES:
        state[name] = _time(state.get(name))
    for list_name, fields in _ITEM_TIMES.items():
        for item in state.get(list_name, ()):
            for name in fields:
                item[name] = _time(item.get(name))
    return PublishedState(state, event.get("previousstatus"))
