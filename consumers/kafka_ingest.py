"""The ingest loop: fetch a batch from `case-events`, apply it, commit `offset + 1` per partition.

Offsets are committed only after the store has every event of the batch and its new states are
published; anything else (store outage, broker hiccup, a bug) rewinds to the batch start and backs off.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from prometheus_client import Gauge

from consumers.cloudevents import CaseEvent, InvalidEvent, parse_kafka_message
from consumers.dead_letters import DeadLetters
from consumers.pipeline import EventPipeline, IngestStatus
from settings import Settings

log = logging.getLogger(__name__)
CONSUMER_LAG = Gauge("case_repository_consumer_lag", "Messages behind the partition end", ["partition"])
MAX_BATCH = 500
MAX_BACKOFF_SECONDS = 30.0


class _FinishBatchFirst(ConsumerRebalanceListener):
    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # The loop holds the lock while a batch is in flight: let it apply and commit before partitions move.
        async with self._lock:
            log.info("partitions revoked", extra={"partitions": [str(tp) for tp in revoked]})

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned", extra={"partitions": [str(tp) for tp in assigned]})


class IngestConsumer:
    def __init__(self, settings: Settings, pipeline: EventPipeline, dead_letters: DeadLetters,
                 *, initial_backoff: float = 0.5) -> None:
        self._settings = settings
        self._pipeline = pipeline
        self._dead_letters = dead_letters
        self._initial_backoff = initial_backoff
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment()) if self._consumer else set()

    async def start(self) -> None:
        settings = self._settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, group_id=settings.kafka_group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=MAX_BATCH,
        )
        self._consumer.subscribe([settings.kafka_topic_events], listener=_FinishBatchFirst(self._lock))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="case-events ingest")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        backoff = self._initial_backoff
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(timeout_ms=500, max_records=MAX_BATCH)
            if not batches:
                continue
            async with self._lock:
                try:
                    await self._apply(batches)
                    backoff = self._initial_backoff
                except Exception:  # noqa: BLE001 - rewound and retried below, never dropped
                    log.exception("batch not applied; rewinding and backing off", extra={"backoff_s": backoff})
                    for partition, messages in batches.items():
                        self._consumer.seek(partition, messages[0].offset)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _apply(self, batches: dict[TopicPartition, list[Any]]) -> None:
        assert self._consumer is not None
        events: list[CaseEvent] = []
        messages_by_event: dict[str, Any] = {}
        for messages in batches.values():
            for message in messages:
                try:
                    event = parse_kafka_message(message.value, message.headers, message.key)
                except InvalidEvent as error:
                    await self._dead_letter(message, error.reason)
                    continue
                events.append(event)
                messages_by_event[event.id] = message
        for result in await self._pipeline.ingest(events):
            if result.status is IngestStatus.REJECTED:
                await self._dead_letter(messages_by_event[result.event_id], result.reason or "rejected")
        await self._consumer.commit({tp: messages[-1].offset + 1 for tp, messages in batches.items()})
        for tp, messages in batches.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                CONSUMER_LAG.labels(str(tp.partition)).set(max(highwater - messages[-1].offset - 1, 0))

    async def _dead_letter(self, message: Any, reason: str) -> None:
        await self._dead_letters.record(
            message.value, reason, origin="kafka", headers=list(message.headers or ()), key=message.key,
        )
