"""A failure that a retry cannot cure does not stop its partition: the event is dead-lettered with the reason,
the cases behind it are applied and the offsets move on. A failure that a retry cures is retried, and nothing
is dead-lettered."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families
from pymongo.errors import AutoReconnect, DocumentTooLarge

from settings import Settings
from stores.database import Database
from tests.factories import BASE_TIME, action_data, bearer, case_created_data, envelope
from tests.kafka.kit import (
    PARTITIONS, STRUCTURED, KafkaProbe, Repository, Topics, assert_applied_once, case_stream, services_of, versions,
    wait_for, wait_for_versions, wait_until,
)

pytestmark = pytest.mark.kafka

MIB = 1024 * 1024
# The case of the issue: its full state passes 1 MiB at 3,500-5,000 history entries (NOTES.md).
ACTIONS = 6_000
# Thousands of events through one partition, several times over when a batch is isolated: minutes, not seconds.
LONG_WAIT_SECONDS = 240.0
HISTORY_TOTAL = "query($id: ID!) { case(id: $id) { history(first: 1) { totalCount } } }"
DEAD_LETTERED = "case_repository_events_dead_lettered_total"


def _same_partition_as(case_id: str, prefix: str) -> str:
    """A case id whose key lands on the partition of `case_id` (the producer's murmur2 partitioner)."""
    partitioner, partitions = DefaultPartitioner(), list(range(PARTITIONS))
    target = partitioner(case_id.encode(), partitions, partitions)
    return next(candidate for n in range(1000) if partitioner(
        (candidate := f"{prefix}-{n}").encode(), partitions, partitions) == target)


def _actions(case_id: str, count: int) -> list[dict[str, Any]]:
    """`count` recorded actions on one case, each at its own moment, after its creation."""
    return [envelope("case.action_recorded", case_id,
                     action_data(f"A-{n:05d}", summary=f"Customer called about the offer, call {n}",
                                 at=(BASE_TIME + timedelta(seconds=n)).isoformat()), sequence=n + 1)
            for n in range(1, count + 1)]


async def _produce_all(bootstrap: str, topic: str, envelopes: Sequence[dict[str, Any]]) -> set[int]:
    """Keyed by case id, in order, without a round trip per message (thousands of them)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        deliveries = [await producer.send(topic, orjson.dumps(e), key=e["subject"].encode(), headers=STRUCTURED)
                      for e in envelopes]
        return {metadata.partition for metadata in await asyncio.gather(*deliveries)}
    finally:
        await producer.stop()


async def _read_until_idle(probe: KafkaProbe, topic: str, idle_seconds: float = 3.0) -> list[ConsumerRecord]:
    """Everything on the topic, read until nothing more comes (Tansu's end offsets can be too low to count on)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=probe.bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        while batch := await consumer.getmany(timeout_ms=int(idle_seconds * 1000)):
            records += [record for part in batch.values() for record in part]
    finally:
        await consumer.stop()
    return records


async def _committed_and_ends(probe: KafkaProbe, topics: Topics) -> tuple[dict[int, int | None], dict[int, int]]:
    """The group's committed offsets and the partitions' ends, of the partitions that have messages."""
    ends = {p: end for p, end in (await probe.end_offsets(topics.events)).items() if end}
    committed = await probe.committed(topics.group, topics.events)
    return {p: committed[p] for p in ends}, ends


def _record_size(record: ConsumerRecord) -> int:
    return len(record.value or b"") + len(record.key or b"") + sum(len(k) + len(v) for k, v in record.headers)


async def _dead_lettered(client: TestClient) -> dict[str, float]:
    """`case_repository_events_dead_lettered_total` from GET /metrics, by reason class, for origin kafka."""
    response = await client.get("/metrics")
    assert response.status == 200
    return {sample.labels["reason_class"]: sample.value
            for family in text_string_to_metric_families(await response.text()) for sample in family.samples
            if sample.name == DEAD_LETTERED and sample.labels.get("origin") == "kafka"}


def _fail_saves_of(client: TestClient, monkeypatch: pytest.MonkeyPatch, case_id: str,
                   errors: Iterable[BaseException]) -> list[BaseException]:
    """The case store raises the next of `errors` on each save that writes `case_id`; the raised ones, in order."""
    cases, pending, raised = services_of(client).cases, iter(errors), []
    real_save = cases.save

    async def save(writes: Sequence[Any]) -> set[str]:
        if any(write.case["_id"] == case_id for write in writes):
            error = next(pending, None)
            if error is not None:
                raised.append(error)
                raise error
        return await real_save(writes)

    monkeypatch.setattr(cases, "save", save)
    return raised


@pytest.mark.timeout(900)
async def test_a_case_whose_state_outgrew_a_kafka_message_does_not_stop_the_cases_behind_it(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
) -> None:
    """Exactly the case of the issue. Fails until `case.state_changed` stops carrying the whole history."""
    client = await repository.start_app(kafka_settings, database)
    big = "CASE-BIG-HISTORY"
    behind = _same_partition_as(big, "CASE-BEHIND")
    behind_stream = case_stream(behind, 3)

    # given a case with 6,000 recorded actions, then another case on the same partition
    partitions = await _produce_all(
        probe.bootstrap, topics.events, [envelope("case.created", big, case_created_data(), sequence=1),
                                         *_actions(big, ACTIONS)])
    # One by one: Tansu reports a partition's end too low while its last batch holds several records.
    partitions |= await probe.produce_events(topics.events, behind_stream)
    assert len(partitions) == 1

    # then the case behind it is applied: it is not stuck behind the big one
    await wait_for_versions(services_of(client), {behind: len(behind_stream)}, timeout=LONG_WAIT_SECONDS)
    await wait_until(lambda: _committed_and_ends(probe, topics), lambda seen: seen[0] == seen[1],
                     "offsets committed to the end (committed, end)", timeout=LONG_WAIT_SECONDS)

    # and the big case has every action, and its creation, in its history
    response = await client.post("/graphql", json={"query": HISTORY_TOTAL, "variables": {"id": big}},
                                 headers=bearer())
    assert await response.json() == {"data": {"case": {"history": {"totalCount": ACTIONS + 1}}}}

    # and nothing was dead-lettered: every event was good
    assert await probe.end_offsets(topics.dlq) == {p: 0 for p in range(PARTITIONS)}

    # and every update on case-updates fits a Kafka message, the last one carrying the big case's final version
    updates = await _read_until_idle(probe, topics.updates)
    assert max(_record_size(update) for update in updates) < MIB
    final = [orjson.loads(update.value) for update in updates if update.key == big.encode()][-1]
    assert (final["type"], final["sequence"]) == ("case.state_changed", str(ACTIONS + 1))


async def test_a_case_the_store_can_never_write_is_dead_lettered_and_its_partition_moves_on(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await repository.start_app(kafka_settings, database)
    services = services_of(client)
    poisoned = "CASE-TOO-LARGE"
    behind = _same_partition_as(poisoned, "CASE-BEHIND")
    dead_lettered_before = (await _dead_lettered(client)).get("DocumentTooLarge", 0.0)

    # given a case that exists, and from now on the store refuses every write of it (it outgrew 16 MiB)
    [created, *changes] = case_stream(poisoned, 3)
    await probe.produce_events(topics.events, [created])
    await wait_for_versions(services, {poisoned: 1})
    _fail_saves_of(client, monkeypatch, poisoned, (DocumentTooLarge("BSON document too large") for _ in range(100)))

    # when two more of its events arrive, then a case behind them on the same partition
    behind_stream = case_stream(behind, 2)
    assert len(await probe.produce_events(topics.events, [*changes, *behind_stream])) == 1

    # then the case behind is applied, and the offsets are committed to the end
    await wait_for_versions(services, {behind: 2})
    await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
    assert await versions(services, [poisoned]) == {poisoned: 1}

    # and the two events are on the DLQ as they came, with a reason naming the failure class and no data
    letters = await probe.read(topics.dlq, 2)
    assert [orjson.loads(letter.value) for letter in letters] == changes
    assert [dict(letter.headers)["dlq_reason"] for letter in letters] == [
        b"DocumentTooLarge: document larger than MongoDB's BSON size limit"] * 2
    assert [int(dict(letter.headers)["dlq_offset"]) for letter in letters] == [1, 2]

    # and /metrics counts them by the class of the failure
    dead_lettered = await _dead_lettered(client)
    assert dead_lettered.get("DocumentTooLarge", 0.0) - dead_lettered_before == 2


async def test_a_failure_that_a_retry_cures_is_retried_and_nothing_is_dead_lettered(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await repository.start_app(kafka_settings, database)
    services = services_of(client)
    case_id = "CASE-PRIMARY-STEPPED-DOWN"

    # given a store whose primary steps down during the first two writes of a case
    raised = _fail_saves_of(client, monkeypatch, case_id, [AutoReconnect("primary stepped down")] * 2)

    # when the case's events arrive
    stream = case_stream(case_id, 3)
    await probe.produce_events(topics.events, stream)

    # then they are applied, once each, after the two failed attempts
    await wait_for_versions(services, {case_id: 3})
    await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
    assert len(raised) == 2
    await assert_applied_once(services, {case_id: stream})

    # and nothing went to the DLQ
    assert await probe.end_offsets(topics.dlq) == {p: 0 for p in range(PARTITIONS)}
