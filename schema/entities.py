"""`_entities` resolves each distinct representation once (issue 11, item 4).

A gateway sends one representation per reference it met, and nothing stops a caller from repeating one: twenty
copies of a long case's key used to read (and render) that case twenty times. Identical representations (same
keys and values, in any order) now share one resolution: one store read, one `Case` whose field results (its
history page, see `Case.history`) are computed once. The answer still has one entry per representation, in order,
as the federation spec requires. How many representations one request may carry is an input limit
(schema/input_limits.py), checked before this runs.
"""
from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

import orjson


def distinct_entities(resolve: Callable[[list[Any]], list[Any]], representations: list[Any]) -> list[Any]:
    """`resolve` (Strawberry's entities resolver) over the distinct representations, fanned back out in order."""
    first_of: dict[Hashable, int] = {}
    distinct: list[Any] = []
    positions: list[int] = []
    for representation in representations:
        try:
            key: Hashable = orjson.dumps(representation, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON (cannot come from a request): resolved on its own
            key = ("unique", len(positions))
        if key not in first_of:
            first_of[key] = len(distinct)
            distinct.append(representation)
        positions.append(first_of[key])
    if len(distinct) == len(representations):
        return resolve(representations)
    results = resolve(distinct)
    shared = Counter(positions)
    # A coroutine can be awaited once: one that several positions share becomes a task, which every one can await.
    results = [asyncio.ensure_future(r) if inspect.isawaitable(r) and shared[i] > 1 else r
               for i, r in enumerate(results)]
    return [results[p] for p in positions]

