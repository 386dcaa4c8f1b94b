"""`case.state_changed` CloudEvents for `case-updates`: what the repository applied, without sensitive data."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from consumers.apply import public_state

SOURCE = "case-repository"
_CASE_TIMES = ("createdAt", "updatedAt", "closedAt")
_ITEM_TIMES = {"history": ("at",), "incidents": ("at",), "tasks": ("dueAt",), "offers": ("validUntil",)}


@dataclass(frozen=True)
class StateChange:
    """A case's new state and the status it had before, so list feeds can tell a status change."""

    case: dict[str, Any]
    previous_status: str | None


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


def state_event(change: StateChange) -> tuple[bytes, bytes]:
    """(key, value) of the `case.state_changed` event for the case's current state."""
    case = change.case
    event = {
        "specversion": "1.0", "id": f"{case['_id']}:{case['version']}", "source": SOURCE,
        "type": "case.state_changed", "subject": case["_id"], "time": case["updatedAt"],
        "sequence": str(case["version"]), "datacontenttype": "application/json",
        "previousstatus": change.previous_status, "data": public_state(case),
    }
    return case["_id"].encode(), orjson.dumps(event, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


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
