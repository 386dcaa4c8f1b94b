"""`myNotifications`: what concerns the signed-in employee, told as it happens (issue 10, CONTRACT §5).

Pushes, for the caller (`preferred_username` = a task's `assignee`):

* TASK_ASSIGNED: a task becomes mine — a manager's `assignTask`, or the engine setting `assignee` to me (a task
  created or updated so). My own `claimTask` is not news to me: nothing is pushed for a change I made (`by`).
* TASK_CHANGED: a task I hold changes — the engine updates or completes it, a manager releases or reassigns it.
* INCIDENT_RAISED: an incident appears in a case I hold, i.e. in which, by the state the change published, an open
  task is assigned to me.

"Held" is tracked per subscriber as the pushes go by: the tasks assigned to me that are open or awaiting the
engine's completion (COMPLETION_REQUESTED), each with the fields a person notices (`_signature`). One store read
fills it when the subscription starts (after it is attached to the bus, so nothing falls in between); after that
every decision is made on the event in hand — no store read per push. A redelivered event finds the same
signature, or a version already seen, and pushes nothing again. Row scope, token expiry and the per-push audit
are `resolvers/subscriptions.py`'s, as for every live feed.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from consumers.publication import TASK_CHANGED, Published, PublishedRecordChange, PublishedState
from context import Context
from resolvers.employees import employee
from resolvers.subscriptions import admitted, audit_push
from resolvers.task_claims import COMPLETION_REQUESTED
from stores.task_criteria import OPEN_STATES, TaskCriteria, TaskOrder

HELD_STATES = (*OPEN_STATES, COMPLETION_REQUESTED)
# The start-up read of what I hold: more open tasks than this on one desk is not a desk.
MAX_HELD = 1_000
_TASK_ENTRIES = frozenset({"TASK_CREATED", "TASK_UPDATED", "TASK_COMPLETED"})
# What a person notices about their task; bookkeeping and order stamps are not news.
_NOTICED = ("name", "state", "assignee", "candidateGroups", "priority", "formKey", "participantId")


class NotificationKind(Enum):
    TASK_ASSIGNED = "TASK_ASSIGNED"
    TASK_CHANGED = "TASK_CHANGED"
    INCIDENT_RAISED = "INCIDENT_RAISED"


@dataclass(frozen=True)
class Notice:
    """One notification, as schema/notifications.py shows it; `id` is stable for the event it came from."""

    id: str
    kind: NotificationKind
    case_id: str
    task_id: str | None
    incident_id: str | None
    summary: str
    at: datetime | None


def _moment(value: Any) -> str | None:
    """A time as one comparable text whichever way it arrived (a store's naive UTC, an aware datetime, wire text)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()
    return value


def _signature(task: dict[str, Any]) -> tuple[Any, ...]:
    noticed = tuple(tuple(v) if isinstance(v := task.get(name), list) else v for name in _NOTICED)
    return (*noticed, _moment(task.get("dueAt")))


def _label(task: dict[str, Any]) -> str:
    return task.get("name") or task["id"]


class Desk:
    """What one employee holds, as far as the pushes seen so far tell, and what each new push means to them."""

    def __init__(self, username: str, held_rows: Iterable[dict[str, Any]] = ()) -> None:
        self._username = username
        self._held: dict[tuple[str, str], tuple[Any, ...]] = {
            (row["caseId"], row["id"]): _signature(row) for row in held_rows}
        # The newest state version seen of each case I hold, so a redelivered state tells nothing twice.
        self._versions: dict[str, int] = {}

    def notices(self, published: Published) -> list[Notice]:
        if isinstance(published, PublishedState):
            return self._state_notices(published)
        if published.type == TASK_CHANGED:
            return self._task_change_notices(published)
        return []  # negotiated terms concern no one's desk

    def _state_notices(self, published: PublishedState) -> list[Notice]:
        state = published.state
        case_id, version = published.case_id, state.get("version", 0)
        if version <= self._versions.get(case_id, -1):
            return []
        tasks = {task["id"]: task for task in state.get("tasks") or ()}
        notices: list[Notice] = []
        for entry in state.get("historyAdded") or ():
            details = entry.get("details") or {}
            task = tasks.get(details.get("taskId"))
            if entry.get("kind") in _TASK_ENTRIES and task is not None:
                kind = self._observe(case_id, task, by=None)
                if kind is not None:
                    notices.append(self._task_notice(entry["id"], kind, case_id, task, None, entry.get("at")))
        # The state is the truth about every task of the case, also those whose entries did not fit the event.
        for task in tasks.values():
            self._observe(case_id, task, by=None)
        if any(t.get("assignee") == self._username and t.get("state") in OPEN_STATES for t in tasks.values()):
            self._versions[case_id] = version
            notices += [
                Notice(id=entry["id"], kind=NotificationKind.INCIDENT_RAISED, case_id=case_id, task_id=None,
                       incident_id=(entry.get("details") or {}).get("incidentId"),
                       summary=entry.get("summary") or "Incident raised", at=entry.get("at"))
                for entry in state.get("historyAdded") or () if entry.get("kind") == "INCIDENT_RAISED"]
        else:
            self._versions.pop(case_id, None)
        return notices

    def _task_change_notices(self, change: PublishedRecordChange) -> list[Notice]:
        task = change.data.get("task")
        if not isinstance(task, dict) or "id" not in task:
            return []
        kind = self._observe(change.case_id, task, by=change.data.get("by"))
        if kind is None:
            return []
        return [self._task_notice(change.id, kind, change.case_id, task, change.data.get("by"), change.at)]

    def _observe(self, case_id: str, task: dict[str, Any], *, by: str | None) -> NotificationKind | None:
        """Take the task as it now stands; say what that means to me (None: nothing, or my own doing)."""
        key = (case_id, task["id"])
        before = self._held.get(key)
        signature = _signature(task)
        if task.get("assignee") == self._username and task.get("state") in HELD_STATES:
            self._held[key] = signature
            mine = True
        else:
            self._held.pop(key, None)
            mine = False
        if by == self._username:
            return None
        if before is None:
            return NotificationKind.TASK_ASSIGNED if mine else None
        return NotificationKind.TASK_CHANGED if signature != before else None

    def _task_notice(self, notice_id: str, kind: NotificationKind, case_id: str, task: dict[str, Any],
                     by: str | None, at: datetime | None) -> Notice:
        if kind is NotificationKind.TASK_ASSIGNED:
            summary = f"Task assigned to you: {_label(task)}" + (f" by {by}" if by else "")
        elif task.get("assignee") != self._username:
            summary = f"Task {_label(task)} is no longer yours: " + (
                f"now held by {task['assignee']}" if task.get("assignee") else "released") + (f" by {by}" if by else "")
        else:
            summary = f"Your task changed: {_label(task)} ({task.get('state')})"
        return Notice(id=notice_id, kind=kind, case_id=case_id, task_id=task["id"], incident_id=None,
                      summary=summary, at=at)


async def my_notifications(context: Context) -> AsyncIterator[Notice]:
    """The caller's notifications until their token expires; employees only."""
    principal = employee(context, "receive notifications")  # a system or panel token holds no tasks
    with context.services.bus.subscribe(None, record_changes=True) as queue:
        held, _ = await context.services.tasks.find(
            TaskCriteria(assignee=principal.username, state=list(HELD_STATES)), TaskOrder(), MAX_HELD,
            scope=context.scope)
        desk = Desk(principal.username, held)
        async for published in admitted(context, principal, queue):
            for notice in desk.notices(published):
                audit_push(context, published)
                yield notice
