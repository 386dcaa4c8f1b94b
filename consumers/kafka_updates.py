"""Each server process reads `case-updates` (no group, from the end) to feed its own live subscriptions and
evict its own cached responses: `case.state_changed`, `case.task_changed` and `case.terms_changed` alike
(`published_from_event` tells them apart; an unknown type is skipped like an unreadable message).

Every instance must see every update (a subscriber may be connected to any of them), so this consumer
has no group: it takes all partitions and starts at their current end when the app starts.
"""
from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from consumers.publication import published_from_event
from consumers.updates import UpdatesBus
from settings import Settings

log = logging.getLogger(__name__)
POLL_TIMEOUT_MS = 500
RETRY_SECONDS = 1.0


class UpdatesListener:
    def __init__(self, settings: Settings, bus: UpdatesBus) -> None:
        self._settings = settings
        self._bus = bus
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self._settings.kafka_topic_updates, bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=None, enable_auto_commit=False, auto_offset_reset="latest",
        )
        try:
            await self._consumer.start()
            # Fix the start positions now, so that nothing published after start() is missed.
            for partition in self._consumer.assignment():
                await self._consumer.position(partition)
        except BaseException:
            await self._consumer.stop()
            raise
        self._task = asyncio.create_task(self._run(), name="case-updates listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            except KafkaError:
                # Live updates are best effort; the loop must outlive a broker hiccup.
                log.exception("reading case-updates failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for messages in batch.values():
                for message in messages:
                    self._deliver(message.value)

    def _deliver(self, value: bytes | None) -> None:
        if value is None:
            log.warning("empty case-updates message skipped")
            return
        try:
            published = published_from_event(value)
        except (ValueError, KeyError, TypeError) as error:
            log.warning("unreadable case-updates message skipped", extra={"error": str(error)})
            return
        self._bus.deliver(published)
