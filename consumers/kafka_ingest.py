"""The ingest loop: fetch a batch from `case-events`, apply it, commit `offset + 1` per partition.

Offsets are committed only after the store has every event of the batch, its new states are published
and its malformed messages are on the DLQ topic. A failure a retry can cure (store outage, broker hiccup)
rewinds to the batch start and backs off, so no event is lost and none is committed unapplied; one that
fails the same way every time (consumers/failures.py) is isolated to its events, which are dead-lettered
with the reason, so one event cannot stop its partition.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from prometheus_client import Counter, Gauge

from consumers.cloudevents import CaseEvent, InvalidEvent, parse_kafka_message
from consumers.dead_letters import DeadLetters
from consumers.failures import can_retry, failure_class, failure_reason
from consumers.pipeline import EventPipeline, IngestStatus
from settings import Settings

log = logging.getLogger(__name__)
CONSUMER_LAG = Gauge("case_repository_consumer_lag", "Messages behind the partition end", ["partition"])
BATCHES_FAILED = Counter("case_repository_ingest_batches_failed_total",
                         "Ingest batches rewound for a retry (store or broker unavailable)")
MAX_BATCH = 500
POLL_TIMEOUT_MS = 500
INITIAL_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
# A shutdown waits this long for the batch in flight; what it does not commit is simply redelivered.
STOP_GRACE_SECONDS = 10.0
# Heartbeats every second (Kafka's default is 3 s): a joining or leaving instance is noticed sooner,
# which shortens every rebalance during a rolling deploy; still a third of the session timeout.
HEARTBEAT_INTERVAL_MS = 1000
SESSION_TIMEOUT_MS = 10000

Batch = dict[TopicPartition, list[ConsumerRecord]]


class _Refused(NamedTuple):
    """A message to dead-letter: why, and the class of why for the metric."""

    message: ConsumerRecord
    reason: str
    reason_class: str


class _FinishBatchFirst(ConsumerRebalanceListener):
    """Partitions move only between batches: the loop holds the lock while a batch is in flight."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self._lock:
            log.info("partitions revoked", extra={"partitions": sorted(str(tp) for tp in revoked)})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(str(tp) for tp in assigned)})


class IngestConsumer:
    """The `case-events` consumer of the group `kafka_group_id`; started and stopped with the app."""

    def __init__(self, settings: Settings, pipeline: EventPipeline, dead_letters: DeadLetters,
                 *, initial_backoff: float = INITIAL_BACKOFF_SECONDS) -> None:
        self._settings = settings
        self._pipeline = pipeline
        self._dead_letters = dead_letters
        self._initial_backoff = initial_backoff
        self._backoff = initial_backoff
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
        """Join the group (returns once the first assignment is known) and start the loop."""
        settings = self._settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, group_id=settings.kafka_group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=MAX_BATCH,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS, session_timeout_ms=SESSION_TIMEOUT_MS,
        )
        self._consumer.subscribe([settings.kafka_topic_events], listener=_FinishBatchFirst(self._lock))
        try:
            await self._consumer.start()
        except BaseException:
            await self._consumer.stop()
            raise
        self._task = asyncio.create_task(self._run(), name="case-events ingest")

    async def stop(self) -> None:
        """Finish the batch in flight (commit included), then leave the group."""
        self._stopping.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=STOP_GRACE_SECONDS)
            if not done:
                log.warning("ingest batch still in flight at shutdown; it will be redelivered")
                self._task.cancel()
                await asyncio.wait({self._task})
            elif not self._task.cancelled() and self._task.exception() is not None:
                log.error("ingest loop had died", exc_info=self._task.exception())
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while not self._stopping.is_set():
            try:
                batch = await self._consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_BATCH)
            except Exception:  # noqa: BLE001 - a broker error, or a record the client cannot decode: the loop
                # outlives both (what was fetched is fetched again), or /readyz would turn 503 for good.
                log.exception("fetching from case-events failed; backing off", extra={"backoff_s": self._backoff})
                await self._back_off()
                continue
            if not batch:
                continue
            async with self._lock:
                applied = await self._apply_or_rewind(batch)
            if applied:
                self._backoff = self._initial_backoff
            else:
                # Sleep outside the lock, so that a rebalance need not wait for the store to come back.
                await self._back_off()

    async def _apply_or_rewind(self, batch: Batch) -> bool:
        assert self._consumer is not None
        try:
            await self._apply(batch)
        except Exception:  # noqa: BLE001 - nothing is dropped: the batch is rewound and retried
            BATCHES_FAILED.inc()
            log.exception("batch not applied; rewinding and backing off", extra={"backoff_s": self._backoff})
            still_ours = self._consumer.assignment()
            for partition, messages in batch.items():
                # A partition that moved meanwhile restarts at its committed offset on its new owner.
                if partition in still_ours:
                    self._consumer.seek(partition, messages[0].offset)
            return False
        return True

    async def _back_off(self) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=self._backoff)
        except asyncio.TimeoutError:
            pass  # the normal end of a backoff: nobody asked us to stop meanwhile
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_SECONDS)

    async def _apply(self, batch: Batch) -> None:
        assert self._consumer is not None
        valid: list[tuple[ConsumerRecord, CaseEvent]] = []
        refused: list[_Refused] = []
        for messages in batch.values():
            for message in messages:
                try:
                    valid.append((message, parse_kafka_message(message.value, message.headers, message.key)))
                except InvalidEvent as error:
                    refused.append(_Refused(message, error.reason, "invalid"))
                except Exception as error:  # noqa: BLE001 - parse_kafka_message should say InvalidEvent; if it
                    # does not, the message is still the message's fault: rewinding would retry it for ever.
                    log.exception("message could not be read; dead-lettering it")
                    refused.append(_Refused(message, f"message: cannot be read ({type(error).__name__})", "invalid"))
        refused += await self._ingest(valid)
        # Dead letters go out only once the store has the batch, so a retried batch does not repeat them.
        for refusal in refused:
            await self._dead_letter(refusal)
        await self._consumer.commit({tp: messages[-1].offset + 1 for tp, messages in batch.items()})
        self._record_lag(batch)

    async def _ingest(self, valid: list[tuple[ConsumerRecord, CaseEvent]]) -> list[_Refused]:
        """Apply the batch; the messages to dead-letter. A failure a retry can cure propagates (rewind)."""
        actor = f"kafka:{self._settings.kafka_group_id}"
        try:
            results = await self._pipeline.ingest([event for _, event in valid], actor=actor)
        except Exception as error:
            if can_retry(error):
                raise
            # Not the partition's fault: find the event(s) that fail every time, and apply the others.
            log.exception("batch failed for a reason retrying cannot cure; applying its events one by one",
                          extra={"reason": failure_reason(error)})
            return await self._ingest_one_by_one(valid, actor)
        return [_Refused(message, result.reason or "rejected by the pipeline", "rejected")
                for (message, _), result in zip(valid, results, strict=True)
                if result.status is IngestStatus.REJECTED]

    async def _ingest_one_by_one(self, valid: list[tuple[ConsumerRecord, CaseEvent]], actor: str) -> list[_Refused]:
        refused = []
        for message, event in valid:
            try:
                [result] = await self._pipeline.ingest([event], actor=actor)
            except Exception as error:
                if can_retry(error):
                    raise
                # This one event would block its partition forever.
                reason = failure_reason(error)
                log.exception("event cannot be applied; dead-lettering it", extra={"event_id": event.id, "reason": reason})
                refused.append(_Refused(message, reason, failure_class(error)))
                continue
            if result.status is IngestStatus.REJECTED:
                refused.append(_Refused(message, result.reason or "rejected by the pipeline", "rejected"))
        return refused

    def _record_lag(self, batch: Batch) -> None:
        assert self._consumer is not None
        assigned = self._consumer.assignment()
        for tp, messages in batch.items():
            highwater = self._consumer.highwater(tp) if tp in assigned else None
            if highwater is not None:
                CONSUMER_LAG.labels(str(tp.partition)).set(max(highwater - messages[-1].offset - 1, 0))

    async def _dead_letter(self, refusal: _Refused) -> None:
        message = refusal.message
        # Where the message came from, after its own headers, so an operator can find and replay it.
        origin_headers: Sequence[tuple[str, bytes]] = [
            ("dlq_topic", message.topic.encode()), ("dlq_partition", str(message.partition).encode()),
            ("dlq_offset", str(message.offset).encode()),
        ]
        try:
            await self._dead_letters.record(
                message.value, refusal.reason, origin="kafka", headers=[*(message.headers or ()), *origin_headers],
                key=message.key, reason_class=refusal.reason_class,
            )
        except Exception as error:
            if can_retry(error):
                raise
            # The message's own headers may be what the DLQ cannot take (a header without a value): the letter
            # goes without them rather than hold its partition back.
            log.exception("dead letter refused with its headers; sending it without them",
                          extra={"reason": failure_reason(error)})
            await self._dead_letters.record(
                message.value, f"{refusal.reason}; its headers were not kept ({failure_reason(error)})",
                origin="kafka", headers=origin_headers, key=message.key, reason_class=refusal.reason_class,
            )
