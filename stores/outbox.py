"""The outbox: every message the service sends, kept until the broker has acknowledged it.

A message enters the outbox only from a staged copy that was written in the same single-document write as the
change that decided it (a case, a task row); its `_id` is its CloudEvent id, so staging it twice is harmless.
Sent messages stay for `SENT_RETENTION` (a TTL index), so a copy staged again after it was sent is recognised
and not sent twice. Messages whose data is sensitive (a one-time code, a phone number) are stored sealed.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError

from stores.database import DUPLICATE_KEY, Database
from stores.protection import FieldCipher, open_envelope, seal_envelope

COLLECTION = "outbox"
PENDING, SENT, FAILED = "PENDING", "SENT", "FAILED"
SENT_RETENTION = timedelta(days=7)

# The two outbound topics, by the names the senders map to KAFKA_TOPIC_UPDATES and KAFKA_TOPIC_COMMANDS.
UPDATES = "updates"
COMMANDS = "commands"

INDEXES = [
    IndexModel([("status", ASCENDING), ("leaseUntil", ASCENDING), ("createdAt", ASCENDING)], name="due"),
    IndexModel([("sentAt", ASCENDING)], name="sent_ttl", expireAfterSeconds=int(SENT_RETENTION.total_seconds())),
    IndexModel([("topic", ASCENDING), ("type", ASCENDING), ("createdAt", ASCENDING)], name="topic_type"),
]


@dataclass(frozen=True)
class Message:
    """One CloudEvent for a topic ("updates" or "commands"), keyed by its case id."""

    id: str
    topic: str
    key: str
    event: dict[str, Any]
    sensitive: bool = False

    def staged(self) -> dict[str, Any]:
        """The form kept inside the deciding document until the relay has put it in the outbox."""
        return {"kind": "message", "id": self.id, "topic": self.topic, "key": self.key, "event": self.event,
                "sensitive": self.sensitive}

    @classmethod
    def from_staged(cls, staged: dict[str, Any]) -> Message:
        return cls(id=staged["id"], topic=staged["topic"], key=staged["key"], event=staged["event"],
                   sensitive=staged.get("sensitive", False))


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest: datetime | None
    failed: int

    @property
    def oldest_age_seconds(self) -> float:
        """How long the oldest unsent message has waited (0 with none)."""
        if self.oldest is None:
            return 0.0
        return max((datetime.now(timezone.utc) - self.oldest).total_seconds(), 0.0)


class OutboxStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self._messages = db.collection(COLLECTION)
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        await self._messages.create_indexes(INDEXES)

    async def add(self, messages: Sequence[Message], *, owner: str, lease: timedelta) -> list[Message]:
        """Put messages in the outbox, leased to `owner` (who sends them now); returns those that were new."""
        if not messages:
            return []
        now = datetime.now(timezone.utc)
        records = [self._record(m, now, owner, now + lease) for m in messages]
        try:
            await self._messages.insert_many(records, ordered=False)
            known: set[int] = set()
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise
            known = {e["index"] for e in error.details["writeErrors"]}
        return [m for i, m in enumerate(messages) if i not in known]

    def _record(self, message: Message, now: datetime, owner: str, lease_until: datetime) -> dict[str, Any]:
        record: dict[str, Any] = {
            "_id": message.id, "topic": message.topic, "key": message.key, "type": message.event.get("type"),
            "status": PENDING, "createdAt": now, "leaseUntil": lease_until, "owner": owner, "attempts": 0,
            "sensitive": message.sensitive,
        }
        if message.sensitive:
            record["sealed"] = seal_envelope(message.event, self._cipher)
        else:
            record["event"] = message.event
        return record

    def _message(self, record: dict[str, Any]) -> Message:
        event = open_envelope(record["sealed"], self._cipher) if record.get("sensitive") else record["event"]
        return Message(id=record["_id"], topic=record["topic"], key=record["key"], event=event,
                       sensitive=bool(record.get("sensitive")))

    async def take_due(self, *, owner: str, lease: timedelta, limit: int) -> list[Message]:
        """Lease up to `limit` pending messages whose lease ran out (their sender died or gave up), oldest first."""
        now = datetime.now(timezone.utc)
        due = await self._messages.find(
            {"status": PENDING, "leaseUntil": {"$lte": now}}, {"_id": 1}).sort(
            [("createdAt", ASCENDING)]).limit(limit).to_list(None)
        if not due:
            return []
        until = now + lease
        # The lease is taken by a conditional update, so two relays never both take one message.
        await self._messages.bulk_write([
            UpdateOne({"_id": d["_id"], "status": PENDING, "leaseUntil": {"$lte": now}},
                      {"$set": {"owner": owner, "leaseUntil": until}}) for d in due], ordered=False)
        taken = await self._messages.find(
            {"_id": {"$in": [d["_id"] for d in due]}, "owner": owner, "leaseUntil": until}).sort(
            [("createdAt", ASCENDING)]).to_list(None)
        return [self._message(record) for record in taken]

    async def mark_sent(self, ids: Sequence[str]) -> None:
        if ids:
            await self._messages.update_many({"_id": {"$in": list(ids)}, "status": PENDING}, {
                "$set": {"status": SENT, "sentAt": datetime.now(timezone.utc)}, "$inc": {"attempts": 1}})

    async def mark_failed(self, message_id: str, reason: str) -> None:
        """A message no retry can send (e.g. larger than the broker accepts): kept, with the reason, for an operator."""
        await self._messages.update_one({"_id": message_id, "status": PENDING}, {
            "$set": {"status": FAILED, "reason": reason, "failedAt": datetime.now(timezone.utc)},
            "$inc": {"attempts": 1}})

    async def postpone(self, ids: Sequence[str], until: datetime) -> None:
        """A send that may succeed later: any relay may try again from `until`."""
        if ids:
            await self._messages.update_many({"_id": {"$in": list(ids)}, "status": PENDING},
                                             {"$set": {"leaseUntil": until}, "$inc": {"attempts": 1}})

    async def backlog(self) -> Backlog:
        pending = await self._messages.count_documents({"status": PENDING})
        oldest = await self._messages.find_one({"status": PENDING}, {"createdAt": 1},
                                               sort=[("createdAt", ASCENDING)]) if pending else None
        failed = await self._messages.count_documents({"status": FAILED})
        return Backlog(pending=pending, oldest=oldest["createdAt"] if oldest else None, failed=failed)

    async def sent(self, topic: str, event_type: str | None = None) -> list[dict[str, Any]]:
        """The CloudEvents given to the broker on `topic`, oldest first (the dev outbox shows them)."""
        query: dict[str, Any] = {"topic": topic, "status": SENT}
        if event_type is not None:
            query["type"] = event_type
        records = await self._messages.find(query).sort([("createdAt", ASCENDING)]).to_list(None)
        return [self._message(record).event for record in records]
