"""Each server process reads `case-updates` (no group, from the end) to feed its own live subscriptions."""
from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer

from consumers.publication import state_from_event
from consumers.updates import UpdatesBus
from settings import Settings

log = logging.getLogger(__name__)


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
        await self._consumer.start()
        # Fix the start positions now, so that nothing published after start() is missed.
        for partition in self._consumer.assignment():
            await self._consumer.position(partition)
        self._task = asyncio.create_task(self._run(), name="case-updates listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        async for message in self._consumer:
            try:
                self._bus.deliver(state_from_event(message.value))
            except (ValueError, KeyError) as error:
                log.warning("unreadable case-updates message skipped", extra={"error": str(error)})
