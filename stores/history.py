"""History rows: one record per entry of a case's history, so a case's document never grows with its story.

A row's `_id` is the id of the event that added it (unique across the repository), `id` the entry's own id
(the action id of `case.action_recorded`, else the event id) and `caseId` its case. Rows are only ever
inserted: appending the same event's row again is a no-op, which makes every write of them idempotent.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import DESCENDING, IndexModel
from pymongo.errors import BulkWriteError

from stores.database import DUPLICATE_KEY, Database

COLLECTION = "history"

INDEXES = [
    # A case's history, newest first, and the customer timeline over several cases (a merge of their ranges).
    IndexModel([("caseId", DESCENDING), ("at", DESCENDING), ("id", DESCENDING)], name="case_newest"),
]
_ENTRY = {"_id": 0, "id": 1, "caseId": 1, "kind": 1, "actor": 1, "channel": 1, "at": 1, "summary": 1, "details": 1,
          # What free text had redacted, sealed under the event's id (access/sensitive_text.py).
          "eventId": 1, "sealedText": 1}


class HistoryStore:
    def __init__(self, db: Database) -> None:
        self._rows = db.collection(COLLECTION)

    async def ensure_indexes(self) -> None:
        await self._rows.create_indexes(INDEXES)

    async def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows (each with `_id` = its event id); rows already there are left as they are."""
        if not rows:
            return
        try:
            await self._rows.insert_many(list(rows), ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise

    async def page(self, case_ids: Sequence[str], first: int, after: tuple[datetime, str] | None = None,
                   *, until: datetime | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Entries of these cases, newest first, after the keyset `after` (at, id); whether more follow."""
        query: dict[str, Any] = {"caseId": case_ids[0] if len(case_ids) == 1 else {"$in": list(case_ids)}}
        if until is not None:
            query["at"] = {"$lte": until}
        if after is not None:
            at, entry_id = after
            keyset = {"$or": [{"at": {"$lt": at}}, {"at": at, "id": {"$lt": entry_id}}]}
            query = {**query, **keyset} if until is None else {"$and": [query, keyset]}
        rows = await self._rows.find(query, _ENTRY).sort(
            [("at", DESCENDING), ("id", DESCENDING)]).limit(first + 1).to_list(None)
        return rows[:first], len(rows) > first

    async def count(self, case_ids: Sequence[str]) -> int:
        """How many entries these cases' histories hold."""
        return await self._rows.count_documents(
            {"caseId": case_ids[0] if len(case_ids) == 1 else {"$in": list(case_ids)}})
