"""Kafka wiring: the shared producer, the ingest consumer and the `case-updates` listener."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from consumers.cloudevents import STRUCTURED_CONTENT_TYPE
from consumers.dead_letters import DeadLetters, KafkaDeadLetters, StoreDeadLetters
from consumers.kafka_ingest import INITIAL_BACKOFF_SECONDS, IngestConsumer
from consumers.kafka_updates import UpdatesListener
from consumers.pipeline import EventPipeline
from consumers.publication import Published, published_from_event, wire_value
from consumers.updates import UpdatesBus
from stores.outbox import COMMANDS, UPDATES, Message
from settings import Settings

log = logging.getLogger(__name__)
# /readyz must answer quickly even when the broker hangs rather than refuses.
READY_TIMEOUT_SECONDS = 2.0
# CloudEvents Kafka binding, structured mode: the content type travels as a header.
STRUCTURED_HEADERS = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]


class KafkaSender:
    """The outbox relay's broker: each message to its topic (`updates` or `commands`), keyed by its case id, each
    outcome reported separately so that one message no retry can send does not hold back the others."""

    def __init__(self, clients: KafkaClients, topics: dict[str, str],
                 on_update_sent: Callable[[Published], None] | None = None) -> None:
        self._clients = clients
        self._topics = topics
        # This instance forgets cached answers as soon as the broker has an update, not when it comes back.
        self._on_update_sent = on_update_sent

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        producer = self._clients.producer
        deliveries: list[asyncio.Future[Any] | BaseException] = []
        for message in messages:
            try:
                deliveries.append(await producer.send(
                    self._topics[message.topic], value=wire_value(message.event), key=message.key.encode(),
                    headers=STRUCTURED_HEADERS))
            except KafkaError as error:  # e.g. larger than max_request_size: refused before it is sent
                deliveries.append(error)
        outcomes: list[BaseException | None] = []
        for message, delivery in zip(messages, deliveries, strict=True):
            if isinstance(delivery, BaseException):
                outcomes.append(delivery)
                continue
            try:
                await delivery
            except KafkaError as error:
                outcomes.append(error)
                continue
            outcomes.append(None)
            if message.topic == UPDATES and self._on_update_sent is not None:
                self._on_update_sent(published_from_event(wire_value(message.event)))
        return outcomes


class KafkaClients:
    """Everything that talks to Kafka; built with the app, started and stopped with it."""

    def __init__(self, settings: Settings, *, initial_backoff: float = INITIAL_BACKOFF_SECONDS) -> None:
        self._settings = settings
        self._initial_backoff = initial_backoff
        self._producer: AIOKafkaProducer | None = None
        self._ingest: IngestConsumer | None = None
        self._listener: UpdatesListener | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        """The shared producer; publishers and dead letters ask for it at send time (it starts with the app)."""
        if self._producer is None:
            raise RuntimeError("Kafka clients are not started")
        return self._producer

    @property
    def assignment(self) -> set[TopicPartition]:
        """The `case-events` partitions this instance currently consumes."""
        return self._ingest.assignment if self._ingest is not None else set()

    def sender(self, on_update_sent: Callable[[Published], None] | None = None) -> KafkaSender:
        """The outbox relay's sender to `case-updates` and `case-commands`."""
        topics = {UPDATES: self._settings.kafka_topic_updates, COMMANDS: self._settings.kafka_topic_commands}
        return KafkaSender(self, topics, on_update_sent)

    def dead_letters(self, fallback: StoreDeadLetters) -> DeadLetters:
        """The DLQ topic; a letter the topic can never take goes to `fallback`."""
        return KafkaDeadLetters(self, self._settings.kafka_topic_dlq, fallback)

    async def start(self, pipeline: EventPipeline, dead_letters: DeadLetters, bus: UpdatesBus) -> None:
        """Producer first (the loops publish through it), then the listener, then the ingest consumer."""
        settings = self._settings
        try:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=5,
            )
            await self._producer.start()
            # The listener starts before ingest so this instance's first updates reach its own subscribers.
            listener = UpdatesListener(settings, bus)
            await listener.start()
            self._listener = listener
            ingest = IngestConsumer(settings, pipeline, dead_letters, initial_backoff=self._initial_backoff)
            await ingest.start()
            self._ingest = ingest
        except BaseException:
            # A half-started client set would leak connections and tasks: undo what did start.
            await self.stop()
            raise
        log.info("kafka started", extra={"bootstrap": settings.kafka_bootstrap_servers,
                                          "group": settings.kafka_group_id})

    async def stop(self) -> None:
        """Stop everything, each part even when another fails: a shutdown must finish while Kafka is down."""
        # Ingest first: it finishes its batch, publishes and commits before the producer goes.
        if self._ingest is not None:
            await _stop_despite_broker("ingest consumer", self._ingest.stop)
            self._ingest = None
        if self._listener is not None:
            await _stop_despite_broker("case-updates listener", self._listener.stop)
            self._listener = None
        if self._producer is not None:
            await _stop_despite_broker("producer", self._producer.stop)
            self._producer = None

    async def ready(self) -> bool:
        """Both loops run and a broker answers a metadata request now (not from a cached view)."""
        if self._producer is None or self._ingest is None or self._listener is None:
            return False
        if not (self._ingest.running and self._listener.running):
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), READY_TIMEOUT_SECONDS)
        except (KafkaError, asyncio.TimeoutError) as error:
            log.warning("kafka not reachable", extra={"error": repr(error)})
            return False
        return True


async def _stop_despite_broker(name: str, stop: Callable[[], Awaitable[None]]) -> None:
    try:
        await stop()
    except KafkaError:
        log.exception("kafka client did not close cleanly", extra={"client": name})
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # our own shutdown is being cancelled: honour it
        # aiokafka 0.14's Fetcher.close() cancels its pending tasks and then awaits them, so with the broker
        # down a consumer's stop() raises a CancelledError that nobody asked for. The consumer is closed anyway.
        log.warning("kafka client closed while the broker was unreachable", extra={"client": name})
