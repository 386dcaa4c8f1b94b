"""Two instances of one consumer group share the partitions; each event is applied by exactly one of them.

They share nothing but the broker and a MongoDB-wire store process (tests/wire_store.py), each on a connection of
its own, as two pods on one MongoDB. (tests/kafka/test_kafka_three_instances.py does the same with three server
processes and a kill -9; these two stay in process to record which of them applied what.)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from consumers.cloudevents import CaseEvent
from consumers.pipeline import EventPipeline, IngestResult, IngestStatus
from settings import Settings
from stores.database import Database
from tests.kafka.kit import (
    KafkaProbe, Repository, Topics, assert_applied_once, case_stream, interleave, kafka_of, services_of, wait_for,
    wait_for_versions, wait_until,
)
from tests.kafka.processes import store_connections  # noqa: F401 - the fixture: connections to the wire store

pytestmark = pytest.mark.kafka

CASES = [f"CASE-SPLIT-{n}" for n in range(1, 10)]


def _record_applied(pipeline: EventPipeline, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The ids of the events this instance's pipeline applied (not duplicates, not parked)."""
    applied: set[str] = set()
    ingest = pipeline.ingest

    async def recording_ingest(events: Sequence[CaseEvent], **options: Any) -> list[IngestResult]:
        results = await ingest(events, **options)
        applied.update(r.event_id for r in results if r.status is IngestStatus.APPLIED)
        return results

    monkeypatch.setattr(pipeline, "ingest", recording_ingest)
    return applied


async def test_two_instances_split_the_partitions_and_apply_each_event_exactly_once(
    kafka_settings: Settings, topics: Topics, store_connections: Callable[[], Database], probe: KafkaProbe,
    repository: Repository, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given two apps of one group on one store (as two pods on one MongoDB), once the group has settled
    first = await repository.start_app(kafka_settings, store_connections())
    second = await repository.start_app(kafka_settings, store_connections())
    await wait_until(
        lambda: _assignments(first, second),
        lambda split: bool(split[0]) and bool(split[1]) and not split[0] & split[1] and len(split[0] | split[1]) == 3,
        "the two instances to split the 3 partitions",
    )
    applied_by_first = _record_applied(services_of(first).pipeline, monkeypatch)
    applied_by_second = _record_applied(services_of(second).pipeline, monkeypatch)
    streams = {case_id: case_stream(case_id, 4) for case_id in CASES}

    # when events for cases on every partition arrive
    assert await probe.produce_events(topics.events, interleave(streams.values())) == {0, 1, 2}

    # then every case holds each of its events once, and all offsets are committed
    await wait_for_versions(services_of(first), {case_id: 4 for case_id in CASES})
    await assert_applied_once(services_of(second), streams)
    # (a batch is committed after its ingest call has returned, so both records are complete from here on)
    await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
    # and each event was applied by exactly one instance, and both did a share
    every_event = {event["id"] for stream in streams.values() for event in stream}
    assert (applied_by_first | applied_by_second, applied_by_first & applied_by_second) == (every_event, set())
    assert applied_by_first and applied_by_second


async def _assignments(*clients: TestClient) -> tuple[set[int], ...]:
    return tuple({tp.partition for tp in kafka_of(client).assignment} for client in clients)
