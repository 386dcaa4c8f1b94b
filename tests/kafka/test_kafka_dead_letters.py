"""Messages that can never be applied go to `case-events.dlq` as they came, with the reason; the consumer
carries on with the valid events around them."""
from __future__ import annotations

import orjson
import pytest

from settings import Settings
from stores.database import Database
from tests.factories import case_created_data, envelope
from tests.kafka.kit import (
    STRUCTURED, KafkaProbe, Repository, Topics, stored_cases, wait_for, wait_for_versions,
)

pytestmark = pytest.mark.kafka

CASE = "CASE-DLQ-1"


def _trace(n: int) -> list[tuple[str, bytes]]:
    return [*STRUCTURED, ("traceparent", f"00-4bf92f3577b34da6a3ce929d0e0e{n:04d}-00f067aa0ba902b7-01".encode())]


async def test_unusable_messages_go_to_the_dlq_as_they_came_and_the_valid_ones_are_applied(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
) -> None:
    instance = await repository.start_instance(kafka_settings, database)
    created = envelope("case.created", CASE, case_created_data(), sequence=1)
    in_review = envelope("case.status_changed", CASE, {"status": "IN_REVIEW", "stage": "ANALYSIS"}, sequence=2)
    approved = envelope("case.status_changed", CASE, {"status": "APPROVED", "stage": "DECISION"}, sequence=4)
    malformed = b'{"specversion": "1.0", "id": "evt-broken", "type": '
    unknown_type = orjson.dumps(envelope("case.exploded", CASE, {"status": "BOOM"}, sequence=3))
    missing_status = orjson.dumps(envelope("case.status_changed", CASE, {"stage": "DECISION"}, sequence=3))
    second_creation = orjson.dumps(envelope("case.created", CASE, case_created_data(), sequence=3))

    # given a stream of one case where unusable messages sit between valid events (one key: one partition)
    await probe.produce(topics.events, orjson.dumps(created), CASE, _trace(1))
    await probe.produce(topics.events, malformed, CASE, _trace(2))
    await probe.produce(topics.events, orjson.dumps(in_review), CASE, _trace(3))
    await probe.produce(topics.events, unknown_type, CASE, _trace(4))
    await probe.produce(topics.events, missing_status, CASE, _trace(5))
    await probe.produce(topics.events, second_creation, CASE, _trace(6))
    await probe.produce(topics.events, orjson.dumps(approved), CASE, _trace(7))

    # then the valid events are all applied
    await wait_for_versions(instance.services, {CASE: 3})
    case = (await stored_cases(instance.services, [CASE]))[CASE]
    assert [entry["id"] for entry in case["history"]] == [created["id"], in_review["id"], approved["id"]]
    assert (case["status"], case["stage"]) == ("APPROVED", "DECISION")

    # and each unusable message is on the DLQ with its original key, bytes and headers, plus the reason
    letters = await probe.read(topics.dlq, 4)
    assert [(m.key, m.value) for m in letters] == [
        (CASE.encode(), malformed), (CASE.encode(), unknown_type), (CASE.encode(), missing_status),
        (CASE.encode(), second_creation),
    ]
    partition = letters[0].partition
    assert [list(m.headers) for m in letters] == [
        [*_trace(offset + 1),
         ("dlq_topic", topics.events.encode()), ("dlq_partition", str(partition).encode()),
         ("dlq_offset", str(offset).encode()), ("dlq_reason", reason), ("dlq_origin", b"kafka")]
        for offset, reason in [
            (1, b"event: not valid JSON (unexpected end of data: line 1 column 52 (char 51))"),
            (3, b"type: unknown event type 'case.exploded'"),
            (4, b"data.status: Field required"),
            (5, f"case {CASE} already exists; case.created cannot be applied twice".encode()),
        ]
    ]

    # and the consumer carried on: the whole partition is committed
    await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
