"""Dead letters kept in the store when there is no Kafka DLQ topic (embedded mode).

A refused event may still carry valid PESELs and phones of other participants: its payload is sealed like
every other sensitive value at rest; the reason and origin stay readable for the operator.
"""
from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from typing import Any

from stores.database import Database
from stores.protection import FieldCipher, aad_for

COLLECTION = "dead_letters"


class DeadLetterStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self._letters = db.collection(COLLECTION)
        self._cipher = cipher

    async def add(self, *, payload: bytes, reason: str, origin: str, key: bytes | None,
                  headers: list[list[Any]]) -> None:
        letter_id = uuid.uuid4().hex
        sealed = self._cipher.seal(base64.b64encode(payload).decode(), aad=aad_for(COLLECTION, letter_id, "payload"))
        await self._letters.insert_one({
            "_id": letter_id, "reason": reason, "origin": origin, "key": key, "headers": headers,
            "payload": sealed, "at": datetime.now(timezone.utc),
        })

    async def latest(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest dead letters with their payloads opened, for an operator's inspection."""
        letters = await self._letters.find({}).sort([("at", -1)]).limit(limit).to_list(None)
        return [
            {**letter, "payload": base64.b64decode(self._cipher.open(
                letter["payload"], aad=aad_for(COLLECTION, letter["_id"], "payload")))}
            for letter in letters
        ]
