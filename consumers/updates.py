"""Fan-out of applied case states to this process's live subscriptions.

Fed by the in-process publisher (embedded mode) or by the `case-updates` listener (Kafka mode), so a
change applied by any server process reaches subscribers connected to any other.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from prometheus_client import Gauge

from consumers.publication import PublishedState, state_from_event, wire_value
from stores.outbox import Message

log = logging.getLogger(__name__)
SUBSCRIBERS = Gauge("case_repository_live_subscribers", "Live update queues in this process")
QUEUE_SIZE = 256


class UpdatesBus:
    def __init__(self) -> None:
        self._by_case: dict[str, set[asyncio.Queue[PublishedState]]] = {}
        self._all: set[asyncio.Queue[PublishedState]] = set()
        self._listeners: list[Callable[[PublishedState], None]] = []

    def add_listener(self, listener: Callable[[PublishedState], None]) -> None:
        """Called synchronously for every delivered state (e.g. to evict cached responses)."""
        self._listeners.append(listener)

    @contextmanager
    def subscribe(self, case_id: str | None = None) -> Iterator[asyncio.Queue[PublishedState]]:
        """A queue of published states: of one case, or of every case when `case_id` is None."""
        queue: asyncio.Queue[PublishedState] = asyncio.Queue(QUEUE_SIZE)
        group = self._all if case_id is None else self._by_case.setdefault(case_id, set())
        group.add(queue)
        SUBSCRIBERS.inc()
        try:
            yield queue
        finally:
            group.discard(queue)
            SUBSCRIBERS.dec()
            if case_id is not None and not group:
                self._by_case.pop(case_id, None)

    def deliver(self, published: PublishedState) -> None:
        for listener in self._listeners:
            listener(published)
        for queue in (*self._by_case.get(published.case_id, ()), *self._all):
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
            if message.topic == "updates":
                self._bus.deliver(state_from_event(wire_value(message.event)))
        return [None] * len(messages)
