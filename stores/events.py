"""The event journal: one record per accepted event (unique), and events parked until their case exists.

An event is itself by its CloudEvents identity, (`source`, `id`): a record's `_id` is the key of that pair
(consumers.cloudevents.event_key), and it keeps `source` and `eventId` beside it, so one producer's id never
answers for another's. Records journaled before that (an `_id` that is the bare id, no `source`) stay readable:
they still identify their event within their own case (`caseId`), never across cases; parked ones are re-keyed
at startup (`rekey_parked`), as applying them must retire them.

An applied event keeps its CloudEvent, sealed as a whole (it may carry PESELs and phones), so a case can be
rebuilt as it stood at any moment by replaying its events through the reducer (`case(id, asOf:)`).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

import orjson
from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from stores.database import DUPLICATE_KEY, Database
from stores.protection import FieldCipher, open_envelope, seal_envelope

COLLECTION = "events"
APPLIED = "APPLIED"
PARKED = "PARKED"

log = logging.getLogger(__name__)
Identity = tuple[str, str]


class Identified(Protocol):
    """An event as the journal asks about it (consumers.cloudevents.CaseEvent)."""

    @property
    def id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def case_id(self) -> str: ...


def event_key(source: str, event_id: str) -> str:
    """`["<source>","<id>"]`: unambiguous whatever either holds, and readable in a database shell."""
    return orjson.dumps([source, event_id]).decode()


def _key_fields(record: dict[str, Any]) -> dict[str, Any]:
    """`_id` (and `source`, `eventId`) of a journal record; a record staged before identities had sources
    (no `source`) keeps the bare id, as it was journaled then."""
    if record.get("source") is None:
        return {"_id": record["id"]}
    return {"_id": event_key(record["source"], record["id"]), "source": record["source"], "eventId": record["id"]}


INDEXES = [IndexModel([("caseId", ASCENDING), ("status", ASCENDING), ("time", ASCENDING)], name="case_status_time")]


class EventStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self._events = db.collection(COLLECTION)
        # A parked event still carries PESELs and phones in clear: it is stored sealed as a whole.
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        # _id is the event's key (source, id): MongoDB's own unique index enforces "each event once".
        await self._events.create_indexes(INDEXES)

    def sealed(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """The CloudEvent as the journal keeps it (see stores.protection.seal_envelope)."""
        return seal_envelope(envelope, self._cipher)

    async def record_applied(self, records: Sequence[dict[str, Any]]) -> None:
        """Journal applied events (`id`, `source`, `caseId`, `type`, `order`, `time`, `sealed` =
        `sealed(envelope)`); idempotent, so a retried batch or a second flush leaves the same records."""
        if not records:
            return
        now = datetime.now(timezone.utc)
        by_id = {_key_fields(r)["_id"]: r for r in records}
        try:
            # Most applied events are new to the journal: one insert, no per-record upsert lookups.
            await self._events.insert_many([
                {**_key_fields(r), "caseId": r["caseId"], "type": r["type"], "order": r["order"],
                 "time": r.get("time"), "status": APPLIED, "appliedAt": now, "envelope": r["sealed"]}
                for r in records
            ], ordered=False)
        except BulkWriteError as error:
            known = {e["op"]["_id"] for e in error.details["writeErrors"] if e.get("code") == DUPLICATE_KEY}
            if len(known) != len(error.details["writeErrors"]):
                raise
            # Parked earlier (or journaled by a retried batch): mark applied.
            await self._events.bulk_write([
                UpdateOne({"_id": event_id}, {"$set": {"status": APPLIED, "appliedAt": now,
                                                       "time": by_id[event_id].get("time"),
                                                       "envelope": by_id[event_id]["sealed"]}})
                for event_id in known
            ], ordered=False)

    async def applied(self, events: Iterable[Identified]) -> set[Identity]:
        """The identities (source, id) of those events the journal records as applied: one indexed read, whatever
        a case's age. A record from before sources were kept answers for its id in its own case only."""
        by_key: dict[str, Identity] = {}
        by_bare_id: dict[str, list[Identified]] = {}
        for event in events:
            by_key[event_key(event.source, event.id)] = (event.source, event.id)
            by_bare_id.setdefault(event.id, []).append(event)
        if not by_key:
            return set()
        found = await self._events.find(
            {"_id": {"$in": [*by_key, *by_bare_id]}, "status": APPLIED}, {"_id": 1, "source": 1, "caseId": 1},
        ).to_list(None)
        applied: set[Identity] = set()
        for record in found:
            if "source" in record:
                if record["_id"] in by_key:
                    applied.add(by_key[record["_id"]])
                continue
            applied.update((e.source, e.id) for e in by_bare_id.get(record["_id"], ())
                           if e.case_id == record.get("caseId"))
        return applied

    async def applied_until(self, case_id: str, until: datetime) -> list[dict[str, Any]]:
        """The CloudEvents applied to the case whose time is at or before `until`, in time order."""
        records = await self._events.find(
            {"caseId": case_id, "status": APPLIED, "time": {"$lte": until}}).sort(
            [("time", ASCENDING), ("_id", ASCENDING)]).to_list(None)
        return [open_envelope(record["envelope"], self._cipher) for record in records if record.get("envelope")]

    async def park(self, records: Sequence[dict[str, Any]]) -> set[str]:
        """Park events (`id`, `source`, `caseId`, `type`, `envelope`) whose case does not exist yet; return the
        keys (`event_key`) of those that were already known."""
        if not records:
            return set()
        now = datetime.now(timezone.utc)
        try:
            await self._events.insert_many([
                {**_key_fields(r), "caseId": r["caseId"], "type": r["type"], "status": PARKED,
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

    async def rekey_parked(self) -> int:
        """Give events parked under their bare id (before sources were kept) their (source, id) key, so applying
        them retires them; returns how many. Insert first, then delete: a crash between repeats the move."""
        moved = 0
        async for record in self._events.find({"status": PARKED, "source": {"$exists": False}}):
            source = open_envelope(record["envelope"], self._cipher).get("source")
            if not isinstance(source, str):
                continue
            try:
                await self._events.insert_one({**record, "_id": event_key(source, record["_id"]), "source": source,
                                               "eventId": record["_id"]})
            except DuplicateKeyError:
                pass  # moved by an earlier start that stopped before the delete
            await self._events.delete_one({"_id": record["_id"], "source": {"$exists": False}})
            moved += 1
        if moved:
            log.info("parked events re-keyed by source and id", extra={"events": moved})
        return moved

    async def count_parked(self) -> int:
        return await self._events.count_documents({"status": PARKED})
