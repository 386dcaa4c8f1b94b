"""The in-memory store's scan screen (stores/memory.py `_screen`): a lookup by a plain equality or `$in` clause
finds exactly what mongomock's own matching finds, documents whose field is a list, a number of another type, a
document, or missing included."""
from __future__ import annotations

from typing import Any

import mongomock
import pytest

from stores.memory import _screen, memory_client

DOCUMENTS: list[dict[str, Any]] = [
    {"_id": 1, "writes": ["audit:CASE-1:1"]},
    {"_id": 2, "writes": ["audit:CASE-1:2", "audit:CASE-2:1"]},
    {"_id": 3, "writes": "audit:CASE-2:1"},
    {"_id": 4},
    {"_id": 5, "writes": None},
    {"_id": 6, "writes": [["audit:CASE-1:1"]]},
    {"_id": 7, "writes": {"id": "audit:CASE-1:1"}},
    {"_id": 8, "writes": 7, "caseId": "CASE-2"},
    {"_id": 9, "writes": 7.0, "caseId": "CASE-2"},
    {"_id": 10, "writes": True, "caseId": "CASE-1"},
    {"_id": 11, "writes": "7", "caseId": "CASE-1"},
    {"_id": 12, "writes": [], "caseId": "CASE-1"},
]

FILTERS = [
    ({"writes": {"$in": ["audit:CASE-2:1"]}}, [2, 3]),
    ({"writes": {"$in": ["audit:CASE-1:1", "audit:CASE-1:2"]}}, [1, 2]),
    ({"writes": "audit:CASE-1:1"}, [1]),
    ({"writes": 7}, [8, 9]),
    ({"writes": {"$in": [1]}}, [10]),  # mongomock takes True for 1 (MongoDB would not): the screen keeps that
    ({"writes": "7", "caseId": "CASE-1"}, [11]),
    ({"caseId": {"$in": ["CASE-2"]}, "writes": {"$gt": 6}}, [8, 9]),
    ({"writes": {"$in": ["nothing"]}}, []),
]


@pytest.mark.parametrize(("query", "expected"), FILTERS)
async def test_a_screened_lookup_finds_what_a_full_scan_finds(query: dict[str, Any], expected: list[int]) -> None:
    assert _screen(query) is not None
    collection = memory_client()["screen"]["records"]
    await collection.insert_many([dict(d) for d in DOCUMENTS])

    found = sorted(d["_id"] for d in await collection.find(query).to_list(None))

    plain = mongomock.MongoClient()["screen"]["records"]
    plain.insert_many([dict(d) for d in DOCUMENTS])
    assert found == expected == sorted(d["_id"] for d in plain.find(query))


def test_filters_without_a_plain_clause_are_not_screened() -> None:
    assert [_screen(q) for q in ({"writes": {"$in": [None]}}, {"writes": {"$ne": 1}}, {"a.b": 1},
                                 {"$or": [{"a": 1}]}, {"a": {"$in": []}}, {"a": True}, {"a": 1.5})] == [None] * 7
