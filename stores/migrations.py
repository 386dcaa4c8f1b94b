"""Startup migrations: case documents written before history and tasks had rows of their own, before
participants' PESELs had a blind index and before cases kept their search terms; task rows written before they kept
their order values.

A document of the first kind embeds `history`, `tasks` and `eventIds`. Each one is moved out — history rows, task rows and
journal records first (idempotent inserts), then the document loses the embedded lists in one conditional
update — so a crash half-way only repeats the move on the next start. A document is migrated as a whole or
not at all.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from stores.case_criteria import SEARCH_TERMS, search_terms
from stores.cases import COLLECTION as CASES
from stores.database import DUPLICATE_KEY, Database
from stores.events import APPLIED, COLLECTION as EVENTS
from stores.history import HistoryStore
from stores.protection import FieldCipher, open_participant_field
from stores.task_criteria import ORDER_FIELDS, ORDER_KEYS, order_keys
from stores.tasks import COLLECTION as TASKS, VISIBILITY_FIELDS, TaskChange, TaskStore

log = logging.getLogger(__name__)
BATCH = 100


async def move_embedded_history(db: Database, history: HistoryStore, tasks: TaskStore) -> int:
    """Move every embedded history, task list and event id list into their rows; returns the cases migrated."""
    cases, journal = db.collection(CASES), db.collection(EVENTS)
    migrated, last = 0, None
    # In _id order, each document once per start: one rewritten meanwhile by an older instance is moved next time.
    while docs := await cases.find({"history": {"$exists": True}, **({"_id": {"$gt": last}} if last else {})}).sort(
            [("_id", 1)]).limit(BATCH).to_list(None):
        last = docs[-1]["_id"]
        for doc in docs:
            await _move(doc, history, tasks, journal)
            await cases.update_one({"_id": doc["_id"], "version": doc["version"]}, {
                # Its early events were journaled without their CloudEvents: `case(id, asOf:)` cannot rebuild it.
                "$set": {"replayable": False},
                "$unset": {"history": "", "tasks": "", "eventIds": ""}})
        migrated += len(docs)
    if migrated:
        log.info("cases migrated to history and task rows", extra={"cases": migrated})
    return migrated


async def _move(doc: dict[str, Any], history: HistoryStore, tasks: TaskStore, journal: Any) -> None:
    case_id = doc["_id"]
    await history.append([
        {**entry, "_id": entry.get("eventId") or f"{case_id}:{entry['id']}", "caseId": case_id}
        for entry in doc.get("history") or ()])
    visibility = {name: doc.get(name) for name in VISIBILITY_FIELDS}
    await tasks.apply([TaskChange(task=task, case_id=case_id, visibility=visibility, base_version=None)
                       for task in doc.get("tasks") or ()])
    known = doc.get("eventIds") or []
    if not known:
        return
    now = datetime.now(timezone.utc)
    try:
        # Events applied before the journal kept their CloudEvents: `case(asOf:)` cannot replay these.
        await journal.insert_many([{"_id": event_id, "caseId": case_id, "status": APPLIED, "appliedAt": now}
                                   for event_id in known], ordered=False)
    except BulkWriteError as error:
        if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
            raise


async def index_participant_pesels(db: Database, cipher: FieldCipher) -> int:
    """Give every participant's PESEL its blind index (written since co-applicants reach their customer 360), for
    cases sealed before; returns the cases updated. Conditional on the version, so a case rewritten meanwhile
    (and indexed by that write) is left alone."""
    cases = db.collection(CASES)
    updated = 0
    query = {"participants": {"$elemMatch": {"pesel": {"$ne": None}, "peselIndex": {"$exists": False}}}}
    async for doc in cases.find(query, {"participants": 1, "version": 1}):
        participants = doc["participants"]
        for participant in participants:
            pesel = open_participant_field(doc, participant["id"], "pesel", cipher)
            if pesel is not None:
                participant["peselIndex"] = cipher.blind_index(pesel, purpose="pesel")
        result = await cases.update_one({"_id": doc["_id"], "version": doc["version"]},
                                        {"$set": {"participants": participants}})
        updated += result.modified_count
    if updated:
        log.info("participant PESELs indexed", extra={"cases": updated})
    return updated


async def _backfill(collection: Any, missing: dict[str, Any], fields: dict[str, int],
                    derive: Any) -> int:
    """Set `derive(doc)` on every document matching `missing`, in _id order and batches, each conditional on the
    version it was read at: a document rewritten meanwhile got the fields from its writer."""
    updated, last = 0, None
    while docs := await collection.find({**missing, **({"_id": {"$gt": last}} if last else {})},
                                        {**fields, "version": 1}).sort([("_id", 1)]).limit(BATCH).to_list(None):
        last = docs[-1]["_id"]
        result = await collection.bulk_write([UpdateOne({"_id": doc["_id"], "version": doc.get("version")},
                                                        {"$set": derive(doc)}) for doc in docs], ordered=False)
        updated += result.modified_count
    return updated


async def store_task_order_keys(db: Database) -> int:
    """Give every task row its stored order values (stores/task_criteria.py ORDER_FIELDS), for rows written before
    lists sorted on them; returns the rows updated."""
    updated = await _backfill(db.collection(TASKS), {"$or": [{key: {"$exists": False}} for key in ORDER_KEYS]},
                              {stored: 1 for stored, _missing, _key in ORDER_FIELDS.values()}, order_keys)
    if updated:
        log.info("task order values stored", extra={"tasks": updated})
    return updated


async def store_case_search_terms(db: Database) -> int:
    """Give every case its search terms (stores/case_criteria.py), for cases written before the text filter read
    them; returns the cases updated."""
    updated = await _backfill(db.collection(CASES), {SEARCH_TERMS: {"$exists": False}},
                              {"title": 1, "customer.name": 1},
                              lambda doc: {SEARCH_TERMS: search_terms(doc)})
    if updated:
        log.info("case search terms stored", extra={"cases": updated})
    return updated
