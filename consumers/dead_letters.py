"""Where events that can never be applied go, with the original payload, headers and the reason."""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from consumers.failures import can_retry, failure_reason
from stores.dead_letters import DeadLetterStore

log = logging.getLogger(__name__)
# reason_class: "invalid" (refused by validation), "rejected" (by the pipeline's rules), or the class of the
# failure a retry cannot cure (consumers/failures.py), e.g. "MessageSizeTooLargeError", "DocumentTooLarge".
DEAD_LETTERED = Counter("case_repository_events_dead_lettered_total", "Events sent to the DLQ",
                        ["origin", "reason_class"])


class DeadLetters(Protocol):
    async def record(self, payload: Any, reason: str, *, origin: str,
                     headers: Sequence[tuple[str, bytes]] = (), key: bytes | None = None,
                     reason_class: str = "invalid") -> None: ...


def _as_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes | None):
        return payload or b""
    try:
        return orjson.dumps(payload, default=str)
    except orjson.JSONEncodeError:
        # What the letter is about may be what orjson refuses (an integer beyond 64 bits, a lone surrogate): the
        # standard encoder keeps it, escaped, so the letter still says exactly what was sent.
        return json.dumps(payload, default=str).encode("ascii")


class StoreDeadLetters:
    """Embedded mode: dead letters in the `dead_letters` collection."""

    def __init__(self, store: DeadLetterStore) -> None:
        self._store = store

    async def record(self, payload: Any, reason: str, *, origin: str,
                     headers: Sequence[tuple[str, bytes]] = (), key: bytes | None = None,
                     reason_class: str = "invalid") -> None:
        await self._store.add(payload=_as_bytes(payload), reason=reason, origin=origin, key=key,
                              headers=[[name, value] for name, value in headers])
        DEAD_LETTERED.labels(origin, reason_class).inc()
        log.warning("event dead-lettered", extra={"reason": reason, "origin": origin})

    async def latest(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest dead letters, payloads opened, for an operator's inspection."""
        return await self._store.latest(limit)


class ProducerHolder(Protocol):
    """Whatever owns the started producer (KafkaClients); asked at send time, as it starts with the app."""

    @property
    def producer(self) -> AIOKafkaProducer: ...


def _kafka_value(payload: Any) -> bytes | None:
    # A message without a value stays without one: the DLQ keeps the original payload as it was.
    return None if payload is None else _as_bytes(payload)


class KafkaDeadLetters:
    """Kafka mode: the original message to `case-events.dlq`, its headers kept, the reason added as headers.

    A dead letter the topic can never take (the original plus its headers is larger than the producer may send)
    goes to the store's `dead_letters` collection instead, so that it cannot hold its partition back either."""

    def __init__(self, clients: ProducerHolder, topic: str, fallback: StoreDeadLetters) -> None:
        self._clients = clients
        self._topic = topic
        self._fallback = fallback

    async def record(self, payload: Any, reason: str, *, origin: str,
                     headers: Sequence[tuple[str, bytes]] = (), key: bytes | None = None,
                     reason_class: str = "invalid") -> None:
        """Send and wait for the acknowledgement: the caller commits the inbound offset only afterwards."""
        try:
            await self._clients.producer.send_and_wait(
                self._topic, value=_kafka_value(payload), key=key,
                headers=[*headers, ("dlq_reason", reason.encode()), ("dlq_origin", origin.encode())],
            )
        except KafkaError as error:
            if can_retry(error):
                raise  # the broker, not the letter: the batch is rewound and the letter sent again
            log.error("dead letter refused by the DLQ topic; kept in the store",
                      extra={"reason": reason, "error": failure_reason(error)})
            await self._fallback.record(payload, f"{reason}; not on {self._topic}: {failure_reason(error)}",
                                        origin=origin, headers=headers, key=key, reason_class=reason_class)
            return
        DEAD_LETTERED.labels(origin, reason_class).inc()
        log.warning("event dead-lettered", extra={"reason": reason, "origin": origin})
