"""Notes: what an employee wrote about a case or a customer, each its own record, never part of the case document.

A row is `_id`, `caseId` (None on a customer's note), `customerId` (the case's customer on a case note, so the
audit and the customer card can name them), `text`, `author` (preferred_username), `authorId` (sub), `channel`,
`at` (when it was added), `editedAt` (when its text was last changed), `versions` (every earlier text with the
moment it was written, oldest first), `version` (a counter guarding edits), `deleted`, and `outbox` / `stagedAt`
(what the write implies elsewhere — a case note's history row, the `case.note_changed` message — staged in the same
write and relayed by consumers/staging.py, so a crash between the two loses neither). A delete only sets
`deleted`: the record stays for the audit, and every read here leaves it out.

Row scope is not copied onto the row: a case note is visible to whoever may see its case, a customer note to
whoever may see any case of that customer, and resolvers/notes.py asks the scoped case and customer loaders for
that. A copy of the case's visibility would go stale when the case moves branch (notes are not case writes, so
nothing would re-stamp it, as the pipeline does for task rows).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from stores.database import Database
from stores.staged_records import STAGED_INDEX, StagedRecords

COLLECTION = "notes"

INDEXES = [
    # Case.notes and Customer.notes, newest first.
    IndexModel([("caseId", ASCENDING), ("at", DESCENDING)], name="case_newest"),
    IndexModel([("customerId", ASCENDING), ("caseId", ASCENDING), ("at", DESCENDING)], name="customer_newest"),
    STAGED_INDEX,
]
_LIVE = {"deleted": {"$ne": True}}
_NEWEST_FIRST = [("at", DESCENDING), ("_id", DESCENDING)]


def _by(key: str, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


class NoteStore:
    def __init__(self, db: Database) -> None:
        self._notes = db.collection(COLLECTION)
        self._staged = StagedRecords(self._notes, "version")

    async def ensure_indexes(self) -> None:
        await self._notes.create_indexes(INDEXES)

    async def add(self, note: dict[str, Any], staged: Sequence[dict[str, Any]], at: datetime) -> dict[str, Any]:
        """Insert a new note row (with its `_id`) with the effects it stages; the row as written."""
        row = {"versions": [], "version": 1, "deleted": False, **note, "outbox": list(staged),
               **({"stagedAt": at} if staged else {})}
        await self._notes.insert_one(row)
        return row

    async def get(self, note_id: str) -> dict[str, Any] | None:
        """The note, unless deleted; the caller decides whether its case or customer is visible."""
        return await self._notes.find_one({"_id": note_id, **_LIVE})

    async def for_cases(self, case_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The live notes of these cases, newest first, by case id; one round trip."""
        rows = await self._notes.find({"caseId": {"$in": list(case_ids)}, **_LIVE}).sort(_NEWEST_FIRST).to_list(None)
        return _by("caseId", rows)

    async def for_customers(self, customer_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The live notes written on these customers (not on their cases), newest first, by customer id."""
        rows = await self._notes.find(
            {"customerId": {"$in": list(customer_ids)}, "caseId": None, **_LIVE}).sort(_NEWEST_FIRST).to_list(None)
        return _by("customerId", rows)

    async def change_text(self, row: dict[str, Any], text: str, at: datetime, staged: Sequence[dict[str, Any]],
                          sealed_text: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        """Replace the text of `row` as read (its `version`), keeping the old text in `versions`; the row as
        written, or None when it changed or was deleted meanwhile. `sealed_text`: the sealed originals of what the
        new text had redacted (access/sensitive_text.py); the old text's go with it into `versions`."""
        previous = {"text": row["text"], "at": row.get("editedAt") or row["at"]}
        if row.get("sealedText"):
            previous["sealedText"] = row["sealedText"]
        return await self._notes.find_one_and_update(
            {"_id": row["_id"], "version": row["version"], **_LIVE},
            {"$set": {"text": text, "editedAt": at, "stagedAt": at, "sealedText": sealed_text or []},
             "$push": {"versions": previous, "outbox": {"$each": list(staged)}}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def mark_deleted(self, row: dict[str, Any], at: datetime, by: str,
                           staged: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
        """Hide `row` as read (its `version`); the row as written, or None when it changed or was deleted meanwhile."""
        return await self._notes.find_one_and_update(
            {"_id": row["_id"], "version": row["version"], **_LIVE},
            {"$set": {"deleted": True, "deletedAt": at, "deletedBy": by, "stagedAt": at},
             "$push": {"outbox": {"$each": list(staged)}}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def staged(self, older_than: datetime, limit: int) -> list[dict[str, Any]]:
        return await self._staged.staged(older_than, limit)

    async def clear_staged(self, relayed: Sequence[dict[str, Any]]) -> None:
        await self._staged.clear(relayed)

