"""The audit trail: append-only, hash-chained records of who read, wrote or was refused what; a chain per writer.

Each writer (one AuditStore, i.e. one server process) draws a fresh id at startup and appends to a chain of its
own: record n of writer W has `_id` = "W:<n, 12 digits>", `writer` = W, `seq` = n (1, 2, 3 ...), `prev` = the
hash of W's record n-1 ("" for n = 1) and `hash` = SHA-256 of its canonical form without `hash`. Editing a
record breaks its hash; deleting one leaves a gap in its chain; rewriting one with a fresh hash breaks the next
record's `prev`. Cutting off a chain's newest records leaves no gap: anchor each chain's head (the
audit_verify.py output, a log) outside the database and verify against it to detect that. The app never updates
or deletes records; in production the app's MongoDB user should hold only find/insert on this collection.

Instances never wait for each other: no shared sequence, no lock across processes. Within one process, appends
are group-committed: every record that arrives while this writer's previous write is in flight, or during the
event-loop turns in which a burst of callers enqueue (a fan-out's pushes, cache hits, concurrent requests), goes
into one `insert_many` (a batch of one is an `insert_one`); each caller gets its record only once that write is
acknowledged, and a failed write fails every caller in it with StoreUnavailable. After a failed write the next
one re-reads the chain's head from the store, since some of the batch may have landed.

Records written before chains were per writer (`_id` = 1, 2, 3 ... with no `writer`) are the legacy chain:
still verified, never appended to. Numbers sort before strings in MongoDB, so one walk of the `_id` index
meets the legacy chain first and then each writer's chain in order.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
from prometheus_client import Histogram
from pymongo import ASCENDING, DESCENDING, IndexModel

from errors import StoreUnavailable
from logs import REQUEST_ID
from stores.database import Database

COLLECTION = "audit"
REQUIRED = ("at", "actor", "action", "outcome")
CHAIN_FIELDS = ("_id", "writer", "seq", "prev", "hash")

# Actions in the bank's words; the field is free text so a new kind of event needs no migration.
READ, WRITE, PUBLISH = "READ", "WRITE", "PUBLISH"
AUTHENTICATION_FAILED, FORBIDDEN = "AUTHENTICATION_FAILED", "FORBIDDEN"

# The name verify reports give the chain of records from before chains were per writer; "(" is not allowed in
# a writer id, so no writer can be mistaken for it.
LEGACY = "(legacy)"
# Letters, digits, ".", "_", "-": no ":" (it ends the writer in an _id) and nothing that sorts between ":" and ";".
_WRITER = re.compile(r"[A-Za-z0-9._-]{1,120}")
_SEQ_DIGITS = 12  # zero-padded, so an _id's text order is its chain order
# One write per batch; bounded so a burst cannot build a write beyond the server's message size.
MAX_BATCH = 500
# Turns of the event loop a batch waits for more records while callers keep arriving (no timer, so an idle
# server commits at once): a fan-out's pushes and concurrent requests land within a few turns of each other.
SETTLE_TURNS = 4

# Every served request waits for its record, so this is latency every caller pays (batch wait included).
APPEND_SECONDS = Histogram("case_repository_audit_append_seconds", "Time to append one audit record",
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
BATCH_RECORDS = Histogram("case_repository_audit_batch_records", "Audit records written in one store write",
                          buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500))

INDEXES = [
    IndexModel([("caseIds", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="case_newest"),
    IndexModel([("customerIds", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="customer_newest"),
    IndexModel([("actor", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="actor_newest"),
    # Multikey: one key per subject a push record names. Not partial: the wire test server plans no partial index.
    IndexModel([("recipients", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="recipients_newest"),
    IndexModel([("at", ASCENDING), ("_id", ASCENDING)], name="at"),
    IndexModel([("writes", ASCENDING)], name="writes", sparse=True),
]


def new_writer_id() -> str:
    """Host, process and a random part: unique per process start, and readable in a verify report."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:60] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


def record_id(writer: str, seq: int) -> str:
    return f"{writer}:{seq:0{_SEQ_DIGITS}d}"


@dataclass(frozen=True)
class ChainReport:
    """One chain as verify found it. `first_broken` and `head_seq` are positions in the chain (`seq`; the `_id`
    in the legacy chain); `head_id`/`head_hash` are the newest record that verified: anchor them elsewhere."""

    writer: str
    ok: bool
    checked: int
    first_broken: int | None = None
    reason: str | None = None
    head_seq: int = 0
    head_id: str | int | None = None
    head_hash: str = ""


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    chains: tuple[ChainReport, ...] = ()

    def chain(self, writer: str) -> ChainReport | None:
        return next((c for c in self.chains if c.writer == writer), None)


@dataclass(frozen=True)
class Anchor:
    """A chain's head as recorded earlier (e.g. from a previous verify report): the chain must still reach it."""

    seq: int
    hash: str


@dataclass(frozen=True)
class AuditPage:
    records: list[dict[str, Any]]
    has_next: bool


@dataclass
class _Waiting:
    body: dict[str, Any]
    done: asyncio.Future[dict[str, Any]]


class AuditStore:
    """Appends audit records to this writer's chain and reads the trail back; one instance per app, shared by
    requests."""

    def __init__(self, db: Database, *, writer: str | None = None) -> None:
        self._records = db.collection(COLLECTION)
        self.writer = new_writer_id() if writer is None else writer
        if not _WRITER.fullmatch(self.writer):
            raise ValueError(f"audit: writer id {self.writer!r} is not letters, digits, '.', '_' or '-'")
        # (seq, hash) of this chain's newest record; None after a failed write, whose fate only the store knows.
        self._head: tuple[int, str] | None = (0, "")
        # The newest record this writer knows is durable: verify checks the chain still reaches it.
        self._confirmed = Anchor(0, "")
        self._waiting: list[_Waiting] = []
        # The task writing now (a caller leading, or the committer after it); None or done: nobody is.
        self._writing: asyncio.Task[Any] | None = None

    async def ensure_indexes(self) -> None:
        await self._records.create_indexes(INDEXES)

    async def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Store `entry` as a record of this writer's chain; return it with _id, writer, seq, prev and hash once
        it is durable. Raises StoreUnavailable when the write it joined failed.

        A record written while a request is served carries its `requestId` (the X-Request-Id of the access log
        line), hashed like every other field, so the trail and the logs can be joined and the link cannot be
        edited unnoticed."""
        request_id = REQUEST_ID.get()
        if request_id is not None and "requestId" not in entry:
            entry = {**entry, "requestId": request_id}
        body = _validated(entry)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        waiting = _Waiting(body, loop.create_future())
        self._waiting.append(waiting)
        try:
            if self._writing is None or self._writing.done():
                await self._lead(waiting)
            return await waiting.done
        finally:
            APPEND_SECONDS.observe(time.perf_counter() - started)

    async def _lead(self, mine: _Waiting) -> None:
        """Nobody is writing: this caller writes, batch after batch, until its own record is durable; records still
        waiting then go to a committer task, so no caller writes for others for longer than for itself. An idle
        server thus pays one loop turn per record, no task and no wake-up."""
        self._writing = asyncio.current_task()
        try:
            await asyncio.sleep(0)  # the rest of this loop turn's callers join the batch
            await self._commit(until=mine, seen=1)
        finally:
            # Also when this caller was cancelled: the others' records are not its to drop.
            self._writing = asyncio.get_running_loop().create_task(self._commit_rest()) if self._waiting else None

    async def _commit_rest(self) -> None:
        try:
            await self._commit(until=None, seen=len(self._waiting))
        except BaseException:
            for waiting in self._waiting:  # the loop is going away: nobody is left to write them
                waiting.done.cancel()
            self._waiting = []
            raise

    async def _commit(self, until: _Waiting | None, seen: int) -> None:
        """Write what is waiting, batch after batch, until `until` is written (None: until nothing waits); one
        write in flight per writer. `seen`: how many waited at the last look. While more keep arriving (a burst:
        a fan-out's pushes, concurrent requests), wait a few more loop turns for them."""
        while self._waiting and not (until is not None and until.done.done()):
            for _turn in range(SETTLE_TURNS):
                if len(self._waiting) == seen or len(self._waiting) >= MAX_BATCH:
                    break
                seen = len(self._waiting)
                await asyncio.sleep(0)
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                records = await self._write([w.body for w in batch])
            except BaseException as error:
                # Failed or interrupted: none of these records is known durable, so none of their callers is served.
                for waiting in batch:
                    if not waiting.done.done():
                        failure = StoreUnavailable(f"audit: the write of {len(batch)} record(s) failed: "
                                                   f"{type(error).__name__}: {error}")
                        failure.__cause__ = error
                        waiting.done.set_exception(failure)
                if until is not None and until in batch and not until.done.cancelled():
                    until.done.exception()  # retrieved here when its caller is the one cancelled
                if not isinstance(error, Exception):
                    raise
                seen = len(self._waiting)
                continue
            for waiting, record in zip(batch, records):
                if not waiting.done.done():  # a caller that went away (cancelled) still has its record
                    waiting.done.set_result(record)
            seen = len(self._waiting)  # these came during the write: together they are the next batch

    async def _write(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._head is None:
            self._head = await self._read_head()
        seq, prev = self._head
        records = []
        for body in bodies:
            seq += 1
            record = {**body, "_id": record_id(self.writer, seq), "writer": self.writer, "seq": seq, "prev": prev}
            record["hash"] = prev = record_hash(record)
            records.append(record)
        try:
            # One record is one insert_one: the same single write, and the round-trip counts stay readable.
            if len(records) == 1:
                await self._records.insert_one(records[0])
            else:
                await self._records.insert_many(records, ordered=True)
        except BaseException:
            self._head = None  # some, all or none may have landed: trust only the store
            raise
        BATCH_RECORDS.observe(len(records))
        self._head = (seq, prev)
        self._confirmed = Anchor(seq, prev)
        return records

    async def _read_head(self) -> tuple[int, str]:
        newest = await self._records.find_one(_chain_range(self.writer), {"seq": 1, "hash": 1},
                                              sort=[("_id", DESCENDING)])
        return (0, "") if newest is None else (newest["seq"], newest["hash"])

    async def recorded_writes(self, write_ids: list[str]) -> set[str]:
        """Which of these writes (ids of the staged audit effects of case writes) already have their record."""
        if not write_ids:
            return set()
        found = await self._records.find({"writes": {"$in": write_ids}}, {"writes": 1}).to_list(None)
        return {w for record in found for w in record.get("writes", ()) if w in set(write_ids)}

    async def trail(self, case_id: str | None = None, customer_id: str | None = None, actor: str | None = None,
                    first: int = 20, after: tuple[datetime, str | int] | None = None) -> AuditPage:
        """Records matching every given filter, newest first (by `at`, then writer and seq, i.e. `_id`);
        `after` is the (at, _id) of the last record seen. `actor` also finds the pushes it was among the
        recipients of (a push to several subscribers has the actor "subscribers")."""
        if first < 0:
            raise ValueError("audit trail: first must not be negative")
        query: dict[str, Any] = {}
        if case_id is not None:
            query["caseIds"] = case_id
        if customer_id is not None:
            query["customerIds"] = customer_id
        if after is not None:
            at, last_id = after
            older: list[dict[str, Any]] = [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": last_id}}]
            if isinstance(last_id, str):
                # Comparisons stay within a type, and a legacy (number) _id sorts before every writer's.
                older.append({"at": at, "_id": {"$type": "number"}})
            query["$or"] = older
        if actor is None:
            docs = await self._newest(query, first + 1)
        else:
            # Two reads, each a walk of its own index in the page's order (actor_newest, recipients_newest), merged
            # here: an $or of the two needs a planner that unions index scans, and a record in both (a push to one
            # subscriber) is one record. The newest first+1 of the union are among the newest first+1 of each.
            as_actor = await self._newest({**query, "actor": actor}, first + 1)
            as_recipient = await self._newest({**query, "recipients": actor}, first + 1)
            docs = sorted({doc["_id"]: doc for doc in as_actor + as_recipient}.values(), key=_newest_first,
                          reverse=True)[:first + 1]
        return AuditPage(records=docs[:first], has_next=len(docs) > first)

    async def _newest(self, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        return await self._records.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(
            limit).to_list(None)

    async def verify(self, anchors: Mapping[str, Anchor] | None = None) -> VerifyReport:
        """Walk every chain oldest first; report per chain the first record whose position, link or hash is
        wrong, or the anchored head it no longer reaches. This writer's newest durable record is an anchor."""
        # Taken before the walk: a record this writer appends during the walk is not a missing tail.
        expected = dict(anchors or {})
        if self._confirmed.seq and self._confirmed.seq > expected.get(self.writer, Anchor(0, "")).seq:
            expected[self.writer] = self._confirmed
        walks: dict[str, _ChainWalk] = {}
        async for record in self._records.find({}).sort([("_id", ASCENDING)]):
            writer, position = _position(record)
            walk = walks.get(writer)
            if walk is None:
                walk = walks[writer] = _ChainWalk(writer, expected.get(writer))
            walk.check(record, position)
        for writer in expected.keys() - walks.keys():
            walks[writer] = _ChainWalk(writer, expected[writer])
        chains = tuple(walk.report() for walk in sorted(walks.values(), key=lambda w: (w.writer != LEGACY, w.writer)))
        return VerifyReport(ok=all(c.ok for c in chains), checked=sum(c.checked for c in chains), chains=chains)


def _newest_first(record: dict[str, Any]) -> tuple[datetime, bool, Any]:
    # MongoDB's order of the trail's sort, ascending: by `at`, then a legacy (number) _id before every writer's.
    return record["at"], isinstance(record["_id"], str), record["_id"]


def _chain_range(writer: str) -> dict[str, Any]:
    # Every _id of the chain starts with "writer:" and ";" follows ":": one range of the _id index.
    return {"_id": {"$gte": f"{writer}:", "$lt": f"{writer};"}}


def _position(record: dict[str, Any]) -> tuple[str, int | None]:
    """(chain, seq) that the record's `_id` claims; the `_id` cannot be updated, so it decides the chain."""
    record_id = record.get("_id")
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        return LEGACY, record_id
    if isinstance(record_id, str):
        writer, colon, seq = record_id.rpartition(":")
        if colon and _WRITER.fullmatch(writer) and seq.isdigit() and len(seq) == _SEQ_DIGITS:
            return writer, int(seq)
    return f"(foreign {record_id!r})", None


@dataclass
class _ChainWalk:
    writer: str
    anchor: Anchor | None
    checked: int = 0
    expected: int = 1
    prev: str = ""
    head_id: str | int | None = None
    problem: tuple[int, str] | None = None

    def check(self, record: dict[str, Any], position: int | None) -> None:
        if self.problem is not None:
            return  # past the first break nothing links: one finding per chain
        self.checked += 1
        problem = (f"record {record.get('_id')!r} is not part of any chain" if position is None
                   else _chain_problem(record, self.writer, position, self.expected, self.prev))
        if problem is None and self.anchor is not None and position == self.anchor.seq \
                and record["hash"] != self.anchor.hash:
            problem = f"record {position}: hash differs from the anchored head (chain rewritten)"
        if problem is not None:
            self.problem = (self.expected, problem)
            return
        self.expected, self.prev, self.head_id = self.expected + 1, record["hash"], record["_id"]

    def report(self) -> ChainReport:
        head = self.expected - 1
        if self.problem is None and self.anchor is not None and self.anchor.seq > head:
            self.problem = (head + 1, f"records {head + 1}..{self.anchor.seq} are missing (tail removed)")
        if self.problem is not None:
            first_broken, reason = self.problem
            return ChainReport(writer=self.writer, ok=False, checked=self.checked, first_broken=first_broken,
                               reason=reason, head_seq=head, head_id=self.head_id, head_hash=self.prev)
        return ChainReport(writer=self.writer, ok=True, checked=self.checked, head_seq=head, head_id=self.head_id,
                           head_hash=self.prev)


def _chain_problem(record: dict[str, Any], writer: str, position: int, expected: int, prev_hash: str) -> str | None:
    if position != expected:
        if position > expected:
            return f"record {expected} is missing (next is {position})"
        return f"record {expected} is missing (found {position})"
    if writer != LEGACY and (record.get("writer"), record.get("seq")) != (writer, position):
        return f"record {expected}: writer and seq do not match its _id"
    if record.get("prev") != prev_hash:
        return f"record {expected}: prev does not match the hash of record {expected - 1}"
    try:
        content_hash = record_hash(record)
    except TypeError:  # a value the store never writes: planted or edited outside the app
        return f"record {expected}: holds a value that has no canonical form"
    if record.get("hash") != content_hash:
        return f"record {expected}: hash does not match its content"
    return None


def record_hash(record: dict[str, Any]) -> str:
    """Hex SHA-256 of the record without `hash` as compact UTF-8 JSON, keys sorted at every level.

    Dates are {"$date": "<ISO UTC, milliseconds>Z"} and bytes {"$bytes": "<base64>"}. A value of any other type
    than JSON's, a date or bytes (none that the store writes) raises TypeError.
    """
    content = {key: value for key, value in record.items() if key != "hash"}
    # orjson walks the record in C and hands only dates and bytes back to _tag: every record pays this twice
    # (append and verify), so no Python-level copy of the whole record.
    return hashlib.sha256(orjson.dumps(content, default=_tag, option=_HASH_OPTIONS)).hexdigest()


_HASH_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _tag(value: Any) -> Any:
    # Tags keep types apart in the hash: a date replaced by its ISO text would otherwise hash the same.
    # Keys starting with "$" are refused on append, so a tag cannot be forged by a stored dict.
    if isinstance(value, datetime):
        return {"$date": _utc_millis(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    raise TypeError(f"audit record: a value of type {type(value).__name__} has no canonical form")


def _utc_millis(moment: datetime) -> datetime:
    # MongoDB keeps milliseconds in UTC: hash exactly what a later read will return.
    aware = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return aware.replace(microsecond=aware.microsecond // 1000 * 1000)


# Every text in a record is bounded (issue 11: an 8 KB header once went into the trail as it came). Values taken from
# request headers or named by the client get tight bounds; any other text at most MAX_TEXT characters.
MAX_TEXT = 2_000
TEXT_BOUNDS = {"channel": 64, "remote": 64, "operation": 200, "actor": 256, "actorName": 256, "reason": 500,
               "requestId": 128, "action": 64, "outcome": 32}
TRUNCATED = "…[truncated]"


def _validated(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as it will be stored: required fields present, dates in UTC milliseconds, lists not tuples, every
    text valid UTF-8 and bounded (TEXT_BOUNDS, MAX_TEXT)."""
    missing = [name for name in REQUIRED if entry.get(name) in (None, "")]
    if missing:
        raise ValueError(f"audit record: missing {', '.join(missing)}")
    if not isinstance(entry["at"], datetime):
        raise ValueError("audit record: at must be a datetime")
    reserved = [name for name in CHAIN_FIELDS if name in entry]
    if reserved:
        raise ValueError(f"audit record: {', '.join(reserved)} are set by the store")
    return _storable(entry, "")


def _bounded_text(value: str, path: str) -> str:
    # A header decoded with surrogateescape carries lone surrogates, which neither BSON nor the hash can encode.
    text = value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")
    limit = TEXT_BOUNDS.get(path, MAX_TEXT)
    return text if len(text) <= limit else text[:limit - len(TRUNCATED)] + TRUNCATED


# The tightest bound of TEXT_BOUNDS: a shorter ASCII text fits every bound, so it needs no lookup.
_ALWAYS_FITS = min(TEXT_BOUNDS.values())
_TEXT_ONLY = {str}


def _storable(value: Any, path: str) -> Any:
    kind = type(value)
    # The common kinds first, by exact type: every record of every request and push passes through here.
    if kind is dict:
        return _storable_fields(value, path)
    if kind is str:
        return _bounded_text(value, path)
    if value is None or kind is bool or kind is int or kind is float or kind is bytes:
        return value
    if isinstance(value, datetime):
        return _utc_millis(value)
    if isinstance(value, dict):
        return _storable_fields(value, path)
    if isinstance(value, (list, tuple)):
        limit = TEXT_BOUNDS.get(path, MAX_TEXT)
        # Most lists are short ASCII names (fields read, case ids): kept as they are without a call per item.
        if not value or (set(map(type, value)) == _TEXT_ONLY and max(map(len, value)) <= limit
                         and "".join(value).isascii()):
            return list(value)
        return [_storable(item, path) for item in value]
    if isinstance(value, str):
        return _bounded_text(value, path)
    if isinstance(value, (bool, int, float, bytes)):
        return value
    raise ValueError(f"audit record: {path} has a value of type {type(value).__name__} that cannot be stored")


def _storable_fields(value: dict[Any, Any], path: str) -> dict[str, Any]:
    """A dict's fields as stored. A short ASCII text, a number, a boolean, None and an empty list are kept here
    without a call: a request's record is mostly those (~15 fields), and a call per field was most of its cost."""
    stored: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or key.startswith("$"):
            raise ValueError(f"audit record: field name {key!r} at {path or 'top level'} is not allowed")
        kind = type(item)
        if (kind is str and len(item) <= _ALWAYS_FITS and item.isascii()) or item is None or kind is bool \
                or kind is int or kind is float or (kind is list and not item):
            stored[key] = list(item) if kind is list else item
        else:
            stored[key] = _storable(item, f"{path}.{key}" if path else key)
    return stored
