"""Two pipelines (two server processes) writing one case at once lose nothing: version guard plus retry."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from consumers.cloudevents import CaseEvent
from consumers.pipeline import EventPipeline, IngestResult, IngestStatus
from context import Services
from stores.cases import CaseStore, CaseWrite
from tests.factories import CaseStory, action_data, case_created_data, stored_case, task_data



class InterleavingCases:
    """The app's case store, yielding to the other pipeline between reading a case and writing it."""

    def __init__(self, cases: CaseStore) -> None:
        self._cases = cases
        self._rendezvous: asyncio.Barrier | None = None
        self.conflicts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cases, name)

    def meet_before_first_write(self, other: InterleavingCases) -> None:
        """The next read of each store waits for the other's, so both start from the same version."""
        self._rendezvous = other._rendezvous = asyncio.Barrier(2)

    async def get_for_update(self, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        docs = await self._cases.get_for_update(case_ids)
        if self._rendezvous is not None:
            # Only the first read waits for the other pipeline's first read; retries run freely.
            rendezvous, self._rendezvous = self._rendezvous, None
            await rendezvous.wait()
        await asyncio.sleep(0)
        return docs

    async def save(self, writes: Sequence[CaseWrite]) -> set[str]:
        conflicted = await self._cases.save(writes)
        self.conflicts += len(conflicted)
        return conflicted


def _pipeline(services: Services) -> tuple[EventPipeline, InterleavingCases]:
    """A second server process: its own pipeline over the same database."""
    cases = InterleavingCases(services.cases)
    return EventPipeline(cases, services.events, services.staging), cases  # type: ignore[arg-type]


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


async def test_two_pipelines_writing_the_same_version_both_land(services) -> None:
    # Given a case at version 1 and two pipelines that both read it before either writes
    created, task, action = _story(2).events
    first, first_store = _pipeline(services)
    second, second_store = _pipeline(services)
    await second.ingest([created])
    first_store.meet_before_first_write(second_store)

    # When each applies a different event of the case at the same moment
    [one], [two] = await asyncio.gather(first.ingest([task]), second.ingest([action]))

    # Then one of them lost the version race and retried, and the case holds both events
    assert first_store.conflicts + second_store.conflicts == 1
    assert (one.status, two.status) == (IngestStatus.APPLIED, IngestStatus.APPLIED)
    case = await stored_case(services, "CASE-1")
    assert case["version"] == 3
    assert sorted(case["eventIds"]) == ["CASE-1-e001", "CASE-1-e002", "CASE-1-e003"]
    assert [t["id"] for t in case["tasks"]] == ["T-1"]
    assert [e["kind"] for e in case["history"]] == ["CASE_CREATED", "TASK_CREATED", "CALL"]


async def test_two_pipelines_interleaving_many_events_lose_none(services) -> None:
    # Given a case and 40 more events, split between two pipelines
    created, *events = _story(40).events
    first, first_store = _pipeline(services)
    second, second_store = _pipeline(services)
    await first.ingest([created])

    # When both apply their share concurrently, event by event and in small batches
    results = await asyncio.gather(
        _ingest_one_by_one(first, events[0::2]),
        second.ingest(events[1:10:2]), second.ingest(events[11:20:2]), _ingest_one_by_one(second, events[21::2]),
    )

    # Then the version races did happen, every event is applied once, and the version counts them all
    assert first_store.conflicts + second_store.conflicts > 0
    assert {r.status for batch in results for r in batch} == {IngestStatus.APPLIED}
    case = await stored_case(services, "CASE-1")
    assert case["version"] == 41
    assert sorted(case["eventIds"]) == sorted(e.id for e in [created, *events])
    assert len(case["history"]) == 41
    assert [t["id"] for t in case["tasks"]] == [f"T-{n}" for n in range(1, 41, 2)]


async def test_the_same_event_over_two_pipelines_at_once_is_applied_once(services) -> None:
    # Given a case and two pipelines that both read it before either writes
    created, task, _action = _story(2).events
    first, first_store = _pipeline(services)
    second, second_store = _pipeline(services)
    await first.ingest([created])
    first_store.meet_before_first_write(second_store)

    # When both receive the same event (say over HTTP and from Kafka) at the same moment
    results = await asyncio.gather(first.ingest([task]), second.ingest([task]))

    # Then the case holds it once. (Both may answer APPLIED: two writers that did identical work from the same
    # version cannot be told apart by the store, and either write is the same document.)
    statuses = [r.status for [r] in results]
    assert IngestStatus.APPLIED in statuses and set(statuses) <= {IngestStatus.APPLIED, IngestStatus.DUPLICATE}
    case = await stored_case(services, "CASE-1")
    assert (case["version"], case["eventIds"], len(case["tasks"])) == (2, ["CASE-1-e001", "CASE-1-e002"], 1)
