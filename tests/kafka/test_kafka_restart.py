"""A consumer restarted mid-stream (same group, same database) ends with every event applied exactly once.

The store is a MongoDB-wire server in its own process (tests/wire_store.py), so what the restarted consumer finds is
what the store acknowledged, not what an object shared with the stopped one still holds: the first test restarts a
real app process (`python server.py`), the second stops an in-process instance at a chosen crash point (after its
case writes, before its journal write and commit) and lets a new one, on a connection of its own, take over.
"""
from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from pymongo.errors import AutoReconnect

from settings import Settings
from stores.database import Database
from tests.child_process import AppProcess
from tests.kafka.kit import (
    Broker, KafkaProbe, Repository, Topics, assert_applied_once, case_stream, interleave, wait_for, wait_for_versions,
)
from tests.kafka.processes import (
    app_env, assert_each_event_once, start_apps, store_connections, wait_for_stored_versions,  # noqa: F401
)
from tests.wire_store import WireStore

pytestmark = pytest.mark.kafka

CASES = [f"CASE-RESTART-{n}" for n in range(1, 7)]
FIRST_PART, LENGTH = 3, 6
DATABASE = "case_repository_restart"


async def test_a_restarted_process_carries_on_where_the_stopped_one_committed(
    kafka_broker: Broker, topics: Topics, probe: KafkaProbe, wire_store: WireStore,
) -> None:
    env = app_env(wire_store, DATABASE, kafka_broker.bootstrap, topics)
    first, second = AppProcess(env, name="first process"), AppProcess(env, name="restarted process")
    streams = {case_id: case_stream(case_id, LENGTH) for case_id in CASES}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        try:
            # given a process that has applied the first part of the stream and is then stopped (SIGTERM)
            await start_apps(http, [first])
            await probe.produce_events(topics.events, interleave(s[:FIRST_PART] for s in streams.values()))
            await wait_for_stored_versions(wire_store, DATABASE, {case_id: FIRST_PART for case_id in CASES})
            first.stop()
            assert first.returncode == 0, first.log_tail()

            # when the rest of the stream arrives while no consumer runs, and a new process starts (same group, store)
            assert await probe.produce_events(
                topics.events, interleave(s[FIRST_PART:] for s in streams.values())) == {0, 1, 2}
            await start_apps(http, [second])

            # then every event is applied once: no loss, no repeated history row, version == number of events
            await wait_for_stored_versions(wire_store, DATABASE, {case_id: LENGTH for case_id in CASES})
            await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
            assert_each_event_once(wire_store, DATABASE, streams)
        finally:
            first.kill()
            second.stop()


async def test_events_applied_but_not_committed_before_a_crash_are_not_applied_twice(
    kafka_settings: Settings, topics: Topics, probe: KafkaProbe, repository: Repository,
    store_connections: Callable[[], Database], monkeypatch: pytest.MonkeyPatch,
) -> None:
    streams = {case_id: case_stream(case_id, LENGTH) for case_id in CASES}
    # given a consumer that writes the cases but fails right after, before it can commit (as a crash would)
    first = await repository.start_instance(kafka_settings, store_connections())

    async def journal_down(records: object) -> None:
        raise AutoReconnect("connection lost after the case write (simulated crash point)")

    monkeypatch.setattr(first.services.events, "record_applied", journal_down)
    assert await probe.produce_events(topics.events, interleave(s[:FIRST_PART] for s in streams.values())) == {0, 1, 2}
    await wait_for_versions(first.services, {case_id: FIRST_PART for case_id in CASES})
    assert await probe.committed(topics.group, topics.events) == {0: None, 1: None, 2: None}
    await repository.stop_instance(first)

    # when the stream goes on and a healthy consumer of the same group takes over, on a connection of its own
    await probe.produce_events(topics.events, interleave(s[FIRST_PART:] for s in streams.values()))
    second = await repository.start_instance(kafka_settings, store_connections())

    # then the redelivered events are recognised and every event is applied exactly once
    await wait_for_versions(second.services, {case_id: LENGTH for case_id in CASES})
    await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
    await assert_applied_once(second.services, streams)
