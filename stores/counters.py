"""Fixed-window counters with locks, shared by every instance through the store (throttling: the panel's sign-in,
PESEL lookups). Documents expire with a TTL index on `expiresAt`; reads never trust a window past its end."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from stores.database import Database

_EXPIRE = IndexModel([("expiresAt", ASCENDING)], name="expires_ttl", expireAfterSeconds=0)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Count:
    count: int
    locked_until: datetime | None


class WindowCounters:
    """Fixed-window counters (`_id` = what is counted), each with an optional lock."""

    def __init__(self, db: Database, collection: str) -> None:
        self._counters = db.collection(collection)

    async def ensure_indexes(self) -> None:
        await self._counters.create_indexes([_EXPIRE])

    async def read(self, key: str) -> Count:
        now = _now()
        doc = await self._counters.find_one({"_id": key})
        if doc is None:
            return Count(0, None)
        locked = doc.get("lockedUntil")
        live_lock = locked if locked is not None and locked > now else None
        return Count(doc["count"] if doc["windowEnds"] > now else 0, live_lock)

    async def add(self, key: str, window: timedelta) -> int:
        """Count one more in the current window (a new window if the last one ended); the count now."""
        for _attempt in range(3):
            now = _now()
            doc = await self._counters.find_one_and_update(
                {"_id": key, "windowEnds": {"$gt": now}}, {"$inc": {"count": 1}}, return_document=ReturnDocument.AFTER)
            if doc is not None:
                return doc["count"]
            try:
                # A lock outlives its window: the new window keeps it (a lock is lifted by time, not by counting).
                old = await self._counters.find_one({"_id": key}, {"lockedUntil": 1, "expiresAt": 1})
                locked = (old or {}).get("lockedUntil")
                await self._counters.replace_one(
                    {"_id": key, "windowEnds": {"$lte": now}},
                    {"_id": key, "count": 1, "windowEnds": now + window, "lockedUntil": locked,
                     "expiresAt": max(now + window, locked or now)}, upsert=True)
                return 1
            except DuplicateKeyError:
                continue  # another instance opened the window first: count in it
        raise RuntimeError(f"counter {key} kept changing")

    async def lock(self, key: str, until: datetime) -> None:
        await self._counters.update_one({"_id": key}, {"$set": {"lockedUntil": until},
                                                       "$max": {"expiresAt": until}})

    async def clear(self, key: str) -> None:
        await self._counters.delete_one({"_id": key})
