"""The event journal: one record per accepted event id (unique), and events parked until their case exists."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError

from stores.database import DUPLICATE_KEY, Database
from stores.protection import FieldCipher, open_envelope, seal_envelope

COLLECTION = "events"
APPLIED = "APPLIED"
PARKED = "PARKED"

INDEXES = [IndexModel([("caseId", ASCENDING), ("status", ASCENDING)], name="case_status")]


class EventStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self._events = db.collection(COLLECTION)
        # A parked event still carries PESELs and phones in clear: it is stored sealed as a whole.
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        # _id is the event id: MongoDB's own unique index enforces "each event id once".
        await self._events.create_indexes(INDEXES)

    async def record_applied(self, records: Sequence[dict[str, Any]]) -> None:
        """Journal applied events; idempotent, so a retried batch leaves the same records."""
        if not records:
            return
        now = datetime.now(timezone.utc)
        try:
            # Most applied events are new to the journal: one insert, no per-record upsert lookups.
            await self._events.insert_many([
                {"_id": r["id"], "caseId": r["caseId"], "type": r["type"], "order": r["order"],
                 "status": APPLIED, "appliedAt": now}
                for r in records
            ], ordered=False)
        except BulkWriteError as error:
            known = {e["op"]["_id"] for e in error.details["writeErrors"] if e.get("code") == DUPLICATE_KEY}
            if len(known) != len(error.details["writeErrors"]):
                raise
            # Parked earlier (or journaled by a retried batch): mark applied, drop the sealed envelope.
            await self._events.bulk_write([
                UpdateOne({"_id": event_id}, {"$set": {"status": APPLIED, "appliedAt": now},
                                              "$unset": {"envelope": ""}})
                for event_id in known
            ], ordered=False)

    async def park(self, records: Sequence[dict[str, Any]]) -> set[str]:
        """Park events whose case does not exist yet; return the ids that were already known."""
        if not records:
            return set()
        now = datetime.now(timezone.utc)
        try:
            await self._events.insert_many([
                {"_id": r["id"], "caseId": r["caseId"], "type": r["type"], "status": PARKED,
                 "envelope": seal_envelope(r["envelope"], self._cipher), "parkedAt": now}
                for r in records
            ], ordered=False)
        except BulkWriteError as error:
            duplicates = {e["op"]["_id"] for e in error.details["writeErrors"] if e.get("code") == DUPLICATE_KEY}
            if len(duplicates) != len(error.details["writeErrors"]):
                raise
            return duplicates
        return set()

    async def parked_for(self, case_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = list(case_ids)
        if not ids:
            return []
        records = await self._events.find({"caseId": {"$in": ids}, "status": PARKED}).to_list(None)
        return [{**record, "envelope": open_envelope(record["envelope"], self._cipher)} for record in records]

    async def count_parked(self) -> int:
        return await self._events.count_documents({"status": PARKED})
