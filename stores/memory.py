"""The in-memory store (mongomock) used by `make run` and the tests, served off the event loop.

mongomock is plain Python: every call computes its answer at once, so run on the event loop one slow call (a scan
of a long collection, a filter with many clauses) would stop every other request, `/healthz` included. Its calls
run instead on one dedicated worker thread (`MemoryClient`): the loop stays free while a call computes, and one
thread keeps mongomock's single-threaded assumptions (no two calls ever touch its data at once). The async face
is the subset of motor's that the stores use.

pymongo >= 4.11 passes `sort=` to bulk update operations, which mongomock 4.3 does not accept. We keep a
current pymongo for real MongoDB and teach mongomock's bulk builder to accept (and refuse to ignore) it.
"""
from __future__ import annotations

import asyncio
import functools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import mongomock
import mongomock.aggregate
import mongomock.collection
import mongomock.filtering
import mongomock.store
# mongomock-motor's patches give a DuplicateKeyError the `keyValue`/`keyPattern` details real MongoDB sends.
from mongomock_motor.patches import _patch_client_internals, _patch_collection_internals

from stores import memory_fast_paths

_Builder = mongomock.collection.BulkOperationBuilder


def _without_sort(method: Any) -> Any:
    def call(self: Any, *args: Any, sort: Any = None, **kwargs: Any) -> Any:
        if sort is not None:
            raise NotImplementedError("the in-memory store cannot sort inside a bulk update")
        return method(self, *args, **kwargs)

    call.__wrapped__ = method  # type: ignore[attr-defined]
    return call


def _forgetting_operations(method: Any) -> Any:
    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            # Each queued operation is a closure over the builder: a reference cycle per bulk write, left to the
            # garbage collector (two per ingest) where dropping the list lets reference counting free it.
            self.executors = []

    execute.__wrapped__ = method  # type: ignore[attr-defined]
    return execute


if not hasattr(_Builder.add_update, "__wrapped__"):
    _Builder.add_update = _without_sort(_Builder.add_update)
    _Builder.add_replace = _without_sort(_Builder.add_replace)
    _Builder.execute = _forgetting_operations(_Builder.execute)


def memory_client() -> MemoryClient:
    """A fresh in-memory MongoDB client; datetimes come back timezone-aware like the real one.

    The first one puts cheaper drop-ins for mongomock's per-value helpers and its sort in place
    (`stores.memory_fast_paths`: the same answers; an insert in ~55 % of the time, an ingest in ~75 %)."""
    memory_fast_paths.install()
    return MemoryClient(_patch_client_internals(mongomock.MongoClient(tz_aware=True)))


class _StoreThread:
    """The thread every in-memory client of the process shares: mongomock is not thread-safe, and a thread per client
    would leave one idle thread behind for each test's database. Calls run one at a time, in the order they came.

    A plain queue and one `call_soon_threadsafe` per answer, rather than `run_in_executor`: the executor's own
    bookkeeping (its lock, a concurrent future chained to an asyncio one, its thread-count check) was a tenth of the
    serving process's samples when a push's ingest made a dozen store calls."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]]] = (
            queue.SimpleQueue())
        threading.Thread(target=self._serve, name="in-memory-store", daemon=True).start()

    def run(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._calls.put((loop, future, call))
        return future

    def _serve(self) -> None:
        while True:
            loop, future, call = self._calls.get()
            try:
                result, error = call(), None
            except BaseException as raised:  # handed to the caller, as the executor did
                result, error = None, raised
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:
                pass  # that loop is closed: nobody waits for the answer


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return  # the caller went away; the call itself has run, as a real store's would have
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


_WORKER = _StoreThread()
# `async for` over a cursor fetches this many documents per trip to the worker.
_BATCH = 1000


async def _off_loop(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`call(*args, **kwargs)` on the store's worker thread; the event loop serves other requests meanwhile."""
    return await _WORKER.run(functools.partial(call, *args, **kwargs))


class MemoryClient:
    def __init__(self, client: Any) -> None:
        self._client = client

    def __getitem__(self, name: str) -> MemoryDatabase:
        return MemoryDatabase(self._client[name])

    def get_database(self, name: str) -> MemoryDatabase:
        return self[name]

    async def drop_database(self, name: str) -> None:
        await _off_loop(self._client.drop_database, name)

    def close(self) -> None:
        """Nothing to release: the data lives as long as the client object."""


class MemoryDatabase:
    def __init__(self, database: Any) -> None:
        self._database = database
        self.name: str = database.name

    def __getitem__(self, name: str) -> MemoryCollection:
        return MemoryCollection(self, self._database.get_collection(name))

    def get_collection(self, name: str) -> MemoryCollection:
        return self[name]

    async def command(self, command: Any, **kwargs: Any) -> Any:
        return await _off_loop(self._database.command, command, **kwargs)

    async def list_collection_names(self) -> list[str]:
        return await _off_loop(self._database.list_collection_names)

    async def drop_collection(self, name: str) -> None:
        await _off_loop(self._database.drop_collection, name)


# The collection operations the stores await; each one runs whole on the worker.
_ASYNC_OPERATIONS = frozenset({
    "bulk_write", "count_documents", "create_index", "create_indexes", "delete_many", "delete_one", "distinct",
    "drop", "drop_index", "drop_indexes", "estimated_document_count", "find_one", "find_one_and_delete",
    "find_one_and_replace", "find_one_and_update", "index_information", "insert_many", "insert_one",
    "replace_one", "update_many", "update_one",
})


class MemoryCollection:
    def __init__(self, database: MemoryDatabase, collection: Any) -> None:
        self.database = database
        self._collection = _patch_collection_internals(collection)
        self.name: str = collection.name

    def __getattr__(self, operation: str) -> Any:
        if operation not in _ASYNC_OPERATIONS:
            raise AttributeError(f"the in-memory store does not offer {operation!r}")
        method = getattr(self._collection, operation)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await _off_loop(method, *args, **kwargs)

        return call

    def find(self, *args: Any, **kwargs: Any) -> MemoryCursor:
        return MemoryCursor(functools.partial(self._collection.find, *args, **kwargs))

    def aggregate(self, pipeline: list[dict[str, Any]], **kwargs: Any) -> MemoryCursor:
        # mongomock runs a pipeline when it is called: deferred to the worker like a find.
        return MemoryCursor(functools.partial(self._collection.aggregate, pipeline, **kwargs))

    def list_indexes(self) -> MemoryCursor:
        return MemoryCursor(lambda: iter(list(self._collection.list_indexes())))


# Cursor modifiers: recorded on the loop, applied on the worker before the first document is read.
_MODIFIERS = frozenset({"sort", "limit", "skip", "batch_size", "hint", "collation", "max_time_ms", "comment",
                        "allow_disk_use"})


class MemoryCursor:
    """A lazy cursor: opened, modified and read on the worker thread."""

    def __init__(self, open_cursor: Callable[[], Any]) -> None:
        self._open = open_cursor
        self._modifiers: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._cursor: Any = None
        self._buffer: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        if name not in _MODIFIERS:
            raise AttributeError(f"the in-memory store's cursors do not offer {name!r}")

        def modify(*args: Any, **kwargs: Any) -> MemoryCursor:
            if self._cursor is not None:
                raise RuntimeError(f"{name}() after the cursor was read")
            self._modifiers.append((name, args, kwargs))
            return self

        return modify

    def _opened(self) -> Any:
        if self._cursor is None:
            cursor = self._open()
            for name, args, kwargs in self._modifiers:
                modified = getattr(cursor, name)(*args, **kwargs)
                cursor = cursor if modified is None else modified
            self._cursor = iter(cursor)
        return self._cursor

    def _read(self, count: int | None) -> list[Any]:
        cursor = self._opened()
        if count is None:
            return list(cursor)
        batch = []
        for document in cursor:
            batch.append(document)
            if len(batch) >= count:
                break
        return batch

    async def to_list(self, length: int | None = None) -> list[Any]:
        documents, self._buffer = self._buffer, []
        wanted = None if length is None else length - len(documents)
        if wanted is None or wanted > 0:
            documents += await _off_loop(self._read, wanted)
        return documents

    def __aiter__(self) -> MemoryCursor:
        return self

    async def __anext__(self) -> Any:
        if not self._buffer:
            self._buffer = await _off_loop(self._read, _BATCH)
            if not self._buffer:
                raise StopAsyncIteration
        return self._buffer.pop(0)


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
# documents instead; one with another plain equality or `$in` clause scans with a cheap screen first (`_screen`).
# The full filter still decides, so the answer is the same.
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


def _is_scalar(value: Any) -> bool:
    return isinstance(value, _SCALAR_IDS) and not isinstance(value, bool)


_ABSENT = object()


def _screen(filter: Any) -> Callable[[dict[str, Any]], bool] | None:
    """A quick test passing every document that a top-level clause `{field: value}` or `{field: {$in: [values]}}`
    (plain strings or integers) may match, or None when the filter has no such clause. mongomock's own matching
    costs ~10 µs a document whatever the filter; a lookup that MongoDB serves from an index (the audit store's
    `writes`, the journal's `caseId`) then costs a scan of the collection, which grows with every request."""
    if not isinstance(filter, dict):
        return None
    for field, condition in filter.items():
        if not isinstance(field, str) or field.startswith("$") or "." in field:
            continue
        if _is_scalar(condition):
            wanted = {condition}
        elif (isinstance(condition, dict) and list(condition) == ["$in"] and isinstance(condition["$in"], (list, tuple))
              and condition["$in"] and all(_is_scalar(v) for v in condition["$in"])):
            wanted = set(condition["$in"])
        else:
            continue

        def may_match(document: dict[str, Any], field: str = field, wanted: set[Any] = wanted) -> bool:
            value = document.get(field, _ABSENT)
            if value is _ABSENT:
                return False  # neither clause matches a missing field (no None among the values)
            if _is_scalar(value):
                return value in wanted
            if isinstance(value, list):
                return any(not _is_scalar(v) or v in wanted for v in value)
            return True  # another type: the filter decides
        return may_match
    return None


def _by_id_first(original: Any) -> Any:
    def iter_documents(self: Any, filter: Any) -> Any:
        if self._store.is_empty:
            return original(self, filter)
        ids = _named_ids(filter)
        if ids is not None:
            store = self._store
            candidates = [store[i] for i in ids if i in store]
        elif (screen := _screen(filter)) is not None:
            # `store.documents` without its generator: the same expiry check, the same lock, the same order
            store = self._store
            store._remove_expired_documents()
            with store._rwlock.reader():
                candidates = [document for document in store._documents.values() if screen(document)]
        else:
            return original(self, filter)
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
