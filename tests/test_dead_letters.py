"""A dead letter that the DLQ topic can never take must not hold its partition back: it is kept in the store."""
from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from consumers.dead_letters import KafkaDeadLetters, StoreDeadLetters
from stores.database import Database
from stores.dead_letters import DeadLetterStore
from stores.protection import FieldCipher, KeyRing
from settings import DEV_ENCRYPTION_KEY


class Producer:
    """A producer whose every send fails with `error` (or succeeds when None), recording what it was given."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.sent: list[tuple[str, bytes | None]] = []

    async def send_and_wait(self, topic: str, *, value: bytes | None, key: bytes | None, headers: Any) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append((topic, value))


class Clients:
    def __init__(self, producer: Producer) -> None:
        self.producer = producer


def _letters(database: Database) -> tuple[StoreDeadLetters, DeadLetterStore]:
    store = DeadLetterStore(database, FieldCipher(KeyRing.from_setting(DEV_ENCRYPTION_KEY)))
    return StoreDeadLetters(store), store


async def test_a_letter_too_large_for_the_topic_is_kept_in_the_store_with_both_reasons(database: Database) -> None:
    # Given a DLQ topic that refuses the letter as larger than the producer may send
    fallback, store = _letters(database)
    letters = KafkaDeadLetters(Clients(Producer(MessageSizeTooLargeError())), "case-events.dlq", fallback)

    # When an unusable event is dead-lettered
    await letters.record(b'{"id": "evt-huge"}', "data.title: too long", origin="kafka", key=b"CASE-1")

    # Then it returns (the partition moves on) and the store holds the original with both reasons
    [kept] = await store.latest()
    assert (kept["payload"], kept["key"], kept["origin"]) == (b'{"id": "evt-huge"}', b"CASE-1", "kafka")
    assert kept["reason"] == ("data.title: too long; not on case-events.dlq: "
                              "MessageSizeTooLargeError: message larger than max_request_size")


async def test_a_broker_outage_while_dead_lettering_is_left_to_the_retry(database: Database) -> None:
    # Given a broker that cannot be reached
    fallback, store = _letters(database)
    letters = KafkaDeadLetters(Clients(Producer(KafkaConnectionError())), "case-events.dlq", fallback)

    # When an event is dead-lettered, then the failure propagates (the batch is rewound, the letter sent later)
    with pytest.raises(KafkaConnectionError):
        await letters.record(b"{}", "bad", origin="kafka")
    assert await store.latest() == []
