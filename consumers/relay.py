"""The outbox relay: sends outbox messages until the broker acknowledges them, once per id as far as it can tell.

The writer that staged a message sends it at once (`send_now`); what it could not send — the broker was down,
the process died — is picked up by every instance's relay loop once its lease runs out, oldest first. A message
no retry can send (larger than the broker accepts, say) is marked FAILED with the reason and counted; the relay
moves on. Delivery is at least once: consumers deduplicate by CloudEvent id.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Protocol

from prometheus_client import Counter, Gauge

from consumers.failures import can_retry, failure_reason
from stores.outbox import Backlog, Message, OutboxStore

log = logging.getLogger(__name__)
OUTBOX_SENT = Counter("case_repository_outbox_sent_total", "Outbox messages the broker acknowledged", ["topic"])
OUTBOX_FAILED = Counter("case_repository_outbox_unsendable_total",
                        "Outbox messages that no retry can send (kept as FAILED with the reason)", ["topic"])
OUTBOX_BACKLOG = Gauge("case_repository_outbox_backlog", "Outbox messages not yet acknowledged by the broker")
OUTBOX_OLDEST = Gauge("case_repository_outbox_oldest_pending_seconds", "Age of the oldest unsent outbox message")
OUTBOX_DEAD = Gauge("case_repository_outbox_failed", "Outbox messages kept as FAILED")

# A writer that stops between staging and sending leaves its messages to the others after this long (the default
# of OUTBOX_LEASE_SECONDS).
LEASE = timedelta(seconds=30)
RETRY_AFTER = timedelta(seconds=2)
BATCH = 200


class Sender(Protocol):
    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        """Send each message; per message None (acknowledged) or the error."""


Sweep = Callable[[], Awaitable[None]]


class OutboxRelay:
    def __init__(self, outbox: OutboxStore, sender: Sender, *, interval_seconds: float = 1.0,
                 sweeps: Sequence[Sweep] = (), lease: timedelta = LEASE) -> None:
        if lease <= timedelta(0):
            raise ValueError(f"OUTBOX_LEASE_SECONDS must be more than 0, not {lease.total_seconds():g}")
        self._outbox = outbox
        self._lease = lease
        self._interval = interval_seconds
        self._sender = sender
        self._sweeps = list(sweeps)
        # Leases name the instance, so a relay takes over only what nobody is sending now.
        self.owner = f"relay-{uuid.uuid4().hex[:12]}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def add_sweep(self, sweep: Sweep) -> None:
        """Run `sweep` (e.g. relay what a stopped writer staged) before each pass over due messages."""
        self._sweeps.append(sweep)

    async def add_and_send(self, messages: Sequence[Message]) -> None:
        """Put staged messages in the outbox under this relay's lease and send the new ones now."""
        fresh = await self._outbox.add(messages, owner=self.owner, lease=self._lease)
        await self.send(fresh)

    async def send(self, messages: Sequence[Message]) -> None:
        """Send leased messages; record each outcome. Never raises for a send failure: the outbox keeps them."""
        if not messages:
            return
        try:
            outcomes = await self._sender.send(messages)
        except Exception as error:  # noqa: BLE001 - the outbox has them; the loop retries
            log.warning("outbox send failed; retrying later", extra={"error": failure_reason(error)})
            await self._outbox.postpone([m.id for m in messages], datetime.now(timezone.utc) + RETRY_AFTER)
            return
        sent = [m.id for m, error in zip(messages, outcomes, strict=True) if error is None]
        await self._outbox.mark_sent(sent)
        for message in (m for m, error in zip(messages, outcomes, strict=True) if error is None):
            OUTBOX_SENT.labels(message.topic).inc()
        later = []
        for message, error in zip(messages, outcomes, strict=True):
            if error is None:
                continue
            if can_retry(error):
                later.append(message.id)
            else:
                reason = failure_reason(error)
                log.error("outbox message cannot be sent; kept as FAILED",
                          extra={"message_id": message.id, "topic": message.topic, "reason": reason})
                await self._outbox.mark_failed(message.id, reason)
                OUTBOX_FAILED.labels(message.topic).inc()
        if later:
            log.warning("outbox messages not acknowledged; retrying later", extra={"count": len(later)})
            await self._outbox.postpone(later, datetime.now(timezone.utc) + RETRY_AFTER)

    async def relay_due(self) -> int:
        """One pass: relay what stopped writers staged, then send due messages; returns how many were tried."""
        for sweep in self._sweeps:
            await sweep()
        tried = 0
        while due := await self._outbox.take_due(owner=self.owner, lease=self._lease, limit=BATCH):
            tried += len(due)
            await self.send(due)
            if len(due) < BATCH:
                break
        await self.measure()
        return tried

    async def measure(self) -> Backlog:
        """The outbox backlog now, also set on the /metrics gauges."""
        backlog = await self._outbox.backlog()
        OUTBOX_BACKLOG.set(backlog.pending)
        OUTBOX_DEAD.set(backlog.failed)
        OUTBOX_OLDEST.set(backlog.oldest_age_seconds)
        return backlog

    async def start(self) -> None:
        """One pass now (what a stopped instance left goes out at once), then one every interval."""
        self._stopping.clear()
        await self._pass()
        self._task = asyncio.create_task(self._run(), name="outbox relay")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await asyncio.wait({self._task})
            self._task = None

    async def _pass(self) -> None:
        try:
            await self.relay_due()
        except Exception:  # noqa: BLE001 - the store may be down; the next pass tries again
            log.exception("outbox relay pass failed")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
            except asyncio.TimeoutError:
                await self._pass()
