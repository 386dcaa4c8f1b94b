"""A per-caller cache of whole `case(id)` responses, evicted by the case-updates stream.

A case-detail request costs milliseconds of per-field execution (NOTES); the same person reopening the same
case asks the same question again. Entries are keyed by the caller's identity (subject, roles, branch, channel:
never shared between people), the query text, operation name and variables, and depend on the cases and
customers the response showed. Every applied change (this instance's writes at once, other instances' through
`case-updates`; a claim or a terms change as `case.task_changed` / `case.terms_changed`) evicts what depends on its case or customer; a TTL bounds anything an event cannot name
(e.g. a case moved to another customer). A response computed while any change arrived is not stored.
Hits are audited like any other read.

The cache is bounded in bytes (`max_bytes`, RESPONSE_CACHE_MAX_BYTES), not only in entries: answers differ in
size by orders of magnitude (a case with a long comment in every history entry weighed ~2.7 MB), so 10,000 entries
alone could hold gigabytes. An entry weighs its answer's JSON, its key (query text and variables) and a fixed
allowance for its bookkeeping; the least recently used entries go first, and an answer that alone would exceed
the bound is not stored. `case_repository_response_cache_bytes` shows the current weight.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from graphql import FieldNode, OperationType
from prometheus_client import Counter, Gauge

from auth.principal import Principal
from consumers.publication import Published
from edge.operations import chosen_operation

# The hit ratio is hits / (hits + misses), over cacheable requests only (a `case(id)` read by a signed-in caller).
HITS = Counter("case_repository_response_cache_hits_total", "Cacheable requests answered from the response cache")
MISSES = Counter("case_repository_response_cache_misses_total", "Cacheable requests that had to be executed")
BYTES = Gauge("case_repository_response_cache_bytes", "Bytes the response cache holds (answers, keys, bookkeeping)")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# The key tuple, the entry, its id sets and its places in the dependency index, roughly, per entry.
ENTRY_OVERHEAD_BYTES = 512

# Root fields whose answer depends only on the cases (and their customers) it shows.
CACHEABLE_ROOTS = frozenset({"case", "__typename"})


@dataclass(frozen=True)
class CachedResponse:
    data: dict[str, Any]
    # What the answer showed, for the audit record of every hit.
    case_ids: frozenset[str]
    customer_ids: frozenset[str]
    fields: frozenset[str]
    # What it depends on: also the ids asked for and not found (a case created later must evict the null).
    depends_on: frozenset[str]
    stored_at: float
    weight: int = 0


@lru_cache(maxsize=512)
def cacheable_operation(query: str, operation_name: str | None) -> str | None:
    """The operation's name for the audit (its own, else its root fields) if it may be cached, else None."""
    found = chosen_operation(query, operation_name)
    if found is None:
        return None
    document, operation = found
    if operation.operation is not OperationType.QUERY or len(document.definitions) != 1:
        return None  # fragments and several operations: keep the rule simple and obviously right
    roots = {s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)}
    if not roots or not roots <= CACHEABLE_ROOTS or len(roots) != len(operation.selection_set.selections):
        return None
    return operation.name.value if operation.name else ",".join(sorted(roots))


class ResponseCache:
    def __init__(self, *, ttl_seconds: float, max_entries: int = 10_000, max_bytes: int = DEFAULT_MAX_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._clock = clock
        self._entries: OrderedDict[Hashable, CachedResponse] = OrderedDict()
        self._dependents: dict[str, set[Hashable]] = {}
        self._changes = 0

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def key(self, principal: Principal | None, channel: str | None, query: str | None,
            variables: dict[str, Any] | None, operation_name: str | None) -> Hashable | None:
        """The cache key of a request, or None when its answer must not be cached."""
        if not self.enabled or principal is None or not query or not cacheable_operation(query, operation_name):
            return None
        # The view follows the token's channel claim; the call's channel (a header, maybe) is kept apart too.
        caller = (principal.kind, principal.subject, principal.roles, principal.branch, principal.case_id,
                  principal.participant_id, principal.channel, channel)
        return caller, query, operation_name, orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)

    def changes(self) -> int:
        """A counter of applied changes seen; `put` refuses a response computed across a change."""
        return self._changes

    def get(self, key: Hashable) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is not None and self._clock() - entry.stored_at > self._ttl:
            self._drop(key)
            entry = None
        if entry is None:
            MISSES.inc()
            return None
        HITS.inc()
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, data: dict[str, Any], *, case_ids: set[str], customer_ids: set[str],
            fields: set[str], looked_up: set[str], computed_since: int) -> None:
        if computed_since != self._changes:
            return
        self._drop(key)
        depends_on = frozenset({*case_ids, *looked_up, *(f"customer:{c}" for c in customer_ids)})
        weight = _weight(key, data, depends_on, fields)
        if weight > self._max_bytes:
            return  # it alone would push everything else out
        entry = CachedResponse(data, frozenset(case_ids), frozenset(customer_ids), frozenset(fields), depends_on,
                               self._clock(), weight)
        self._entries[key] = entry
        self._bytes += weight
        for dependency in entry.depends_on:
            self._dependents.setdefault(dependency, set()).add(key)
        while len(self._entries) > self._max or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))
        BYTES.set(self._bytes)

    def changed(self, case_id: str, customer_id: str | None) -> None:
        """A case (and so its customer's aggregates) changed: forget every response that showed either."""
        self._changes += 1
        for dependency in (case_id, f"customer:{customer_id}" if customer_id else None):
            for key in self._dependents.pop(dependency, set()) if dependency else ():
                self._drop(key)

    def on_published(self, published: Published) -> None:
        """A case's new state, or a change of one of its records (a claim, terms): the same eviction."""
        self.changed(published.case_id, published.customer_id)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry.weight
        BYTES.set(self._bytes)
        for dependency in entry.depends_on:
            keys = self._dependents.get(dependency)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._dependents[dependency]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """What the entries weigh together (see the module docstring)."""
        return self._bytes


def _weight(key: Hashable, data: dict[str, Any], depends_on: frozenset[str], fields: set[str]) -> int:
    """An entry's bytes: its answer as JSON, the strings of its key, its id sets, and a fixed allowance."""
    keyed = sum(len(part) for part in key if isinstance(part, (str, bytes))) if isinstance(key, tuple) else 0
    ids = sum(len(i) for i in depends_on) + sum(len(f) for f in fields)
    return len(orjson.dumps(data)) + keyed + 2 * ids + ENTRY_OVERHEAD_BYTES
