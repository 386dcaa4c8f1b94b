"""Task rows: each process-engine task is its own record, readable by group and assignee without loading cases.

A row carries the visibility of its case (case type, branch, restricted, customer), so a caller's row scope is a
condition of the task query itself. The engine's fields are merged field by field with the same order stamps as
the case ([sequence or time, event id]); a claim is one conditional update of the row, so it never races the
version guard of its case, and an event that finds the row claimed meanwhile re-merges instead of overwriting.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pymongo import ASCENDING, IndexModel, InsertOne, ReturnDocument, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, OperationFailure

from errors import Conflict
from stores.case_scope import CaseScope, within_scope
from stores.database import DUPLICATE_KEY, Database
from stores.staged_records import STAGED_INDEX, StagedRecords
from stores.task_criteria import (ORDER_KEYS, OPEN_STATES, TaskCriteria, TaskOrder, after_filter, order_key_changes,
                                  order_keys, sort_spec, task_filter)

COLLECTION = "tasks"
# What a task row copies from its case: enough for the row scope and the dashboard's filters.
VISIBILITY_FIELDS = ("caseType", "branch", "restricted", "customerId")
_BOOKKEEPING = frozenset({"_id", "id", "caseId", "stamps", "version", "outbox", "stagedAt", *VISIBILITY_FIELDS,
                          *ORDER_KEYS})
MAX_MERGE_ATTEMPTS = 10
# A listed row leaves its write bookkeeping in the store.
_LIST_PROJECTION = {"outbox": 0, "stagedAt": 0, "stamps": 0}

INDEXES = [
    IndexModel([("caseId", ASCENDING)], name="case"),
    IndexModel([("id", ASCENDING)], name="task_id"),
    # Each list's filter, then its order's stored value (stores/task_criteria.py ORDER_FIELDS) and _id: the index
    # finds the rows in the order of the page, so a page reads `first` + 1 rows instead of sorting every match.
    # By candidate group, and the inbox's offered branch of its $or: the group, the order, then the branch's other
    # conditions (unassigned, open state) and the caller's branch when the row scope names one, so rows someone
    # holds, done or of another branch are skipped inside the index while it is walked in due order.
    IndexModel([("candidateGroups", ASCENDING), ("dueOrder", ASCENDING), ("_id", ASCENDING), ("assignee", ASCENDING),
                ("state", ASCENDING), ("branch", ASCENDING)], name="group_due_order"),
    # What I hold (the inbox's other branch, and the list by assignee).
    IndexModel([("assignee", ASCENDING), ("dueOrder", ASCENDING), ("_id", ASCENDING)], name="assignee_due_order"),
    # The unfiltered list in each order.
    IndexModel([("dueOrder", ASCENDING), ("_id", ASCENDING)], name="due_order"),
    IndexModel([("createdOrder", ASCENDING), ("_id", ASCENDING)], name="created_order"),
    IndexModel([("priorityOrder", ASCENDING), ("_id", ASCENDING)], name="priority_order"),
    # The calendar's held tasks due in a window (stores/calendar.py).
    IndexModel([("assignee", ASCENDING), ("state", ASCENDING), ("dueAt", ASCENDING)], name="assignee_state_due"),
    IndexModel([("branch", ASCENDING), ("state", ASCENDING), ("dueAt", ASCENDING)], name="branch_state_due"),
    STAGED_INDEX,
]
# Indexes an earlier version created and INDEXES replaces: dropped at startup, so writes stop paying for them.
SUPERSEDED_INDEXES = ("group_state_due", "group_assignee_state_branch_due")
INDEX_NOT_FOUND = 27  # MongoDB's IndexNotFound


@dataclass(frozen=True)
class TaskChange:
    """A task as one case write left it: its merged fields with their stamps, and the row version it was read at."""

    task: dict[str, Any]
    case_id: str
    visibility: dict[str, Any]
    base_version: int | None


def row_id(case_id: str, task_id: str) -> str:
    """A row's key: task ids come from the engine and are meant to be unique, but two cases' tasks never collide."""
    return f"{case_id}/{task_id}"


def merge_task(row: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """`row` with every field of `task` whose stamp is newer; fields a claim set keep their value otherwise."""
    merged = dict(row)
    stamps = dict(row.get("stamps") or {})
    for key, stamp in (task.get("stamps") or {}).items():
        if stamps.get(key) is None or stamp > stamps[key]:
            stamps[key] = stamp
            if key in task:
                merged[key] = task[key]
    merged["stamps"] = stamps
    return merged


def in_list_order(tasks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A case's tasks in the order of the earliest event naming each (the `id` stamp), as every list item is."""
    return sorted(tasks, key=lambda t: (t.get("stamps") or {}).get("id") or [])


def _key(change: TaskChange) -> str:
    return row_id(change.case_id, change.task["id"])


def _engine_fields(task: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in task.items() if k not in _BOOKKEEPING}


class TaskStore:
    def __init__(self, db: Database) -> None:
        self._tasks = db.collection(COLLECTION)
        self._staged = StagedRecords(self._tasks, "version")

    async def ensure_indexes(self) -> None:
        existing = await self._tasks.index_information()
        for name in SUPERSEDED_INDEXES:
            if name in existing:
                try:
                    await self._tasks.drop_index(name)
                except OperationFailure as error:
                    if error.code != INDEX_NOT_FOUND:  # another instance starting at the same time dropped it
                        raise
        await self._tasks.create_indexes(INDEXES)

    async def apply(self, changes: Sequence[TaskChange]) -> None:
        """Write what case writes decided about their tasks; idempotent, and safe against concurrent claims."""
        pending = list(changes)
        if not pending:
            return
        # First on the basis the case write read; after a lost race, on the rows as they are now.
        rows: dict[str, dict[str, Any]] | None = None
        for _attempt in range(MAX_MERGE_ATTEMPTS):
            operations = [self._operation(change, rows) for change in pending]
            pending = await self._write(operations, pending)
            if not pending:
                return
            found = await self._tasks.find({"_id": {"$in": [_key(c) for c in pending]}}).to_list(None)
            rows = {row["_id"]: row for row in found}
        raise Conflict(f"tasks {sorted(c.task['id'] for c in pending)} kept changing while being merged")

    @staticmethod
    def _operation(change: TaskChange, rows: dict[str, dict[str, Any]] | None) -> InsertOne | UpdateOne:
        key = _key(change)
        if rows is None:
            basis, version = change.task, change.base_version
        elif key in rows:
            basis, version = merge_task(rows[key], change.task), rows[key]["version"]
        else:
            basis, version = change.task, None
        fields = _engine_fields(basis)
        values = {**fields, **order_keys(fields), "stamps": basis.get("stamps", {}), **change.visibility}
        if version is None:
            return InsertOne({**values, "_id": key, "id": change.task["id"], "caseId": change.case_id, "version": 1})
        return UpdateOne({"_id": key, "version": version}, {"$set": values, "$inc": {"version": 1}})

    async def _write(self, operations: list[Any], targets: list[TaskChange]) -> list[TaskChange]:
        """Run the writes; return the changes whose guard failed or whose insert found the row already there."""
        try:
            result = await self._tasks.bulk_write(operations, ordered=False)
            duplicate: set[int] = set()
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise
            duplicate = {e["index"] for e in error.details["writeErrors"]}
            result = None
        updates = [i for i, op in enumerate(operations) if isinstance(op, UpdateOne)]
        matched = result.matched_count if result is not None else None
        if matched is not None and matched == len(updates) and not duplicate:
            return []
        # The bulk result does not say which guard failed: look at the versions now stored.
        ids = [_key(targets[i]) for i in updates]
        stored = {row["_id"]: row for row in await self._tasks.find(
            {"_id": {"$in": ids}}, {"stamps": 1, "version": 1}).to_list(None)} if ids else {}
        failed = [targets[i] for i in duplicate]
        for i in updates:
            change = targets[i]
            row = stored.get(_key(change))
            if row is None or merge_task(row, change.task)["stamps"] != row.get("stamps"):
                failed.append(change)
        return failed

    async def set_visibility(self, case_visibility: dict[str, dict[str, Any]]) -> None:
        """Copy each case's new visibility onto all of its task rows."""
        if case_visibility:
            await self._tasks.bulk_write([UpdateMany({"caseId": case_id}, {"$set": visibility})
                                          for case_id, visibility in case_visibility.items()], ordered=False)

    async def by_ids(self, task_ids: Iterable[str], *, scope: CaseScope) -> list[dict[str, Any]]:
        ids = list(dict.fromkeys(task_ids))
        return await self._tasks.find(within_scope({"id": {"$in": ids}}, scope, id_field="caseId")).to_list(None)

    async def find(self, criteria: TaskCriteria | None, order: TaskOrder, first: int,
                   after: tuple[Any, str] | None = None, *, scope: CaseScope) -> tuple[list[dict[str, Any]], bool]:
        """A page of visible task rows in `order` (each with its stored order value, `order_key(order)`), and
        whether more follow; one round trip, the filter and the sort in one index (INDEXES)."""
        query = within_scope(task_filter(criteria), scope, id_field="caseId")
        if after is not None:
            keyset = after_filter(order, after[0], after[1])
            query = {"$and": [query, keyset]} if query else keyset
        pipeline: list[dict[str, Any]] = [{"$match": query}, {"$sort": dict(sort_spec(order))}, {"$limit": first + 1},
                                          {"$project": _LIST_PROJECTION}]
        rows = await self._tasks.aggregate(pipeline).to_list(None)
        return rows[:first], len(rows) > first

    async def count(self, criteria: TaskCriteria | None, *, scope: CaseScope) -> int:
        return await self._tasks.count_documents(within_scope(task_filter(criteria), scope, id_field="caseId"))

    async def staged(self, older_than: datetime, limit: int) -> list[dict[str, Any]]:
        return await self._staged.staged(older_than, limit)

    async def clear_staged(self, relayed: Sequence[dict[str, Any]]) -> None:
        await self._staged.clear(relayed)

    async def visible(self, task_id: str, *, scope: CaseScope) -> dict[str, Any] | None:
        """The row of task `task_id` if the caller's row scope admits its case (claims decide on it)."""
        return await self._tasks.find_one(within_scope({"id": task_id}, scope, id_field="caseId"))

    async def change(self, row_key: str, precondition: dict[str, Any], values: dict[str, Any],
                     staged: Sequence[dict[str, Any]], *, scope: CaseScope) -> dict[str, Any] | None:
        """Set `values` on row `row_key` if it still meets `precondition` (and `scope`), staging `staged` (its history
        row and commands) in the same update; the row as written, or None when the precondition no longer holds."""
        return await self._tasks.find_one_and_update(
            within_scope({"_id": row_key, **precondition}, scope, id_field="caseId"),
            {"$set": {**values, **order_key_changes(values), "stagedAt": datetime.now(timezone.utc)},
             "$push": {"outbox": {"$each": list(staged)}}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
