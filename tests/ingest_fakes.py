"""Stand-ins for what the Kafka ingest loop (consumers/kafka_ingest.py) talks to, for tests that hand it batches
directly: a record as aiokafka gives it, the consumer's commit/assignment/highwater, and a dead-letter sink."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

PARTITION = TopicPartition("case-events", 0)


@dataclass
class Message:
    offset: int
    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    topic: str = PARTITION.topic
    partition: int = PARTITION.partition


class Consumer:
    """What the ingest loop asks of aiokafka's consumer while applying a batch; the partition ends at `end`."""

    def __init__(self, end: int) -> None:
        self.committed: dict[TopicPartition, int] = {}
        self._end = end

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)

    def assignment(self) -> set[TopicPartition]:
        return {PARTITION}

    def highwater(self, partition: TopicPartition) -> int:
        return self._end


class Letters:
    """The dead letters sent: (payload, reason) each."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, str]] = []

    async def record(self, payload: Any, reason: str, **_: Any) -> None:
        self.sent.append((payload, reason))
