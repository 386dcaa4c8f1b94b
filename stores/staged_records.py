"""Bookkeeping shared by the records that stage their own effects (task rows, negotiated terms, notes,
appointments): a write pushes what it implies onto the record's `outbox` and sets `stagedAt`; consumers/staging.py
relays it and then clears it here, unless the record changed since (its guard field moved on)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne

# Every such collection indexes its staged records, so the relay loop's sweep reads only those.
STAGED_INDEX = IndexModel([("stagedAt", ASCENDING)], name="staged", sparse=True)


class StagedRecords:
    def __init__(self, collection: Any, guard: str) -> None:
        """`guard`: the field every write of a record increments (`version`, `revision`)."""
        self._collection = collection
        self._guard = guard

    async def staged(self, older_than: datetime, limit: int) -> list[dict[str, Any]]:
        """Records whose staged effects were not relayed (their writer stopped before it could)."""
        return await self._collection.find(
            {"stagedAt": {"$lt": older_than}}, {"outbox": 1, self._guard: 1, "caseId": 1, "customerId": 1},
        ).limit(limit).to_list(None)

    async def clear(self, relayed: Sequence[dict[str, Any]]) -> None:
        """Forget the staged effects of these records (as read) unless someone changed them since."""
        if relayed:
            await self._collection.bulk_write([
                UpdateOne({"_id": record["_id"], self._guard: record[self._guard]},
                          {"$set": {"outbox": []}, "$unset": {"stagedAt": ""}})
                for record in relayed], ordered=False)
