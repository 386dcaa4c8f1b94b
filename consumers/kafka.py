"""Kafka wiring: the shared producer, the ingest consumer and the `case-updates` listener."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from consumers.dead_letters import DeadLetters, KafkaDeadLetters
from consumers.kafka_ingest import IngestConsumer
from consumers.kafka_updates import UpdatesListener
from consumers.pipeline import EventPipeline
from consumers.publication import StateChange, state_event
from consumers.updates import UpdatesBus
from settings import Settings

log = logging.getLogger(__name__)


class KafkaUpdatesPublisher:
    """Publishes `case.state_changed` to `case-updates` and waits for the broker's acknowledgement."""

    def __init__(self, clients: KafkaClients, topic: str) -> None:
        self._clients = clients
        self._topic = topic

    async def publish(self, changes: Sequence[StateChange]) -> None:
        producer = self._clients.producer
        deliveries = []
        for change in changes:
            key, value = state_event(change)
            deliveries.append(await producer.send(self._topic, value=value, key=key))
        # The inbound offsets are committed only after this returns: an unpublished state is redelivered.
        await asyncio.gather(*deliveries)


class KafkaClients:
    """Everything that talks to Kafka; built with the app, started and stopped with it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.producer: Any = None
        self._ingest: IngestConsumer | None = None
        self._listener: UpdatesListener | None = None

    def updates_publisher(self) -> KafkaUpdatesPublisher:
        return KafkaUpdatesPublisher(self, self._settings.kafka_topic_updates)

    def dead_letters(self) -> DeadLetters:
        return KafkaDeadLetters(self, self._settings.kafka_topic_dlq)

    async def start(self, pipeline: EventPipeline, dead_letters: DeadLetters, bus: UpdatesBus) -> None:
        settings = self._settings
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=5,
        )
        await self.producer.start()
        self._listener = UpdatesListener(settings, bus)
        await self._listener.start()
        self._ingest = IngestConsumer(settings, pipeline, dead_letters)
        await self._ingest.start()
        log.info("kafka started", extra={"bootstrap": settings.kafka_bootstrap_servers,
                                          "group": settings.kafka_group_id})

    async def stop(self) -> None:
        # Ingest first: it finishes its batch, publishes and commits before the producer goes.
        if self._ingest is not None:
            await self._ingest.stop()
        if self._listener is not None:
            await self._listener.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def ready(self) -> bool:
        return (
            self.producer is not None
            and bool(self.producer.client.cluster.brokers())
            and self._ingest is not None and self._ingest.running
            and self._listener is not None and self._listener.running
        )
