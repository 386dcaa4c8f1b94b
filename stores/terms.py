"""Negotiated credit terms: one document per case, every version kept, the current one named by `current`.

A document carries the visibility of its case (case type, branch, restricted, customer), copied from the case at
each recording, so the caller's row scope is a condition of the terms query itself (as task rows do). Decimal
values are stored as strings: exact, and BSON has no Python `Decimal`. Versions are appended in order, so
version n sits at index n − 1. A recording stages its `case.terms_changed` (for `case-updates`), an approval that
and its `terms.approved` command (`outbox`, `stagedAt`), each in the same single-document write; `revision`
counts writes, so clearing what was relayed is conditional on nobody having written since.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from stores.case_scope import CaseScope, within_scope
from stores.database import Database
from stores.staged_records import STAGED_INDEX, StagedRecords

COLLECTION = "negotiated_terms"
VISIBILITY_FIELDS = ("caseType", "branch", "restricted", "customerId")
_READ_PROJECTION = {"outbox": 0, "stagedAt": 0}

INDEXES = [
    IndexModel([("customerId", ASCENDING)], name="customer"),
    STAGED_INDEX,
]


class TermsStore:
    def __init__(self, db: Database) -> None:
        self._terms = db.collection(COLLECTION)
        self._staged = StagedRecords(self._terms, "revision")

    async def ensure_indexes(self) -> None:
        await self._terms.create_indexes(INDEXES)

    async def get(self, case_id: str) -> dict[str, Any] | None:
        """The terms of a case the caller has already been shown (writes decide on this read)."""
        return await self._terms.find_one({"_id": case_id})

    async def of_cases(self, case_ids: Iterable[str], *, scope: CaseScope) -> dict[str, dict[str, Any]]:
        """The visible terms of these cases by case id; one round trip."""
        ids = list(dict.fromkeys(case_ids))
        found = await self._terms.find(within_scope({"_id": {"$in": ids}}, scope, id_field="caseId"),
                                       _READ_PROJECTION).to_list(None)
        return {doc["_id"]: doc for doc in found}

    async def of_customers(self, customer_ids: Iterable[str], *,
                           scope: CaseScope) -> dict[str, list[dict[str, Any]]]:
        """The visible terms of these customers' cases by customer id (case id order); one round trip."""
        ids = list(dict.fromkeys(customer_ids))
        found = await self._terms.find(within_scope({"customerId": {"$in": ids}}, scope, id_field="caseId"),
                                       _READ_PROJECTION).sort([("_id", ASCENDING)]).to_list(None)
        by_customer: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for doc in found:
            by_customer[doc["customerId"]].append(doc)
        return by_customer

    async def record(self, case_id: str, visibility: dict[str, Any], version: dict[str, Any],
                     expected_current: int, staged: Sequence[dict[str, Any]] = ()) -> dict[str, Any] | None:
        """Append `version` (numbered expected_current + 1) if the terms are still at `expected_current`, staging
        `staged` in the same write; the document as written, or None when someone recorded meanwhile."""
        # Only what was staged is marked for the relay loop: a mark with nothing behind it would never be cleared.
        mark = {"stagedAt": datetime.now(timezone.utc)} if staged else {}
        if expected_current == 0:
            doc = {"_id": case_id, "caseId": case_id, **visibility, "current": version["version"],
                   "versions": [version], "revision": 1, "outbox": list(staged), **mark}
            try:
                await self._terms.insert_one(doc)
            except DuplicateKeyError:
                return None
            return doc
        return await self._terms.find_one_and_update(
            {"_id": case_id, "current": expected_current},
            {"$set": {**visibility, "current": version["version"], **mark},
             "$push": {"versions": version, "outbox": {"$each": list(staged)}}, "$inc": {"revision": 1}},
            return_document=ReturnDocument.AFTER)

    async def approve(self, case_id: str, version: int, by: str, at: datetime,
                      staged: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
        """Mark `version` approved if it is still current and unapproved, staging `staged` in the same update;
        the document as written, or None when the precondition no longer holds."""
        path = f"versions.{version - 1}"
        return await self._terms.find_one_and_update(
            {"_id": case_id, "current": version, f"{path}.version": version, f"{path}.approvedBy": None},
            {"$set": {f"{path}.approvedBy": by, f"{path}.approvedAt": at, "stagedAt": datetime.now(timezone.utc)},
             "$push": {"outbox": {"$each": list(staged)}}, "$inc": {"revision": 1}},
            return_document=ReturnDocument.AFTER)

    async def staged(self, older_than: datetime, limit: int) -> list[dict[str, Any]]:
        return await self._staged.staged(older_than, limit)

    async def clear_staged(self, relayed: Sequence[dict[str, Any]]) -> None:
        await self._staged.clear(relayed)

