"""The ingest consumer commits a batch's offsets only once the store has the batch; a store outage rewinds,
backs off and resumes without losing or repeating an event."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from settings import Settings
from stores.cases import CaseWrite
from stores.database import Database
from tests.kafka.kit import (
    WAIT_SECONDS, KafkaProbe, Repository, Topics, assert_applied_once, case_stream, interleave, versions,
    wait_for, wait_for_versions,
)

pytestmark = pytest.mark.kafka

CASES = [f"CASE-COMMIT-{n}" for n in range(1, 7)]
NOTHING_COMMITTED = {0: None, 1: None, 2: None}


async def test_offsets_are_committed_only_after_the_store_has_the_batch(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a consumer whose store write is held open until the test releases it
    instance = await repository.start_instance(kafka_settings, database)
    write_started, release_write = asyncio.Event(), asyncio.Event()
    save = instance.services.cases.save

    async def held_save(writes: list[CaseWrite]) -> set[str]:
        write_started.set()
        await release_write.wait()
        return await save(writes)

    monkeypatch.setattr(instance.services.cases, "save", held_save)
    streams = {case_id: case_stream(case_id, 4) for case_id in CASES}

    # when events on every partition arrive and the first batch reaches the store
    assert await probe.produce_events(topics.events, interleave(streams.values())) == {0, 1, 2}
    await asyncio.wait_for(write_started.wait(), WAIT_SECONDS)

    # then, while the write is in flight, the group has committed nothing
    assert await probe.committed(topics.group, topics.events) == NOTHING_COMMITTED

    # when the store finishes writing
    release_write.set()

    # then every event is applied once and the committed offsets reach the end of every partition
    await wait_for_versions(instance.services, {case_id: 4 for case_id in CASES})
    await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
    assert await probe.committed(topics.group, topics.events) == await probe.end_offsets(topics.events)
    await assert_applied_once(instance.services, streams)


async def test_a_store_outage_commits_nothing_loses_nothing_and_the_consumer_resumes(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a consumer (initial backoff 50 ms) whose store refuses every write until it recovers
    initial_backoff = 0.05
    instance = await repository.start_instance(kafka_settings, database, initial_backoff=initial_backoff)
    save = instance.services.cases.save
    store_up = asyncio.Event()
    attempts: list[float] = []

    async def save_during_outage(writes: list[CaseWrite]) -> Any:
        attempts.append(time.monotonic())
        if not store_up.is_set():
            raise AutoReconnect("connection refused (simulated MongoDB outage)")
        return await save(writes)

    monkeypatch.setattr(instance.services.cases, "save", save_during_outage)
    streams = {case_id: case_stream(case_id, 4) for case_id in CASES}

    # when events arrive during the outage and the consumer has tried five times
    assert await probe.produce_events(topics.events, interleave(streams.values())) == {0, 1, 2}
    await wait_for(lambda: asyncio.sleep(0, len(attempts) >= 5), "five write attempts during the outage")

    # then nothing is committed and nothing is in the store
    assert await probe.committed(topics.group, topics.events) == NOTHING_COMMITTED
    assert await versions(instance.services, CASES) == {}
    # and the retries back off exponentially (lower bounds only: a loaded machine may be slower, never faster)
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:5])]
    assert all(gap >= 0.95 * initial_backoff * 2**n for n, gap in enumerate(gaps)), gaps

    # when the store recovers
    store_up.set()

    # then the consumer resumes: every event applied exactly once, offsets committed to the end
    await wait_for_versions(instance.services, {case_id: 4 for case_id in CASES})
    await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
    assert await probe.committed(topics.group, topics.events) == await probe.end_offsets(topics.events)
    await assert_applied_once(instance.services, streams)
