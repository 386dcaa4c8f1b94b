"""The in-memory store's drop-ins for mongomock's per-value helpers (stores/memory_fast_paths.py): for a table of
values each returns what mongomock's original returns — the same types, the same values, new containers — and a
stored document shares no container with what was inserted, updated or read."""
from __future__ import annotations

import copy
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any

import mongomock.collection
import mongomock.helpers
import pytest
from bson import Decimal128, ObjectId, Timestamp
from bson.son import SON
from pymongo.errors import DuplicateKeyError

from stores import memory_fast_paths as fast
from stores.memory import memory_client

pytestmark = pytest.mark.mongomock_only(reason="patches mongomock, the in-memory store's engine")

WARSAW = timezone(timedelta(hours=2))


class Tags(list):
    pass


class Record(dict):
    pass


VALUES: list[Any] = [
    None, True, False, 0, 7, -3, 1.5, "", "text", b"\x00bytes",
    datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=WARSAW), datetime(2026, 1, 1, 12, 0, 0, 999999),
    datetime(2026, 1, 1, tzinfo=timezone.utc),
    Timestamp(5, 1), ObjectId("65a1b2c3d4e5f60718293a4b"), Decimal128("1.10"),
    [], {}, (), ["a", "b", "c"], ("a", 1, None), [1, 2.5, True, None, b"x"],
    {"a": {"b": [1, "x", {"c": None, "at": datetime(2026, 3, 4, 5, 6, 7, 891011)}]}, "t": (1, 2), "f": 1.5},
    [[["deep"]], [{"k": [datetime(2026, 1, 1, 0, 0, 0, 1500, tzinfo=WARSAW)]}]],
    ({"in": "tuple"}, [ObjectId("65a1b2c3d4e5f60718293a4b")]),
    OrderedDict([("z", 1), ("a", [OrderedDict(b=2)])]),
    SON([("q", datetime(2026, 1, 1, 1, 1, 1, 5000, tzinfo=WARSAW)), ("r", [SON(s=1)])]),
    Tags(["x", {"y": 1}]), Record(a=[1, 2], b=Record(c="d")),
    {"audit": {"fields": [f"Case.f{i}" for i in range(60)], "amount": Decimal128("350000.00"), "ok": True}},
]


def shape(value: Any) -> Any:
    """The value with every type spelled out, so that `==` cannot equate a dict with an OrderedDict, a list with a
    tuple, an aware datetime with a naive one, or 1 with True."""
    if isinstance(value, dict):
        return type(value), [(k, shape(v)) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return type(value), [shape(v) for v in value]
    if isinstance(value, datetime):
        return datetime, value.isoformat()
    return type(value), value


def containers(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in containers(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in containers(v))]
    if isinstance(value, tuple):
        return [i for v in value for i in containers(v)]
    return []


@pytest.fixture
def originals(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs a call with mongomock's own helpers in place (their recursion goes through the module attributes)."""
    fast.install()

    def run(call: Any) -> Any:
        with monkeypatch.context() as patched:
            patched.setattr(mongomock.helpers, "patch_datetime_awareness_in_document", fast._patch_datetime_awareness)
            patched.setattr(mongomock.helpers, "make_datetime_timezone_aware_in_document",
                            fast._make_datetime_timezone_aware)
            patched.setattr(mongomock.collection, "_copy_field", fast._copy_field)
            patched.setattr(mongomock.collection, "copy", copy)
            return call()
    return run


def test_install_is_idempotent_and_keeps_the_originals() -> None:
    fast.install()
    fast.install()
    assert mongomock.helpers.patch_datetime_awareness_in_document is fast.patch_datetime_awareness_in_document
    assert fast.patch_datetime_awareness_in_document.__wrapped__ is fast._patch_datetime_awareness
    assert fast._patch_datetime_awareness.__module__ == "mongomock.helpers"
    assert mongomock.collection._copy_field is fast.copy_field
    assert mongomock.collection.copy.deepcopy is fast.deepcopy
    assert mongomock.collection.copy.copy is copy.copy


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_each_drop_in_returns_what_mongomocks_helper_returns(value: Any, originals: Any) -> None:
    for replacement, original in (
            (fast.patch_datetime_awareness_in_document, fast._patch_datetime_awareness),
            (fast.make_datetime_timezone_aware_in_document, fast._make_datetime_timezone_aware),
            (lambda v: fast.copy_field(v, dict), lambda v: fast._copy_field(v, dict)),
            (lambda v: fast.copy_field(v, SON), lambda v: fast._copy_field(v, SON)),
            (fast.deepcopy, copy.deepcopy)):
        expected = originals(lambda: original(value))
        got = replacement(value)
        assert shape(got) == shape(expected)
        # what the original shares with its input, and no more: nothing, but for a find's `_copy_field` of a tuple
        # (`copy.copy` keeps the tuple; stored documents hold none, an insert makes them lists)
        shared = set(containers(got)) & set(containers(value))
        assert shared == set(containers(expected)) & set(containers(value))
        assert shared == set() or type(value) is tuple


def test_literal_results() -> None:
    fast.install()
    stored = fast.patch_datetime_awareness_in_document(
        {"at": datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=WARSAW), "tags": ("a", "b"), "son": SON(x=1),
         "ordered": OrderedDict(y=2), "n": None})
    assert shape(stored) == shape({"at": datetime(2026, 1, 1, 10, 0, 0, 123000), "tags": ["a", "b"], "son": {"x": 1},
                                   "ordered": OrderedDict(y=2), "n": None})
    read = fast.make_datetime_timezone_aware_in_document({"at": datetime(2026, 1, 1, 10, 0, 0, 123000), "l": ("a",)})
    assert read == {"at": datetime(2026, 1, 1, 10, 0, 0, 123000, tzinfo=timezone.utc), "l": ["a"]}
    assert read["at"].utcoffset() == timedelta(0)
    assert fast.copy_field({"a": [1, {"b": "c"}]}, SON) == SON(a=[1, SON(b="c")])
    assert type(fast.copy_field({"a": {"b": 1}}, SON)["a"]) is SON


def test_an_unset_timestamp_becomes_the_current_one_as_in_mongomock() -> None:
    fast.install()
    stamped = fast.patch_datetime_awareness_in_document({"ts": Timestamp(0, 0), "kept": Timestamp(5, 1)})
    assert type(stamped["ts"]) is Timestamp and stamped["ts"].time > 1_700_000_000
    assert stamped["kept"] == Timestamp(5, 1)


async def test_the_stored_document_shares_nothing_with_what_was_written_or_read() -> None:
    records = memory_client()["fast_paths"]["records"]
    fields = ["Case.id", "Case.title"]
    document = {"_id": "R-1", "fields": fields, "nested": {"list": [{"k": "v"}]},
                "at": datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=WARSAW)}
    await records.insert_many([document])
    fields.append("Case.status")
    document["nested"]["list"][0]["k"] = "changed"

    tags = ["a"]
    await records.update_one({"_id": "R-1"}, {"$set": {"tags": tags, "more": {"x": [1]}}})
    tags.append("b")

    read = await records.find_one({"_id": "R-1"})
    read["fields"].append("Case.read")
    read["nested"]["list"].clear()
    projected = await records.find({"_id": {"$in": ["R-1"]}}, {"fields": 1, "nested": 1}).to_list(None)
    projected[0]["fields"].clear()

    assert await records.find_one({"_id": "R-1"}) == {
        "_id": "R-1", "fields": ["Case.id", "Case.title"], "nested": {"list": [{"k": "v"}]},
        "at": datetime(2026, 1, 1, 10, 0, 0, 123000, tzinfo=timezone.utc), "tags": ["a"], "more": {"x": [1]}}


async def test_an_update_that_breaks_a_unique_index_is_rolled_back_from_its_snapshot() -> None:
    records = memory_client()["fast_paths"]["unique"]
    await records.create_index("code", unique=True)
    await records.insert_many([{"_id": 1, "code": "A", "history": [{"n": 1}]}, {"_id": 2, "code": "B"}])

    with pytest.raises(DuplicateKeyError):
        await records.update_one({"_id": 1}, {"$set": {"code": "B"}, "$push": {"history": {"n": 2}}})

    assert await records.find({}, {"_id": 0}).sort("code").to_list(None) == [
        {"code": "A", "history": [{"n": 1}]}, {"code": "B"}]


SORTABLE: list[dict[str, Any]] = [
    {"_id": 1, "s": "b", "n": 2, "at": datetime(2026, 1, 2), "mixed": "x", "tie": 1},
    {"_id": 2, "s": "a", "n": 1.5, "at": datetime(2026, 1, 1), "mixed": 3, "tie": 1},
    {"_id": 3, "s": "B", "n": 2, "at": datetime(2026, 1, 2), "mixed": None, "tie": 0},
    {"_id": 4, "s": "ą", "n": -1, "at": datetime(2025, 12, 31, 23, 59), "mixed": [2, 1], "tie": 1},
    {"_id": 5, "s": "", "n": 2**62, "at": datetime(2026, 1, 1), "mixed": True, "tie": 0},
]
SORTS = [[("s", 1)], [("s", -1)], [("n", 1)], [("n", -1), ("_id", 1)], [("at", -1), ("s", 1)], [("mixed", 1)],
         [("mixed", -1)], [("tie", 1)], [("tie", -1), ("n", 1)], [("absent", 1), ("_id", -1)], [("at", 1), ("tie", -1)]]


@pytest.mark.parametrize("sort", SORTS, ids=repr)
def test_a_sorted_find_returns_mongomocks_order(sort: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    fast.install()
    collection = mongomock.MongoClient()["fast_paths"]["sorted"]
    collection.insert_many([dict(d) for d in SORTABLE])
    got = [d["_id"] for d in collection.find({"_id": {"$gt": 0}}).sort(sort)]
    monkeypatch.setattr(mongomock.collection.Collection, "_get_dataset", fast._get_dataset)
    assert got == [d["_id"] for d in collection.find({"_id": {"$gt": 0}}).sort(sort)]


def test_literal_sort_orders() -> None:
    fast.install()
    collection = mongomock.MongoClient()["fast_paths"]["sorted"]
    collection.insert_many([dict(d) for d in SORTABLE])
    assert [d["_id"] for d in collection.find().sort([("n", -1), ("_id", 1)])] == [5, 1, 3, 2, 4]
    assert [d["_id"] for d in collection.find().sort([("at", -1), ("s", 1)])] == [3, 1, 5, 2, 4]
    assert [d["_id"] for d in collection.find().sort([("tie", -1)])] == [1, 2, 4, 3, 5]  # ties keep stored order


PROJECTIONS: list[dict[str, Any]] = [
    {"a": 1}, {"a": True}, {"a": 1, "b.c": 1, "b.d": 1}, {"x.y.z": 0, "w": 0}, {"b.c": 1, "a": 1},
]


@pytest.mark.parametrize("projection", PROJECTIONS, ids=repr)
def test_a_remembered_projection_is_mongomocks(projection: dict[str, Any]) -> None:
    for _ in range(2):  # computed, then remembered
        assert shape(fast.combine_projection_spec(dict(projection))) == shape(
            fast._combine_projection_spec(dict(projection)))
    assert fast.combine_projection_spec({"a": 1, "b.c": 1, "b.d": 1}) == OrderedDict(
        [("a", 1), ("b", OrderedDict([("c", 1), ("d", 1)]))])


def test_a_path_collision_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(mongomock.OperationFailure, match="Path collision at a"):
            fast.combine_projection_spec({"a.b": 1, "a": 1})


async def test_projected_finds_return_what_mongomock_returns() -> None:
    records = memory_client()["fast_paths"]["projected"]
    await records.insert_many([{"_id": i, "a": {"b": i, "c": [i]}, "d": "x", "at": datetime(2026, 1, i + 1)}
                               for i in range(3)])
    assert await records.find({}, {"a.b": 1, "d": 1}).sort("_id", -1).to_list(None) == [
        {"_id": 2, "a": {"b": 2}, "d": "x"}, {"_id": 1, "a": {"b": 1}, "d": "x"}, {"_id": 0, "a": {"b": 0}, "d": "x"}]
    assert await records.find({"_id": 1}, {"a.c": 0, "_id": 0}).to_list(None) == [
        {"a": {"b": 1}, "d": "x", "at": datetime(2026, 1, 2, tzinfo=timezone.utc)}]
