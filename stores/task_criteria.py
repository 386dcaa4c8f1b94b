"""Plain filter and order values for task queries (the dashboard's lists), and their MongoDB form."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from stores.case_scope import combined

# The states in which a task is still to be done (claims and the lists read this one list).
OPEN_STATES = ("CREATED", "ASSIGNED", "READY", "RESERVED", "IN_PROGRESS")

# Public order names -> stored field, the value that stands in for a missing one, and the field of the row that
# holds the order value (the field, or the stand-in where the field is missing): a task without a due date is due
# last, one without a priority is the least urgent, one recorded before `createdAt` was kept the oldest. The order
# value is stored on the row at each write (`order_keys`), so an index on (filter..., order value, _id) serves the
# sort; computed in the pipeline, as it once was, no index could serve it and every list was a blocking sort.
ORDER_FIELDS: dict[str, tuple[str, Any, str]] = {
    "DUE_AT": ("dueAt", datetime(9999, 12, 31, tzinfo=timezone.utc), "dueOrder"),
    "CREATED_AT": ("createdAt", datetime(1970, 1, 1, tzinfo=timezone.utc), "createdOrder"),
    "PRIORITY": ("priority", -(2**31) - 1, "priorityOrder"),  # below every priority the event model admits (an int32)
}
# The stored order values: write bookkeeping, never published or listed as the engine's fields.
ORDER_KEYS = tuple(key for _stored, _missing, key in ORDER_FIELDS.values())


def order_keys(row: dict[str, Any]) -> dict[str, Any]:
    """The order values of a row (or of a task's fields about to be written as one): every writer sets them."""
    return {key: missing if row.get(stored) is None else row[stored]
            for stored, missing, key in ORDER_FIELDS.values()}


def order_key_changes(values: dict[str, Any]) -> dict[str, Any]:
    """The order values that setting `values` on a row changes (a claim sets none of the ordered fields today)."""
    return {key: missing if values[stored] is None else values[stored]
            for stored, missing, key in ORDER_FIELDS.values() if stored in values}


def order_key(order: TaskOrder) -> str:
    """The row's field that holds its value in `order` (cursors record it)."""
    return ORDER_FIELDS[order.field][2]


@dataclass(frozen=True)
class Inbox:
    """One person's tasks: those they hold, and the open unassigned ones offered to any of `groups`."""

    assignee: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class TaskCriteria:
    state: list[str] | None = None
    case_type: list[str] | None = None
    candidate_group: list[str] | None = None
    assignee: str | None = None
    unassigned: bool | None = None
    customer_id: str | None = None
    case_id: str | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    overdue: bool | None = None
    # The moment `overdue` is judged at; the caller passes its clock so the filter stays a pure function.
    now: datetime | None = None
    inbox: Inbox | None = None


@dataclass(frozen=True)
class TaskOrder:
    field: str = "DUE_AT"
    descending: bool = False

    @property
    def name(self) -> str:
        """What a cursor is bound to: a position in one order means nothing in another."""
        return f"task:{self.field}:{'DESC' if self.descending else 'ASC'}"


def matching_groups(token_groups: Iterable[str]) -> tuple[str, ...]:
    """Every candidate group the token's groups match: a group `g` itself, and each tail of a Keycloak group path
    after a `/` (`/bank/mortgage-advisors` matches `mortgage-advisors` and `bank/mortgage-advisors`)."""
    names: dict[str, None] = {}
    for group in token_groups:
        names[group] = None
        for i, char in enumerate(group):
            if char == "/" and group[i + 1:]:
                names[group[i + 1:]] = None
    return tuple(names)


def _inbox_filter(inbox: Inbox) -> dict[str, Any]:
    # Each branch of the $or is served by its own index: assignee_state_due, and group_assignee_state_branch_due
    # (multikey).
    mine: dict[str, Any] = {"assignee": inbox.assignee}
    if not inbox.groups:
        return mine
    offered = {"assignee": None, "candidateGroups": {"$in": list(inbox.groups)}, "state": {"$in": list(OPEN_STATES)}}
    return {"$or": [mine, offered]}


def _overdue_filter(overdue: bool, now: datetime | None) -> dict[str, Any]:
    if now is None:
        raise ValueError("overdue needs the moment it is judged at (TaskCriteria.now)")
    if overdue:
        return {"dueAt": {"$lt": now}, "state": {"$in": list(OPEN_STATES)}}
    return {"$or": [{"dueAt": None}, {"dueAt": {"$gte": now}}, {"state": {"$nin": list(OPEN_STATES)}}]}


def task_filter(criteria: TaskCriteria | None) -> dict[str, Any]:
    """MongoDB filter for `criteria` (every given condition must hold); the caller adds the row scope."""
    if criteria is None:
        return {}
    clauses: list[dict[str, Any]] = []
    if criteria.inbox is not None:
        clauses.append(_inbox_filter(criteria.inbox))
    for stored, values in (("state", criteria.state), ("caseType", criteria.case_type),
                           ("candidateGroups", criteria.candidate_group)):
        if values is not None:
            clauses.append({stored: {"$in": list(values)}})
    for stored, value in (("assignee", criteria.assignee), ("customerId", criteria.customer_id),
                          ("caseId", criteria.case_id)):
        if value is not None:
            clauses.append({stored: value})
    if criteria.unassigned is not None:
        clauses.append({"assignee": None} if criteria.unassigned else {"assignee": {"$ne": None}})
    due: dict[str, Any] = {}
    if criteria.due_after is not None:
        due["$gte"] = criteria.due_after
    if criteria.due_before is not None:
        due["$lt"] = criteria.due_before
    if due:
        clauses.append({"dueAt": due})
    if criteria.overdue is not None:
        clauses.append(_overdue_filter(criteria.overdue, criteria.now))
    return combined(clauses)


def after_filter(order: TaskOrder, value: Any, last_id: str) -> dict[str, Any]:
    """Keyset condition: rows strictly after (value, last_id) in `order` (on the stored order value)."""
    op = "$lt" if order.descending else "$gt"
    key = order_key(order)
    return {"$or": [{key: {op: value}}, {key: value, "_id": {op: last_id}}]}


def sort_spec(order: TaskOrder) -> list[tuple[str, int]]:
    direction = -1 if order.descending else 1
    return [(order_key(order), direction), ("_id", direction)]
