"""Connection to MongoDB (motor) or the in-memory mongomock store, with round-trip counting."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError
from prometheus_client import Counter

STORE_OPERATIONS = Counter(
    "case_repository_store_operations_total", "Store round trips by collection and operation",
    ["collection", "operation"],
)

# MongoDB's error code for a unique-index violation (an insert that someone else already made).
DUPLICATE_KEY = 11000

# Errors that mean "the store is not reachable now": the consumer backs off instead of dead-lettering.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError,
)


@dataclass
class RoundTrips:
    """Counts store operations; tests and bench R3 read it to prove queries do not grow with N."""

    count: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)

    def add(self, collection: str, operation: str) -> None:
        self.count += 1
        key = f"{collection}.{operation}"
        self.by_operation[key] = self.by_operation.get(key, 0) + 1
        STORE_OPERATIONS.labels(collection, operation).inc()

    def reset(self) -> None:
        self.count = 0
        self.by_operation.clear()


class CountingCollection:
    """Wraps a motor collection so that each operation that reaches the server is counted once."""

    def __init__(self, collection: Any, round_trips: RoundTrips) -> None:
        self._collection = collection
        self._round_trips = round_trips
        self._name = collection.name

    def __getattr__(self, operation: str) -> Any:
        target = getattr(self._collection, operation)
        if not callable(target):
            return target
        round_trips, name = self._round_trips, self._name

        def counted(*args: Any, **kwargs: Any) -> Any:
            round_trips.add(name, operation)
            return target(*args, **kwargs)

        return counted


class Database:
    """One MongoDB database; stores take it and ask for their collections by name."""

    def __init__(self, client: Any, database_name: str) -> None:
        self._client = client
        self._db = client[database_name]
        self.round_trips = RoundTrips()

    def collection(self, name: str) -> CountingCollection:
        return CountingCollection(self._db[name], self.round_trips)

    async def ping(self) -> bool:
        try:
            await self._db.command("ping")
        except OUTAGE_ERRORS:
            return False
        return True

    def close(self) -> None:
        self._client.close()


def write_concern_w(value: str) -> int | str:
    """`MONGODB_WRITE_CONCERN` as the driver takes it: a number of members, or a tag such as `majority`."""
    return int(value) if value.strip().isdigit() else value.strip()


def connect(mongodb_uri: str | None, database_name: str, *, write_concern: int | str = "majority",
            journal: bool = True) -> Database:
    """Real MongoDB when a URI is given, else the in-memory store.

    Every write waits for `write_concern` members and, with `journal`, for the journal on disk: an acknowledged
    write (an ingested event whose offset is then committed, a mutation's answer) survives a crash of the server
    process. Without the journal a write is acknowledged from memory and a kill -9 can lose it. These arguments
    win over `w` / `journal` in the URI (the driver's rule for keyword arguments).
    """
    if mongodb_uri is None:
        from stores.memory import memory_client

        return Database(memory_client(), database_name)
    from motor.motor_asyncio import AsyncIOMotorClient

    client = AsyncIOMotorClient(mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=5000,
                                w=write_concern, journal=journal)
    return Database(client, database_name)
