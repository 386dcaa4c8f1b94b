"""Relay cursors and page sizes, shared by every connection."""
from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson

from errors import BadInput

T = TypeVar("T")
_SCALARS = (str, int, float, bool, type(None))


class LazyCount:
    """A connection's `totalCount`, counted only if the selection asks for it: GraphQL awaits a field's value, so
    the count's round trip (a scan of every match, however small the page) is made when `totalCount` is resolved
    and never for a page that does not select it. Awaited more than once (aliases), it counts once. The fast
    executor (schema/fast_execution.py) cannot serialize it as an Int and leaves the field to the stock path, which
    awaits it."""

    def __init__(self, count: Callable[[], Coroutine[Any, Any, int]]) -> None:
        self._count = count
        self._counting: asyncio.Task[int] | None = None

    def __await__(self) -> Generator[Any, None, int]:
        if self._counting is None:
            self._counting = asyncio.ensure_future(self._count())
        return self._counting.__await__()


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a connection: items with their cursors, and whether more follow."""

    items: list[T]
    cursors: list[str]
    has_next: bool
    total: int | LazyCount | None = None


def encode_cursor(value: Any, item_id: str, scope: str = "") -> str:
    """An opaque cursor; `scope` (e.g. the order) binds it to the list that issued it."""
    if isinstance(value, datetime):
        payload = ["t", value.isoformat(), item_id]
    else:
        payload = ["v", value, item_id]
    if scope:
        payload.append(scope)
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


def decode_cursor(cursor: str, scope: str = "") -> tuple[Any, str]:
    """(order value, id) recorded in `cursor`; a cursor we did not issue is a BAD_USER_INPUT."""
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(payload, list) or payload[3:] != ([scope] if scope else []):
            raise ValueError("shape or scope")
        kind, value, item_id = payload[:3]
        if kind == "t":
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError("naive timestamp")
        elif kind != "v" or not isinstance(value, _SCALARS):
            # Only scalars: the value goes into a store query, where an object would be an operator.
            raise ValueError(kind)
        if not isinstance(item_id, str):
            raise ValueError(item_id)
    except (ValueError, TypeError, orjson.JSONDecodeError) as error:
        raise BadInput("after: not a cursor issued by this API") from error
    return value, item_id


def page_size(first: int | None, default: int, maximum: int) -> int:
    if first is None:
        return default
    if first < 0:
        raise BadInput("first: must not be negative")
    if first > maximum:
        raise BadInput(f"first: at most {maximum} items per page")
    return first
