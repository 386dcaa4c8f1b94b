"""The in-memory store (mongomock-motor) used by `make run` and the tests.

pymongo >= 4.11 passes `sort=` to bulk update operations, which mongomock 4.3 does not accept. We keep a
current pymongo for real MongoDB and teach mongomock's bulk builder to accept (and refuse to ignore) it.
"""
from __future__ import annotations

from typing import Any

import mongomock.collection
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
