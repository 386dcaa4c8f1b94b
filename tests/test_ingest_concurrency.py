"""Two pipelines (two server processes) writing one case at once lose nothing: version guard plus retry."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from collections.abc import Iterable, Sequence
from typing import Any

from consumers.cloudevents import CaseEvent
from consumers.pipeline import EventPipeline, IngestResult, IngestStatus
from consumers.publication import StateChange
from stores.cases import CaseStore, CaseWrite
from stores.database import Database
from stores.events import EventStore
from tests.factories import CaseStory, action_data, case_created_data, task_data


class _NoUpdates:
    async def publish(self, changes: Sequence[StateChange]) -> None:
        return None


class InterleavingCaseStore(CaseStore):
    """Yields to the other pipeline between reading a case and writing it, as two processes would."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._rendezvous: asyncio.Barrier | None = None
        self.conflicts = 0

    def meet_before_first_write(self, other: InterleavingCaseStore) -> None:
        """The next read of each store waits for the other's, so both start from the same version."""
        self._rendezvous = other._rendezvous = asyncio.Barrier(2)

    async def get_for_update(self, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        docs = await super().get_for_update(case_ids)
        if self._rendezvous is not None:
            # Only the first read waits for the other pipeline's first read; retries run freely.
            rendezvous, self._rendezvous = self._rendezvous, None
            await rendezvous.wait()
        await asyncio.sleep(0)
        return docs

    async def save(self, writes: Sequence[CaseWrite]) -> set[str]:
        conflicted = await super().save(writes)
        self.conflicts += len(conflicted)
        return conflicted


def _pipeline(database: Database) -> tuple[EventPipeline, InterleavingCaseStore]:
    cases = InterleavingCaseStore(database)
    return EventPipeline(cases, EventStore(database), _NoUpdates()), cases


def _story(count: int) -> CaseStory:
    story = CaseStory("CASE-1").add("case.created", case_created_data())
    for number in range(1, count + 1):
        if number % 2:
            story.add("case.task_created", task_data(f"T-{number}"))
        else:
            at = story.at + timedelta(minutes=10)  # the time add() gives this event
            story.add("case.action_recorded", action_data(f"A-{number}", at=at.isoformat()))
    return story


async def _ingest_one_by_one(pipeline: EventPipeline, events: Sequence[CaseEvent]) -> list[IngestResult]:
    return [result for event in events for result in await pipeline.ingest([event])]


async def test_two_pipelines_writing_the_same_version_both_land(database) -> None:
    # Given a case at version 1 and two pipelines that both read it before either writes
    created, task, action = _story(2).events
    first, first_store = _pipeline(database)
    second, second_store = _pipeline(database)
    await second.ingest([created])
    first_store.meet_before_first_write(second_store)

    # When each applies a different event of the case at the same moment
    [one], [two] = await asyncio.gather(first.ingest([task]), second.ingest([action]))

    # Then one of them lost the version race and retried, and the case holds both events
    assert first_store.conflicts + second_store.conflicts == 1
    assert (one.status, two.status) == (IngestStatus.APPLIED, IngestStatus.APPLIED)
    case = await CaseStore(database).get_for_update(["CASE-1"])
    assert case["CASE-1"]["version"] == 3
    assert sorted(case["CASE-1"]["eventIds"]) == ["CASE-1-e001", "CASE-1-e002", "CASE-1-e003"]
    assert [t["id"] for t in case["CASE-1"]["tasks"]] == ["T-1"]
    assert [e["kind"] for e in case["CASE-1"]["history"]] == ["CASE_CREATED", "TASK_CREATED", "CALL"]


async def test_two_pipelines_interleaving_many_events_lose_none(database) -> None:
    # Given a case and 40 more events, split between two pipelines
    created, *events = _story(40).events
    first, first_store = _pipeline(database)
    second, second_store = _pipeline(database)
    await first.ingest([created])

    # When both apply their share concurrently, event by event and in small batches
    results = await asyncio.gather(
        _ingest_one_by_one(first, events[0::2]),
        second.ingest(events[1:10:2]), second.ingest(events[11:20:2]), _ingest_one_by_one(second, events[21::2]),
    )

    # Then the version races did happen, every event is applied once, and the version counts them all
    assert first_store.conflicts + second_store.conflicts > 0
    assert {r.status for batch in results for r in batch} == {IngestStatus.APPLIED}
    case = (await CaseStore(database).get_for_update(["CASE-1"]))["CASE-1"]
    assert case["version"] == 41
    assert sorted(case["eventIds"]) == sorted(e.id for e in [created, *events])
    assert len(case["history"]) == 41
    assert [t["id"] for t in case["tasks"]] == [f"T-{n}" for n in range(1, 41, 2)]


async def test_the_same_event_over_two_pipelines_at_once_is_applied_once(database) -> None:
    # Given a case and two pipelines that both read it before either writes
    created, task, _action = _story(2).events
    first, first_store = _pipeline(database)
    second, second_store = _pipeline(database)
    await first.ingest([created])
    first_store.meet_before_first_write(second_store)

    # When both receive the same event (say over HTTP and from Kafka) at the same moment
    results = await asyncio.gather(first.ingest([task]), second.ingest([task]))

    # Then the case holds it once. (Both may answer APPLIED: two writers that did identical work from the same
    # version cannot be told apart by the store, and either write is the same document.)
    statuses = [r.status for [r] in results]
    assert IngestStatus.APPLIED in statuses and set(statuses) <= {IngestStatus.APPLIED, IngestStatus.DUPLICATE}
    case = (await CaseStore(database).get_for_update(["CASE-1"]))["CASE-1"]
    assert (case["version"], case["eventIds"], len(case["tasks"])) == (2, ["CASE-1-e001", "CASE-1-e002"], 1)
