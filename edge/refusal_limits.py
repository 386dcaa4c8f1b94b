"""Requests nobody vouches for, per client address: a rate limit, and their audit records aggregated.

Issue 11 item 7: anonymous requests and refused tokens once appended an audit record each (~2,300 a second), so the
trail could be flooded by anyone and a refusal could be hidden among millions. Now:

* Every request to /graphql that carries no valid token (anonymous, or its token refused) counts against its client
  address: `UNAUTHENTICATED_REQUESTS_PER_MINUTE` (default 600) in a fixed window of one minute, on every instance
  together (stores.counters.WindowCounters). The next one is 429 `RATE_LIMITED` until the window ends. A valid
  token never counts, so one address full of signed-in employees is never throttled by this.
* A refusal (a bad token, a bad X-Channel header, a rate-limited request) is recorded at once the first time its
  (address, actor, action, reason) occurs in a window; the repeats of that window become one record with their `count`
  (and `firstAt`, `lastAt`) when the window ends. So one address leaves at most a few records a minute per kind of
  refusal, however fast it sends, and no refusal is without a record.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from stores.counters import WindowCounters

WINDOW = timedelta(minutes=1)
# Open windows kept in memory: past this, all are written out at once rather than grow without end.
MAX_OPEN_WINDOWS = 10_000
RATE_LIMITED = "RATE_LIMITED"
RATE_LIMITED_REASON = "too many requests without a valid token from this address"


class AuditAppender(Protocol):
    async def append(self, entry: dict[str, Any]) -> dict[str, Any]: ...


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Window:
    first: dict[str, Any]  # the record written when the window opened: the aggregate repeats its fields
    ends: datetime
    repeats: int = 0
    first_repeat_at: datetime | None = None
    last_repeat_at: datetime | None = None


class RefusalLimits:
    """The per-address limit of requests without a valid token, and the aggregated audit of refusals."""

    def __init__(self, audit: AuditAppender, counters: WindowCounters, per_minute: int) -> None:
        self._audit = audit
        self._counters = counters
        self.per_minute = per_minute
        self._open: dict[tuple[Any, ...], _Window] = {}
        self._next_due: datetime | None = None

    async def admit(self, address: str) -> bool:
        """Count one request without a valid token from `address`; False once the address is past its limit."""
        return await self._counters.add(f"address:{address}", WINDOW) <= self.per_minute

    async def record(self, entry: dict[str, Any]) -> None:
        """Put a refusal on record: the first of its kind in the window now, its repeats as one record later."""
        now = entry["at"]
        await self.flush_due(now)
        key = (entry.get("remote"), entry["actor"], entry["action"], entry.get("operation"), entry.get("reason"))
        window = self._open.get(key)
        if window is not None and now < window.ends:
            window.repeats += 1
            window.first_repeat_at = window.first_repeat_at or now
            window.last_repeat_at = now
            return
        if len(self._open) >= MAX_OPEN_WINDOWS:
            await self.flush_due(now, everything=True)
        window = _Window(first=entry, ends=now + WINDOW)
        self._open[key] = window
        self._next_due = window.ends if self._next_due is None else min(self._next_due, window.ends)
        await self._audit.append({**entry, "count": 1})

    async def flush_due(self, now: datetime | None = None, *, everything: bool = False) -> int:
        """Write the aggregate of every window that has ended (all of them with `everything`, at shutdown); how many
        records were written."""
        now = now or _now()
        if not everything and (self._next_due is None or now < self._next_due):
            return 0
        written = 0
        for key, window in list(self._open.items()):
            if not everything and window.ends > now:
                continue
            del self._open[key]
            if window.repeats:
                await self._audit.append({
                    **window.first, "at": now, "count": window.repeats, "aggregated": True,
                    "firstAt": window.first_repeat_at, "lastAt": window.last_repeat_at,
                    # Written while some other request is served: that request's id would be a false link.
                    "requestId": None,
                })
                written += 1
        self._next_due = min((w.ends for w in self._open.values()), default=None)
        return written
