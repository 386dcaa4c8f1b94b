"""The calendar's reads of tasks and cases: what an employee holds and the deadlines that come with it.

Each is one round trip whatever the number of entries, under the caller's row scope (task rows carry their case's
visibility; cases are filtered as every case read is). Appointments are read by stores/appointments.py.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from stores.case_scope import CaseScope, within_scope
from stores.cases import COLLECTION as CASES
from stores.database import Database
from stores.task_criteria import OPEN_STATES
from stores.tasks import COLLECTION as TASKS

_TASK_FIELDS = {"_id": 1, "id": 1, "caseId": 1, "customerId": 1, "name": 1, "dueAt": 1}
_CASE_FIELDS = {"_id": 1, "title": 1, "dueAt": 1, "closedAt": 1, "customerId": 1}


@dataclass(frozen=True)
class HeldTasks:
    """Of the open tasks someone holds: those due in the range, and every case they belong to."""

    due: list[dict[str, Any]]
    case_ids: list[str]


class CalendarStore:
    def __init__(self, db: Database) -> None:
        self._tasks = db.collection(TASKS)
        self._cases = db.collection(CASES)

    async def held_tasks(self, assignee: str, start: datetime, end: datetime, *, scope: CaseScope) -> HeldTasks:
        """The visible open tasks `assignee` holds: those due in [start, end), soonest first, and the ids of all
        their cases; one aggregate (the assignee/state/due index answers both)."""
        held = within_scope({"assignee": assignee, "state": {"$in": list(OPEN_STATES)}}, scope, id_field="caseId")
        facets = await self._tasks.aggregate([
            {"$match": held},
            {"$facet": {
                "due": [{"$match": {"dueAt": {"$gte": start, "$lt": end}}},
                        {"$sort": {"dueAt": ASCENDING, "_id": ASCENDING}}, {"$project": _TASK_FIELDS}],
                "cases": [{"$group": {"_id": "$caseId"}}, {"$sort": {"_id": ASCENDING}}],
            }},
        ]).to_list(None)
        result = facets[0] if facets else {"due": [], "cases": []}
        return HeldTasks(due=result["due"], case_ids=[c["_id"] for c in result["cases"]])

    async def cases(self, deadline_case_ids: Iterable[str], start: datetime, end: datetime,
                    other_case_ids: Iterable[str], *, scope: CaseScope) -> dict[str, dict[str, Any]]:
        """Visible cases by id: the open ones of `deadline_case_ids` whose deadline (`dueAt`) is in [start, end),
        and every one of `other_case_ids` (for their titles); one round trip."""
        clauses = []
        deadlines = sorted(set(deadline_case_ids))
        others = sorted(set(other_case_ids))
        if deadlines:
            clauses.append({"_id": {"$in": deadlines}, "closedAt": None, "dueAt": {"$gte": start, "$lt": end}})
        if others:
            clauses.append({"_id": {"$in": others}})
        if not clauses:
            return {}
        query = clauses[0] if len(clauses) == 1 else {"$or": clauses}
        found = await self._cases.find(within_scope(query, scope), _CASE_FIELDS).to_list(None)
        return {doc["_id"]: doc for doc in found}
