"""Case documents: current state only, read with their task rows, and version-guarded writes for the pipeline.

A case's history lives in its own rows (stores/history.py) and its tasks in theirs (stores/tasks.py), so a
document stays small however long the case lives. What a write decided beyond the case itself (history rows,
journal records, task merges, outbound messages, its audit record) is staged in the same document under
`outbox` and relayed from there (consumers/staging.py): one single-document write is the unit of durability.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError

from stores.case_criteria import (ORDER_FIELDS, SEARCH_TERMS, CaseCriteria, CaseOrder, Person, after_filter,
                                  criteria_filter, search_terms, sort_spec)
from stores.case_scope import CaseScope, combined, within_scope
from stores.database import DUPLICATE_KEY, Database
from stores.protection import FieldCipher, seal_case
from stores.task_criteria import ORDER_KEYS
from stores.tasks import COLLECTION as TASKS, in_list_order

COLLECTION = "cases"

INDEXES = [
    IndexModel([("customerId", ASCENDING), ("updatedAt", DESCENDING)], name="customer_updated"),
    IndexModel([("status", ASCENDING), ("updatedAt", DESCENDING)], name="status_updated"),
    IndexModel([("caseType", ASCENDING), ("updatedAt", DESCENDING)], name="type_updated"),
    IndexModel([("updatedAt", DESCENDING), ("_id", DESCENDING)], name="updated"),
    IndexModel([("createdAt", DESCENDING), ("_id", DESCENDING)], name="created"),
    # The STATUS and CASE_TYPE orders of an unfiltered list (sorted on the field, then _id): without these the
    # first page sorted the whole collection.
    IndexModel([("status", DESCENDING), ("_id", DESCENDING)], name="status_with_id"),
    IndexModel([("caseType", DESCENDING), ("_id", DESCENDING)], name="type_with_id"),
    IndexModel([("hasOpenIncident", ASCENDING), ("updatedAt", DESCENDING)], name="open_incident"),
    IndexModel([("isOpen", ASCENDING), ("updatedAt", DESCENDING)], name="open_updated"),
    IndexModel([("customer.peselIndex", ASCENDING)], name="customer_pesel_index"),
    IndexModel([("participants.peselIndex", ASCENDING)], name="participant_pesel_index"),
    IndexModel([("branch", ASCENDING), ("updatedAt", DESCENDING)], name="branch_updated"),
    IndexModel([("stagedAt", ASCENDING)], name="staged", sparse=True),
    IndexModel([("incidents.id", ASCENDING)], name="incident_id"),
    # The text filter's keywords (stores/case_criteria.py), each word of a search one range of this index.
    IndexModel([(SEARCH_TERMS, ASCENDING)], name="search_terms"),
]

# Bookkeeping that the API never needs: left in the store, not shipped on every read.
_READ_PROJECTION = {"outbox": 0, "writeId": 0, "stagedAt": 0, SEARCH_TERMS: 0}
# What a list page always reads of a case: its own fields (the Case type's scalars) and its visibility. The parts
# below (`CASE_PARTS`) come only when the page's selection names them; a case's history never comes (its rows
# are read by the history connection itself).
_LIST_FIELDS = ("caseType", "title", "status", "stage", "channel", "branch", "sourceSystem", "createdAt", "updatedAt",
                "closedAt", "outcome", "version", "dueAt", "hasOpenIncident", "isOpen", "customerId", "restricted")
# The parts of a case a selection may ask for, by stored name; "tasks" are the case's task rows.
CASE_PARTS = frozenset({"customer", "product", "participants", "documents", "tasks", "incidents", "processes",
                        "forms", "consents", "offers"})
# A case's tasks come with it in the same round trip, in the order their first event named them.
_WITH_TASKS = {"$lookup": {"from": TASKS, "localField": "_id", "foreignField": "caseId", "as": "tasks"}}


def _tasks_in_order(doc: dict[str, Any]) -> dict[str, Any]:
    # A row's stored order values are the task list's bookkeeping, not the task's: the case never carries them.
    doc["tasks"] = in_list_order([{k: v for k, v in task.items() if k not in ORDER_KEYS}
                                  for task in doc.get("tasks") or []])
    return doc


@dataclass(frozen=True)
class CaseWrite:
    """A new state for one case; `expected_version` None means the case is new."""

    case: dict[str, Any]
    expected_version: int | None


@dataclass(frozen=True)
class CasePage:
    cases: list[dict[str, Any]]
    has_next: bool


class CaseStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self._cases = db.collection(COLLECTION)
        self._cipher = cipher

    @property
    def cipher(self) -> FieldCipher:
        """The cipher the case's sealed fields use (writers seal free text with it before staging their effects)."""
        return self._cipher

    async def ensure_indexes(self) -> None:
        await self._cases.create_indexes(INDEXES)

    async def is_empty(self) -> bool:
        """Whether no case is stored at all (demo data goes only into an empty store)."""
        return await self._cases.find_one({}, {"_id": 1}) is None

    async def _read(self, query: dict[str, Any], *, sort: list[tuple[str, int]] | None = None,
                    limit: int | None = None, parts: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """Cases matching `query`: whole (without bookkeeping) when `parts` is None, else their own fields and the
        named parts only (CASE_PARTS)."""
        pipeline: list[dict[str, Any]] = [{"$match": query}]
        if sort:
            pipeline.append({"$sort": dict(sort)})
        if limit is not None:
            pipeline.append({"$limit": limit})
        if parts is None:
            pipeline += [{"$project": _READ_PROJECTION}, _WITH_TASKS]
        else:
            pipeline.append({"$project": {name: 1 for name in (*_LIST_FIELDS, *sorted(parts - {"tasks"}))}})
            if "tasks" in parts:
                pipeline.append(_WITH_TASKS)
        docs = await self._cases.aggregate(pipeline).to_list(None)
        return [_tasks_in_order(doc) for doc in docs] if parts is None or "tasks" in parts else docs

    async def get(self, case_id: str, *, scope: CaseScope) -> dict[str, Any] | None:
        docs = await self._read(within_scope({"_id": case_id}, scope))
        return docs[0] if docs else None

    async def with_incident(self, incident_id: str, *, scope: CaseScope) -> list[dict[str, Any]]:
        """The cases in the caller's scope that hold an incident of this id (engines' ids are unique; more than one
        is the caller's to tell apart)."""
        return await self._read(within_scope({"incidents.id": incident_id}, scope), limit=2)

    async def get_many(self, case_ids: Iterable[str], *, scope: CaseScope) -> dict[str, dict[str, Any]]:
        """Cases by id, with their tasks, in one round trip; missing ids are absent from the result."""
        ids = list(dict.fromkeys(case_ids))
        if not ids:
            return {}
        docs = await self._read(within_scope({"_id": {"$in": ids}}, scope))
        return {doc["_id"]: doc for doc in docs}

    async def get_for_update(self, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Whole documents, staged effects included, with their task rows (stamps and versions): the pipeline's read."""
        ids = list(dict.fromkeys(case_ids))
        pipeline = [{"$match": {"_id": {"$in": ids}}}, _WITH_TASKS]
        docs = await self._cases.aggregate(pipeline).to_list(None)
        for doc in docs:
            doc.pop(SEARCH_TERMS, None)  # derived at each write (save), never part of the state a writer reduces
        return {doc["_id"]: _tasks_in_order(doc) for doc in docs}

    async def save(self, writes: Sequence[CaseWrite]) -> set[str]:
        """Write new states in one round trip; return the ids whose version guard failed."""
        if not writes:
            return set()
        for write in writes:
            # Nothing reaches the store with a PESEL or phone in clear.
            seal_case(write.case, self._cipher)
            # Which of two writers from the same version landed: the version alone cannot tell.
            write.case["writeId"] = uuid.uuid4().hex
        # The text filter's keywords go with the stored document only, not into the state the writer publishes.
        stored_docs = [{**w.case, SEARCH_TERMS: search_terms(w.case)} for w in writes]
        operations = [
            InsertOne(doc) if w.expected_version is None
            else ReplaceOne({"_id": w.case["_id"], "version": w.expected_version}, doc)
            for w, doc in zip(writes, stored_docs)
        ]
        try:
            result = await self._cases.bulk_write(operations, ordered=False)
            failed_inserts: set[str] = set()
            matched = result.matched_count
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise  # not a lost race (e.g. a document too large): retrying cannot help
            failed_inserts = {writes[e["index"]].case["_id"] for e in error.details["writeErrors"]}
            matched = error.details["nMatched"]
        expected_replaced = sum(1 for w in writes if w.expected_version is not None)
        if not failed_inserts and matched == expected_replaced:
            return set()
        current = await self._cases.find(
            {"_id": {"$in": [w.case["_id"] for w in writes]}}, {"writeId": 1}).to_list(None)
        stored = {doc["_id"]: doc.get("writeId") for doc in current}
        return {w.case["_id"] for w in writes
                if w.case["_id"] in failed_inserts or stored.get(w.case["_id"]) != w.case["writeId"]}

    async def clear_staged(self, relayed: Sequence[tuple[str, str]]) -> None:
        """Drop the staged effects of cases (id, writeId) once relayed, unless the case was written since (its
        new writer took the staged effects over and relays them itself)."""
        if relayed:
            await self._cases.bulk_write([
                UpdateOne({"_id": case_id, "writeId": write_id}, {"$set": {"outbox": []}, "$unset": {"stagedAt": ""}})
                for case_id, write_id in relayed], ordered=False)

    async def still_staged(self, written: Sequence[tuple[str, str]]) -> set[str]:
        """Of these cases (id, writeId), those whose staged effects are still the ones that write left: neither
        relayed and cleared by someone else, nor taken over by a newer write (which relays them itself)."""
        if not written:
            return set()
        write_ids = dict(written)
        current = await self._cases.find(
            {"_id": {"$in": list(write_ids)}}, {"writeId": 1, "stagedAt": 1}).to_list(None)
        return {doc["_id"] for doc in current if doc.get("writeId") == write_ids[doc["_id"]] and "stagedAt" in doc}

    async def staged(self, older_than: datetime, limit: int) -> list[dict[str, Any]]:
        """Cases whose staged effects were not relayed (their writer stopped before it could), oldest first."""
        return await self._cases.find({"stagedAt": {"$lt": older_than}}, {"outbox": 1, "writeId": 1}).sort(
            [("stagedAt", ASCENDING)]).limit(limit).to_list(None)

    async def find(
        self, criteria: CaseCriteria | None, order: CaseOrder, first: int,
        after: tuple[Any, str] | None = None, parts: frozenset[str] | None = None, *, scope: CaseScope,
    ) -> CasePage:
        """A page of cases in `order`: whole when `parts` is None, else their own fields and `parts` only."""
        query = within_scope(criteria_filter(criteria), scope)
        if after is not None:
            keyset = after_filter(order, after[0], after[1])
            query = {"$and": [query, keyset]} if query else keyset
        docs = await self._read(query, sort=sort_spec(order), limit=first + 1, parts=parts)
        return CasePage(cases=docs[:first], has_next=len(docs) > first)

    async def count(self, criteria: CaseCriteria | None, *, scope: CaseScope) -> int:
        return await self._cases.count_documents(within_scope(criteria_filter(criteria), scope))

    async def customer_summaries(self, persons: Sequence[Person], *, scope: CaseScope) -> dict[Person, dict[str, Any]]:
        """Per person: counts of their cases by status, channel, product and open/closed, and last contact.

        One grouped aggregation over the indexed person fields (customer_updated, participant_pesel_index): the
        cases are counted per (customer, participants' PESEL indexes, status, channel, product, open), so only
        those few groups come back, never the cases and never their history. All the cases of a group take part
        for the same people, so each group is then added to each person it names: a joint case counts for each
        of its people, once."""
        groups = await self._cases.aggregate([
            {"$match": within_scope(_any_person(persons), scope)},
            {"$group": {"_id": {"customerId": "$customerId",
                                "peselIndexes": {"$map": {"input": {"$ifNull": ["$participants", []]},
                                                          "as": "participant", "in": "$$participant.peselIndex"}},
                                "status": "$status", "channel": "$channel", "product": "$product.code",
                                "open": {"$eq": ["$isOpen", True]}},
                        "cases": {"$sum": 1}, "lastContactAt": {"$max": "$updatedAt"}}},
        ]).to_list(None)
        summaries = {person: {"byStatus": {}, "byChannel": {}, "byProduct": {}, "open": 0, "closed": 0,
                              "lastContactAt": None} for person in persons}
        for group in groups:
            key, cases = group["_id"], group["cases"]
            case = {"customerId": key.get("customerId"),
                    "participants": [{"peselIndex": index} for index in key.get("peselIndexes") or ()]}
            for person in filter(lambda p: p.takes_part_in(case), persons):
                summary = summaries[person]
                for facet, value in (("byStatus", key.get("status")), ("byChannel", key.get("channel")),
                                     ("byProduct", key.get("product"))):
                    summary[facet][value] = summary[facet].get(value, 0) + cases
                summary["open" if key.get("open") else "closed"] += cases
                last = group.get("lastContactAt")
                if last is not None and (summary["lastContactAt"] is None or last > summary["lastContactAt"]):
                    summary["lastContactAt"] = last
        return summaries

    async def latest_customer_snapshots(
        self, customer_ids: Sequence[str], *, scope: CaseScope,
    ) -> dict[str, dict[str, Any]]:
        """The customer as last described by any of their visible cases, with that case's id (`caseId`)."""
        docs = await self._cases.find(
            within_scope({"customerId": {"$in": list(customer_ids)}}, scope),
            {"customer": 1, "customerId": 1, "updatedAt": 1},
        ).sort([("updatedAt", DESCENDING)]).to_list(None)
        snapshots: dict[str, dict[str, Any]] = {}
        for doc in docs:
            snapshots.setdefault(doc["customerId"], {**doc["customer"], "caseId": doc["_id"]})
        return snapshots

    async def find_customer_by_pesel_index(self, pesel_index: str, *, scope: CaseScope) -> str | None:
        """The id of the customer whose PESEL has this blind index, if a visible case names them."""
        doc = await self._cases.find_one(
            within_scope({"customer.peselIndex": pesel_index}, scope), {"customerId": 1})
        return doc["customerId"] if doc else None

    async def visible_ids(self, person: Person, *, scope: CaseScope) -> list[str]:
        """The ids of the person's cases that the caller may see."""
        docs = await self._cases.find(within_scope(person.filter(), scope), {"_id": 1}).to_list(None)
        return [doc["_id"] for doc in docs]

    async def offers_of(self, person: Person, *, scope: CaseScope) -> list[dict[str, Any]]:
        """The person's visible cases that carry offers, with only their id and offers, newest change first."""
        return await self._cases.find(
            within_scope(combined([person.filter(), {"offers.0": {"$exists": True}}]), scope), {"offers": 1},
        ).sort([("updatedAt", DESCENDING), ("_id", DESCENDING)]).to_list(None)


def _any_person(persons: Sequence[Person]) -> dict[str, Any]:
    indexes = sorted({p.pesel_index for p in persons if p.pesel_index is not None})
    own = {"customerId": {"$in": sorted({p.customer_id for p in persons})}}
    return {"$or": [own, {"participants.peselIndex": {"$in": indexes}}]} if indexes else own


def order_value(case: dict[str, Any], order: CaseOrder) -> Any:
    """The value a keyset cursor records for `case` under `order`."""
    return case.get(ORDER_FIELDS[order.field])
