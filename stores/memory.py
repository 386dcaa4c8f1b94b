"""The in-memory store (mongomock-motor) used by `make run` and the tests.

pymongo >= 4.11 passes `sort=` to bulk update operations, which mongomock 4.3 does not accept. We keep a
current pymongo for real MongoDB and teach mongomock's bulk builder to accept (and refuse to ignore) it.
"""
from __future__ import annotations

import time
from typing import Any

import mongomock.aggregate
import mongomock.collection
import mongomock.filtering
import mongomock.store
from mongomock_motor import AsyncMongoMockClient

_Builder = mongomock.collection.BulkOperationBuilder


def _without_sort(method: Any) -> Any:
    def call(self: Any, *args: Any, sort: Any = None, **kwargs: Any) -> Any:
        if sort is not None:
            raise NotImplementedError("the in-memory store cannot sort inside a bulk update")
        return method(self, *args, **kwargs)

    call.__wrapped__ = method  # type: ignore[attr-defined]
    return call


if not hasattr(_Builder.add_update, "__wrapped__"):
    _Builder.add_update = _without_sort(_Builder.add_update)
    _Builder.add_replace = _without_sort(_Builder.add_replace)


def memory_client() -> Any:
    """A fresh in-memory MongoDB client; datetimes come back timezone-aware like the real one."""
    return AsyncMongoMockClient(tz_aware=True)


# mongomock runs every aggregation over a deep copy of the whole collection, and a `$lookup` as one scan of the
# foreign collection per input document. Two adapters with identical results: a leading `$match` (with the
# `$sort`/`$limit` right after it) becomes a cursor, so only matching documents are copied; a `$lookup`
# makes one `$in` query for all its input documents.
_Collection = mongomock.collection.Collection


def _cursor_first(original: Any) -> Any:
    def aggregate(self: Any, pipeline: list[dict[str, Any]], session: Any = None, **kwargs: Any) -> Any:
        stages = list(pipeline)
        if not stages or "$match" not in stages[0] or len(stages[0]) != 1:
            return original(self, pipeline, session=session, **kwargs)
        cursor = self.find(stages.pop(0)["$match"])
        if stages and "$sort" in stages[0] and len(stages[0]) == 1:
            cursor = cursor.sort(list(stages.pop(0)["$sort"].items()))
            if stages and "$limit" in stages[0] and len(stages[0]) == 1:
                cursor = cursor.limit(stages.pop(0)["$limit"])
        return mongomock.aggregate.process_pipeline(list(cursor), self.database, stages, session)

    aggregate.__wrapped__ = original  # type: ignore[attr-defined]
    return aggregate


def _lookup_in_one_query(in_collection: list[dict[str, Any]], database: Any, options: dict[str, Any]) -> Any:
    local, foreign, name = options["localField"], options["foreignField"], options["as"]
    if set(options) != {"from", "localField", "foreignField", "as"} or "." in local or "." in foreign:
        return _original_lookup(in_collection, database, options)
    values = [doc.get(local) for doc in in_collection]
    if any(isinstance(v, (list, dict)) for v in values):
        return _original_lookup(in_collection, database, options)
    matches: dict[Any, list[dict[str, Any]]] = {}
    for found in database.get_collection(options["from"]).find({foreign: {"$in": values}}):
        matches.setdefault(found.get(foreign), []).append(found)
    for doc in in_collection:
        doc[name] = list(matches.get(doc.get(local), []))
    return in_collection


if not hasattr(_Collection.aggregate, "__wrapped__"):
    _original_lookup = mongomock.aggregate._PIPELINE_HANDLERS["$lookup"]
    _Collection.aggregate = _cursor_first(_Collection.aggregate)
    mongomock.aggregate._PIPELINE_HANDLERS["$lookup"] = _lookup_in_one_query


# mongomock finds every document by scanning the whole collection, `_id` lookups included, so a read by id costs
# time in proportion to the collection. A filter that names its `_id`s (a value or `$in`) starts from those
# documents instead; the full filter still decides, so the answer is the same.
_SCALAR_IDS = (str, int)


def _named_ids(filter: Any) -> list[Any] | None:
    if not isinstance(filter, dict) or "_id" not in filter:
        return None
    wanted = filter["_id"]
    if isinstance(wanted, _SCALAR_IDS) and not isinstance(wanted, bool):
        return [wanted]
    if isinstance(wanted, dict) and list(wanted) == ["$in"] and isinstance(wanted["$in"], (list, tuple)):
        ids = wanted["$in"]
        if all(isinstance(i, _SCALAR_IDS) and not isinstance(i, bool) for i in ids):
            return list(dict.fromkeys(ids))
    return None


def _by_id_first(original: Any) -> Any:
    def iter_documents(self: Any, filter: Any) -> Any:
        ids = _named_ids(filter)
        if ids is None or self._store.is_empty:
            return original(self, filter)
        store = self._store
        candidates = [store[i] for i in ids if i in store]
        return (document for document in candidates if mongomock.filtering.filter_applies(filter, document))

    iter_documents.__wrapped__ = original  # type: ignore[attr-defined]
    return iter_documents


if not hasattr(_Collection._iter_documents, "__wrapped__"):
    _Collection._iter_documents = _by_id_first(_Collection._iter_documents)


# mongomock enforces a TTL index by scanning the whole collection on every operation (the outbox keeps sent
# messages under one), which makes each operation cost as much as the collection is long. MongoDB's own TTL
# monitor removes expired documents once a minute; the in-memory store now does the same.
TTL_MONITOR_SECONDS = 60.0
_CollectionStore = mongomock.store.CollectionStore


def _once_a_minute(original: Any) -> Any:
    def remove_expired_documents(self: Any) -> None:
        now = time.monotonic()
        if now - getattr(self, "_ttl_checked_at", float("-inf")) < TTL_MONITOR_SECONDS:
            return
        self._ttl_checked_at = now
        original(self)

    remove_expired_documents.__wrapped__ = original  # type: ignore[attr-defined]
    return remove_expired_documents


if not hasattr(_CollectionStore._remove_expired_documents, "__wrapped__"):
    _CollectionStore._remove_expired_documents = _once_a_minute(_CollectionStore._remove_expired_documents)
