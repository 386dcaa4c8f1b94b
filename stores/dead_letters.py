"""Dead letters kept in the store when there is no Kafka DLQ topic (embedded mode)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from stores.database import Database

COLLECTION = "dead_letters"


class DeadLetterStore:
    def __init__(self, db: Database) -> None:
        self._letters = db.collection(COLLECTION)

    async def add(self, letter: dict[str, Any]) -> None:
        await self._letters.insert_one({**letter, "at": datetime.now(timezone.utc)})

    async def latest(self, limit: int = 100) -> list[dict[str, Any]]:
        return await self._letters.find({}, {"_id": 0}).sort([("at", -1)]).limit(limit).to_list(None)
