"""The audit trail: an append-only, hash-chained record of who read, wrote or was refused what.

Record n has `_id` = n (1, 2, 3 ...), `prev` = the hash of record n-1 ("" for record 1) and `hash` =
SHA-256 of its canonical form without `hash`. Editing a record breaks its hash; deleting one leaves a gap;
rewriting a record with a fresh hash breaks the next record's `prev`. The app never updates or deletes
records; in production the app's MongoDB user should hold only find/insert on this collection.

Without transactions, the sequence number is the lock: a writer inserts `_id` = head + 1, and a
DuplicateKeyError means another writer (another instance) took that number first, so it re-reads the head
and tries again. Truncating the newest records leaves no gap: anchor `VerifyReport.head_hash` outside
the database (the audit_verify.py output, a log) to detect that.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
from pymongo import ASCENDING, DESCENDING, IndexModel
from prometheus_client import Histogram
from pymongo.errors import DuplicateKeyError

from errors import StoreUnavailable
from logs import REQUEST_ID
from stores.database import Database

COLLECTION = "audit"
REQUIRED = ("at", "actor", "action", "outcome")
CHAIN_FIELDS = ("_id", "prev", "hash")

# Actions in the bank's words; the field is free text so a new kind of event needs no migration.
READ, WRITE, PUBLISH = "READ", "WRITE", "PUBLISH"
AUTHENTICATION_FAILED, FORBIDDEN = "AUTHENTICATION_FAILED", "FORBIDDEN"

# Every served request waits for its record, so this is latency every caller pays (lock wait and retries included).
APPEND_SECONDS = Histogram("case_repository_audit_append_seconds", "Time to append one audit record",
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))

# Two writers rarely collide more than a few times in a row; beyond this the store is in trouble.
MAX_APPEND_ATTEMPTS = 25

INDEXES = [
    IndexModel([("caseIds", ASCENDING), ("_id", DESCENDING)], name="case_newest"),
    IndexModel([("customerIds", ASCENDING), ("_id", DESCENDING)], name="customer_newest"),
    IndexModel([("actor", ASCENDING), ("_id", DESCENDING)], name="actor_newest"),
    IndexModel([("at", ASCENDING)], name="at"),
    IndexModel([("writes", ASCENDING)], name="writes", sparse=True),
]


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    first_broken: int | None = None
    reason: str | None = None
    # The newest record that verified: anchor it elsewhere to detect a truncated tail later.
    head_id: int = 0
    head_hash: str = ""


@dataclass(frozen=True)
class AuditPage:
    records: list[dict[str, Any]]
    has_next: bool


class AuditStore:
    """Appends audit records to the chain and reads them back; one instance per app, shared by requests."""

    def __init__(self, db: Database) -> None:
        self._records = db.collection(COLLECTION)
        self._head: tuple[int, str] | None = None  # (last _id, its hash) as this instance last saw it
        # One append at a time per instance: coroutines of one process never race each other for a number.
        self._lock = asyncio.Lock()

    async def ensure_indexes(self) -> None:
        await self._records.create_indexes(INDEXES)

    async def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Store `entry` as the next record of the chain and return it with _id, prev and hash.

        A record written while a request is served carries its `requestId` (the X-Request-Id of the access log
        line), hashed like every other field, so the trail and the logs can be joined and the link cannot be
        edited unnoticed."""
        request_id = REQUEST_ID.get()
        if request_id is not None and "requestId" not in entry:
            entry = {**entry, "requestId": request_id}
        body = _validated(entry)
        started = time.perf_counter()
        try:
            return await self._append(body)
        finally:
            APPEND_SECONDS.observe(time.perf_counter() - started)

    async def _append(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            for _attempt in range(MAX_APPEND_ATTEMPTS):
                if self._head is None:
                    self._head = await self._read_head()
                last_id, last_hash = self._head
                record = {**body, "_id": last_id + 1, "prev": last_hash}
                record["hash"] = record_hash(record)
                try:
                    await self._records.insert_one(record)
                except DuplicateKeyError:
                    self._head = None  # another writer took this number: read the real head and retry
                    continue
                except BaseException:
                    self._head = None  # the insert may or may not have landed: trust only the store
                    raise
                self._head = (record["_id"], record["hash"])
                return record
        raise StoreUnavailable(f"audit: could not append after {MAX_APPEND_ATTEMPTS} attempts (contention)")

    async def recorded_writes(self, write_ids: list[str]) -> set[str]:
        """Which of these writes (ids of the staged audit effects of case writes) already have their record."""
        if not write_ids:
            return set()
        found = await self._records.find({"writes": {"$in": write_ids}}, {"writes": 1}).to_list(None)
        return {w for record in found for w in record.get("writes", ()) if w in set(write_ids)}

    async def _read_head(self) -> tuple[int, str]:
        newest = await self._records.find_one({}, {"hash": 1}, sort=[("_id", DESCENDING)])
        return (0, "") if newest is None else (newest["_id"], newest["hash"])

    async def trail(self, case_id: str | None = None, customer_id: str | None = None, actor: str | None = None,
                    first: int = 20, after: int | None = None) -> AuditPage:
        """Records matching every given filter, newest first; `after` is the _id of the last record seen."""
        if first < 0:
            raise ValueError("audit trail: first must not be negative")
        query: dict[str, Any] = {}
        if case_id is not None:
            query["caseIds"] = case_id
        if customer_id is not None:
            query["customerIds"] = customer_id
        if actor is not None:
            query["actor"] = actor
        if after is not None:
            query["_id"] = {"$lt": after}
        docs = await self._records.find(query).sort([("_id", DESCENDING)]).limit(first + 1).to_list(None)
        return AuditPage(records=docs[:first], has_next=len(docs) > first)

    async def verify(self) -> VerifyReport:
        """Walk the chain oldest first; report the first record whose number, link or hash is wrong."""
        # Taken before the walk: a record this instance appends during the walk is not a missing tail.
        known_head = self._head
        expected_id, prev_hash, checked = 1, "", 0
        async for record in self._records.find({}).sort([("_id", ASCENDING)]):
            checked += 1
            problem = _chain_problem(record, expected_id, prev_hash)
            if problem is not None:
                return VerifyReport(ok=False, checked=checked, first_broken=expected_id, reason=problem,
                                    head_id=expected_id - 1, head_hash=prev_hash)
            expected_id, prev_hash = expected_id + 1, record["hash"]
        head_id = expected_id - 1
        if known_head is not None and known_head[0] > head_id:
            # This instance wrote records that are no longer there: the tail was cut off.
            return VerifyReport(ok=False, checked=checked, first_broken=head_id + 1,
                                reason=f"records {head_id + 1}..{known_head[0]} are missing (tail removed)",
                                head_id=head_id, head_hash=prev_hash)
        return VerifyReport(ok=True, checked=checked, head_id=head_id, head_hash=prev_hash)


def _chain_problem(record: dict[str, Any], expected_id: int, prev_hash: str) -> str | None:
    record_id = record.get("_id")
    if record_id != expected_id:
        if isinstance(record_id, int) and record_id > expected_id:
            return f"record {expected_id} is missing (next is {record_id})"
        return f"record {expected_id} is missing (found _id {record_id!r})"
    if record.get("prev") != prev_hash:
        return f"record {expected_id}: prev does not match the hash of record {expected_id - 1}"
    if record.get("hash") != record_hash(record):
        return f"record {expected_id}: hash does not match its content"
    return None


def record_hash(record: dict[str, Any]) -> str:
    """Hex SHA-256 of the record without `hash` as compact UTF-8 JSON, keys sorted at every level.

    Dates are {"$date": "<ISO UTC, milliseconds>Z"} and bytes {"$bytes": "<base64>"}.
    """
    content = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(orjson.dumps(_tagged(content), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _tagged(value: Any) -> Any:
    # Tags keep types apart in the hash: a date replaced by its ISO text would otherwise hash the same.
    # Keys starting with "$" are refused on append, so a tag cannot be forged by a stored dict.
    if isinstance(value, datetime):
        return {"$date": _utc_millis(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {key: _tagged(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tagged(item) for item in value]
    return value


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
    text = value.encode("utf-8", "replace").decode("utf-8")
    limit = TEXT_BOUNDS.get(path, MAX_TEXT)
    return text if len(text) <= limit else text[:limit - len(TRUNCATED)] + TRUNCATED


def _storable(value: Any, path: str) -> Any:
    if isinstance(value, datetime):
        return _utc_millis(value)
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or key.startswith("$"):
                raise ValueError(f"audit record: field name {key!r} at {path or 'top level'} is not allowed")
        return {key: _storable(item, f"{path}.{key}" if path else key) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(item, path) for item in value]
    if isinstance(value, str):
        return _bounded_text(value, path)
    if value is None or isinstance(value, (bool, int, float, bytes)):
        return value
    raise ValueError(f"audit record: {path} has a value of type {type(value).__name__} that cannot be stored")
