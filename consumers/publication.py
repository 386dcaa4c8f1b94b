"""CloudEvents for `case-updates`: what the repository applied, without sensitive data.

`case.state_changed` follows each case write. Records of a case written without a case write (a claim on a task
row, negotiated terms) publish `case.task_changed` / `case.terms_changed` (`record_event`), so every instance
hears of them too (response caches, `myNotifications`); both carry the case's visibility (case type, branch,
restricted, customer) so a subscriber's row scope decides on the event alone.

`case.state_changed` carries the case's new state and the history entries this change added (`data.historyAdded`), never
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
_ITEM_TIMES = {"historyAdded": ("at",), "incidents": ("at", "lastRetryAt"), "tasks": ("dueAt", "createdAt"),
               "offers": ("validUntil",)}
TASK_CHANGED = "case.task_changed"
TERMS_CHANGED = "case.terms_changed"
APPOINTMENT_SCHEDULED = "case.appointment_scheduled"
# A note on a case, or on a customer (then `caseId` is null and the message is keyed by the customer id).
NOTE_CHANGED = "case.note_changed"
RECORD_CHANGE_TYPES = frozenset({TASK_CHANGED, TERMS_CHANGED, APPOINTMENT_SCHEDULED, NOTE_CHANGED})
# What a record-change event says of its case: enough for a subscriber's row scope and a cache's eviction.
CASE_VISIBILITY = ("customerId", "caseType", "branch", "restricted")
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
    def customer_id(self) -> str | None:
        return self.state.get("customerId")

    @property
    def case(self) -> dict[str, Any]:
        """The case as the row scope and the audit read it."""
        return self.state

    @property
    def status_changed(self) -> bool:
        return self.state.get("status") != self.previous_status


@dataclass(frozen=True)
class PublishedRecordChange:
    """A `case.task_changed` or `case.terms_changed` event: a record of a case changed without a case write."""

    id: str
    type: str
    at: datetime | None
    data: dict[str, Any]

    @property
    def case_id(self) -> str | None:
        """None only for a note written on a customer rather than on one of their cases."""
        return self.data["caseId"]

    @property
    def customer_id(self) -> str | None:
        return self.data.get("customerId")

    @property
    def case(self) -> dict[str, Any]:
        """The case as the row scope and the audit read it: its id and visibility."""
        return {"id": self.case_id, **{name: self.data.get(name) for name in CASE_VISIBILITY}}


Published = PublishedState | PublishedRecordChange


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


def public_task(row: dict[str, Any]) -> dict[str, Any]:
    """A task row's public fields, by the very rule that lists tasks in `case.state_changed` (no stamps, versions,
    staging or visibility bookkeeping)."""
    return public_state({"_id": row["caseId"], "tasks": [row]})["tasks"][0]


def record_event(event_type: str, event_id: str, record: dict[str, Any], at: datetime,
                 data: dict[str, Any]) -> dict[str, Any]:
    """A `case.task_changed` / `case.terms_changed` CloudEvent about `record` (a task row or terms document, which
    carry their case's id and visibility); its id is drawn once by the writer and staged with the change."""
    case_id = record["caseId"]
    event = {
        "specversion": "1.0", "id": event_id, "source": SOURCE, "type": event_type, "subject": case_id,
        "time": at.isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
        "data": {"caseId": case_id, **{name: record.get(name) for name in CASE_VISIBILITY}, **data},
    }
    if case_id is None:
        del event["subject"]  # optional in CloudEvents: a customer's note is about no case
    return event


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


def published_from_event(value: bytes) -> Published:
    """What a `case-updates` message says, by its type: a case's new state or a record's change. A type this
    version does not know is a ValueError (the listener skips it, as any unreadable message)."""
    event = orjson.loads(value)
    if not isinstance(event, dict):
        raise ValueError("a case-updates message is a JSON object")
    event_type = event.get("type", "case.state_changed")
    if event_type == "case.state_changed":
        return _state(event)
    if event_type not in RECORD_CHANGE_TYPES:
        raise ValueError(f"unknown case-updates event type {event_type!r}")
    data = event["data"]
    if not isinstance(data, dict) or not isinstance(event.get("id"), str) or not (
            isinstance(data.get("caseId"), str)
            or (event_type == NOTE_CHANGED and data.get("caseId") is None and isinstance(data.get("customerId"), str))):
        raise ValueError(f"{event_type} without an id or data.caseId")
    task = data.get("task")
    if isinstance(task, dict):
        for name in _ITEM_TIMES["tasks"]:
            task[name] = _time(task.get(name))
    return PublishedRecordChange(id=event["id"], type=event_type, at=_time(event.get("time")), data=data)


def _state(event: dict[str, Any]) -> PublishedState:
    """The case state carried by a `case.state_changed` event, with its timestamps as datetimes."""
    state = event["data"]
    for name in _CASE_TIMES:
        state[name] = _time(state.get(name))
    for list_name, fields in _ITEM_TIMES.items():
        for item in state.get(list_name, ()):
            for name in fields:
                item[name] = _time(item.get(name))
    return PublishedState(state, event.get("previousstatus"))
