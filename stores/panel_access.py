"""Customer Panel sign-in state in MongoDB: one-time codes, throttling counters, invitations and sessions.

Instances share nothing but the database, so every count and lock lives here, and every collection expires its
documents with a TTL index (MongoDB removes them about a minute after their `expiresAt`; reads never trust a
document past its time, so that minute does not matter). Codes and session tokens are stored only as keyed hashes;
PESEL fragments never: counters are keyed by a keyed hash of (case, fragment).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument

from stores.counters import WindowCounters
from stores.database import Database
from stores.staged_records import STAGED_INDEX, StagedRecords

CODES, COUNTERS, INVITATIONS, SESSIONS = "panel_codes", "panel_counters", "panel_invitations", "panel_sessions"
_EXPIRE = IndexModel([("expiresAt", ASCENDING)], name="expires_ttl", expireAfterSeconds=0)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _StagingRecords:
    """Records that stage their own outbound messages (a code, an invitation), relayed by consumers/staging.py."""

    def __init__(self, db: Database, name: str) -> None:
        self.collection = db.collection(name)
        self._staged = StagedRecords(self.collection, "writeId")

    async def staged(self, older_than: datetime, limit: int) -> list[dict[str, Any]]:
        return await self._staged.staged(older_than, limit)

    async def clear_staged(self, relayed: Sequence[dict[str, Any]]) -> None:
        await self._staged.clear(relayed)


class PanelCodeStore(_StagingRecords):
    """The current code of each participant (`_id` = case/participant): a new one replaces, and so voids, the last."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, CODES)

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes([_EXPIRE, STAGED_INDEX])

    async def issue(self, key: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Replace the participant's code with `doc` (its hash, expiry, staged message); the record as written."""
        record = {"_id": key, **doc}
        await self.collection.replace_one({"_id": key}, record, upsert=True)
        return record

    async def current(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        return await self.collection.find({"_id": {"$in": list(keys)}}, {"outbox": 0}).to_list(None)

    async def use(self, key: str, code_hash: str, at: datetime) -> bool:
        """Mark the code used, once: False when it was used (or replaced) in the meantime."""
        result = await self.collection.update_one({"_id": key, "codeHash": code_hash, "usedAt": None},
                                                  {"$set": {"usedAt": at}})
        return result.modified_count == 1


class PanelInvitationStore(_StagingRecords):
    def __init__(self, db: Database) -> None:
        super().__init__(db, INVITATIONS)

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes([_EXPIRE, STAGED_INDEX])

    async def add(self, doc: dict[str, Any]) -> dict[str, Any]:
        await self.collection.insert_one(doc)
        return doc


class PanelSessionStore:
    """Sessions of signed-in participants: `_id` = SHA-256 of the token, so a copy of the store opens none."""

    def __init__(self, db: Database) -> None:
        self._sessions = db.collection(SESSIONS)

    async def ensure_indexes(self) -> None:
        await self._sessions.create_indexes([_EXPIRE])

    async def open(self, doc: dict[str, Any]) -> None:
        await self._sessions.insert_one(doc)

    async def touch(self, session_id: str, idle: timedelta) -> dict[str, Any] | None:
        """The live session, its idle deadline moved on by this use; None when revoked, idle or past its end."""
        now = _now()
        doc = await self._sessions.find_one_and_update(
            {"_id": session_id, "revokedAt": None, "idleUntil": {"$gt": now}, "expiresAt": {"$gt": now}},
            {"$set": {"lastUsedAt": now, "idleUntil": now + idle}}, return_document=ReturnDocument.AFTER)
        if doc is not None and doc["idleUntil"] > doc["expiresAt"]:
            doc["idleUntil"] = doc["expiresAt"]
        return doc

    async def live(self, session_id: str) -> dict[str, Any] | None:
        """The session if it still holds, without counting this look as a use (a live subscription checks)."""
        now = _now()
        return await self._sessions.find_one(
            {"_id": session_id, "revokedAt": None, "idleUntil": {"$gt": now}, "expiresAt": {"$gt": now}})

    async def revoke(self, session_id: str) -> bool:
        result = await self._sessions.update_one({"_id": session_id, "revokedAt": None},
                                                 {"$set": {"revokedAt": _now()}})
        return result.modified_count == 1


@dataclass(frozen=True)
class PanelStores:
    """The Customer Panel's collections, as the request context carries them."""

    codes: PanelCodeStore
    counters: WindowCounters
    invitations: PanelInvitationStore
    sessions: PanelSessionStore

    @classmethod
    def on(cls, db: Database) -> PanelStores:
        return cls(codes=PanelCodeStore(db), counters=WindowCounters(db, COUNTERS), invitations=PanelInvitationStore(db),
                   sessions=PanelSessionStore(db))

    async def ensure_indexes(self) -> None:
        for store in (self.codes, self.counters, self.invitations, self.sessions):
            await store.ensure_indexes()
