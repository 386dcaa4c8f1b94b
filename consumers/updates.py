"""Fan-out of what `case-updates` says to this process's live subscriptions and listeners.

Fed by the in-process publisher (embedded mode) or by the `case-updates` listener (Kafka mode), so a
change applied by any server process reaches subscribers connected to any other. Two kinds travel: a case's
new state (`case.state_changed`) and a change of a record written without a case write (`case.task_changed`,
`case.terms_changed`). Listeners (the response cache) hear both; a subscription hears record changes only if it
asks for them, so the case feeds (`caseUpdated`, `caseStatusChanged`) see states alone.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from prometheus_client import Counter, Gauge

from consumers.publication import Published, PublishedState, published_from_event, wire_value
from stores.outbox import UPDATES, Message

log = logging.getLogger(__name__)
SUBSCRIBERS = Gauge("case_repository_live_subscribers", "Live update queues in this process")
QUEUE_SIZE = 256
# Messages of `case-updates` this process could not use, by reason (consumers/kafka_updates.py), and updates a
# listener failed on ("listener_failed"): counted, logged and skipped, never the end of the loop.
UPDATES_SKIPPED = Counter("case_repository_updates_skipped_total",
                          "case-updates messages skipped (unusable, or a listener failed on them)", ["reason"])


class UpdatesBus:
    def __init__(self) -> None:
        self._by_case: dict[str, set[asyncio.Queue[Published]]] = {}
        self._all: set[asyncio.Queue[Published]] = set()
        # Queues that also take record changes (task rows, terms), not only states.
        self._with_records: set[asyncio.Queue[Published]] = set()
        self._listeners: list[Callable[[Published], None]] = []

    def add_listener(self, listener: Callable[[Published], None]) -> None:
        """Called synchronously for everything delivered, states and record changes (e.g. to evict cached
        responses)."""
        self._listeners.append(listener)

    @contextmanager
    def subscribe(self, case_id: str | None = None, *,
                  record_changes: bool = False) -> Iterator[asyncio.Queue[Published]]:
        """A queue of published states (and, with `record_changes`, record changes): of one case, or of every
        case when `case_id` is None."""
        queue: asyncio.Queue[Published] = asyncio.Queue(QUEUE_SIZE)
        group = self._all if case_id is None else self._by_case.setdefault(case_id, set())
        group.add(queue)
        if record_changes:
            self._with_records.add(queue)
        SUBSCRIBERS.inc()
        try:
            yield queue
        finally:
            group.discard(queue)
            self._with_records.discard(queue)
            SUBSCRIBERS.dec()
            if case_id is not None and not group:
                self._by_case.pop(case_id, None)

    def deliver(self, published: Published) -> None:
        for listener in self._listeners:
            try:
                listener(published)
            except Exception:  # noqa: BLE001 - one update must not keep the others (or the subscribers) from it
                UPDATES_SKIPPED.labels("listener_failed").inc()
                log.exception("a listener failed on an update", extra={"case_id": published.case_id})
        is_state = isinstance(published, PublishedState)
        for queue in (*self._by_case.get(published.case_id, ()), *self._all):
            if not is_state and queue not in self._with_records:
                continue
            if queue.full():
                # A stalled subscriber loses its oldest state, never the newest: it must not block ingest.
                queue.get_nowait()
            queue.put_nowait(published)


class LocalSender:
    """Embedded mode, the outbox relay's broker: `case-updates` go to this process's bus in their wire form;
    commands have no consumer in the process and stay in the outbox as sent (`GET /dev/commands` lists them)."""

    def __init__(self, bus: UpdatesBus) -> None:
        self._bus = bus

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        for message in messages:
            if message.topic == UPDATES:
                self._bus.deliver(published_from_event(wire_value(message.event)))
        return [None] * len(messages)
