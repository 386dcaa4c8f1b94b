"""The event journal: one record per accepted event id (unique), and events parked until their case exists.

An applied event keeps its CloudEvent, sealed as a whole (it may carry PESELs and phones), so a case can be
rebuilt as it stood at any moment by replaying its events through the reducer (`case(id, asOf:)`).
"""
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

INDEXES = [IndexModel([("caseId", ASCENDING), ("status", ASCENDING), ("time", ASCENDING)], name="case_status_time")]


class EventStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self._events = db.collection(COLLECTION)
        # A parked event still carries PESELs and phones in clear: it is stored sealed as a whole.
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        # _id is the event id: MongoDB's own unique index enforces "each event id once".
        await self._events.create_indexes(INDEXES)

    def sealed(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """The CloudEvent as the journal keeps it (see stores.protection.seal_envelope)."""
        return seal_envelope(envelope, self._cipher)

    async def record_applied(self, records: Sequence[dict[str, Any]]) -> None:
        """Journal applied events (`id`, `caseId`, `type`, `order`, `time`, `sealed` = `sealed(envelope)`);
        idempotent, so a retried batch or a second flush leaves the same records."""
        if not records:
            return
        now = datetime.now(timezone.utc)
        try:
            # Most applied events are new to the journal: one insert, no per-record upsert lookups.
            await self._events.insert_many([
                {"_id": r["id"], "caseId": r["caseId"], "type": r["type"], "order": r["order"],
                 "time": r.get("time"), "status": APPLIED, "appliedAt": now, "envelope": r["sealed"]}
                for r in records
            ], ordered=False)
        except BulkWriteError as error:
            known = {e["op"]["_id"] for e in error.details["writeErrors"] if e.get("code") == DUPLICATE_KEY}
            if len(known) != len(error.details["writeErrors"]):
                raise
            # Parked earlier (or journaled by a retried batch): mark applied.
            by_id = {r["id"]: r for r in records}
            await self._events.bulk_write([
                UpdateOne({"_id": event_id}, {"$set": {"status": APPLIED, "appliedAt": now,
                                                       "time": by_id[event_id].get("time"),
                                                       "envelope": by_id[event_id]["sealed"]}})
                for event_id in known
            ], ordered=False)

    async def applied_ids(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these events the journal records as applied: one indexed read, whatever a case's age."""
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return set()
        found = await self._events.find({"_id": {"$in": ids}, "status": APPLIED}, {"_id": 1}).to_list(None)
        return {record["_id"] for record in found}

    async def applied_until(self, case_id: str, until: datetime) -> list[dict[str, Any]]:
        """The CloudEvents applied to the case whose time is at or before `until`, in time order."""
        records = await self._events.find(
            {"caseId": case_id, "status": APPLIED, "time": {"$lte": until}}).sort(
            [("time", ASCENDING), ("_id", ASCENDING)]).to_list(None)
        return [open_envelope(record["envelope"], self._cipher) for record in records if record.get("envelope")]

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
