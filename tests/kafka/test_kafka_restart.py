"""A consumer restarted mid-stream (same group, same database) ends with every event applied exactly once."""
from __future__ import annotations

import pytest
from pymongo.errors import AutoReconnect

from settings import Settings
from stores.database import Database
from tests.kafka.kit import (
    KafkaProbe, Repository, Topics, assert_applied_once, case_stream, interleave, wait_for, wait_for_versions,
)

pytestmark = pytest.mark.kafka

CASES = [f"CASE-RESTART-{n}" for n in range(1, 7)]
FIRST_PART, LENGTH = 3, 6


async def test_a_restarted_consumer_carries_on_where_the_stopped_one_committed(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
) -> None:
    streams = {case_id: case_stream(case_id, LENGTH) for case_id in CASES}
    # given a consumer that has applied the first part of the stream and is then stopped
    first = await repository.start_instance(kafka_settings, database)
    await probe.produce_events(topics.events, interleave(s[:FIRST_PART] for s in streams.values()))
    await wait_for_versions(first.services, {case_id: FIRST_PART for case_id in CASES})
    await repository.stop_instance(first)

    # when the rest of the stream arrives while no consumer runs, and a new one starts (same group and database)
    assert await probe.produce_events(topics.events, interleave(s[FIRST_PART:] for s in streams.values())) == {0, 1, 2}
    second = await repository.start_instance(kafka_settings, database)

    # then every event is applied once: no loss, no repeated history entry, version == number of events
    await wait_for_versions(second.services, {case_id: LENGTH for case_id in CASES})
    await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
    await assert_applied_once(second.services, streams)


async def test_events_applied_but_not_committed_before_a_crash_are_not_applied_twice(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    streams = {case_id: case_stream(case_id, LENGTH) for case_id in CASES}
    # given a consumer that writes the cases but fails right after, before it can commit (as a crash would)
    first = await repository.start_instance(kafka_settings, database)

    async def journal_down(records: object) -> None:
        raise AutoReconnect("connection lost after the case write (simulated crash point)")

    monkeypatch.setattr(first.services.events, "record_applied", journal_down)
    assert await probe.produce_events(topics.events, interleave(s[:FIRST_PART] for s in streams.values())) == {0, 1, 2}
    await wait_for_versions(first.services, {case_id: FIRST_PART for case_id in CASES})
    assert await probe.committed(topics.group, topics.events) == {0: None, 1: None, 2: None}
    await repository.stop_instance(first)

    # when the stream goes on and a healthy consumer of the same group takes over
    await probe.produce_events(topics.events, interleave(s[FIRST_PART:] for s in streams.values()))
    second = await repository.start_instance(kafka_settings, database)

    # then the redelivered events are recognised and every event is applied exactly once
    await wait_for_versions(second.services, {case_id: LENGTH for case_id in CASES})
    await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
    await assert_applied_once(second.services, streams)
