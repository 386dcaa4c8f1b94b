"""CONTRACT §2: an event for a case that does not exist yet is parked, never dropped, and applied on creation."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from consumers.pipeline import EventPipeline, IngestResult, IngestStatus
from stores.database import Database
from stores.events import EventStore
from tests.factories import (
    PUBLISH_CASE_EVENT, CaseStory, case_created_data, incident_data, publish_input, stored_case, task_data,
)

STATUS = IngestStatus
CASE_QUERY = '{ case(id: "CASE-1") { version status tasks { id name state } incidents { id state } ' \
             'history { edges { node { kind } } } } }'


def _story() -> CaseStory:
    return (CaseStory("CASE-1").add("case.created", case_created_data())
            .add("case.task_created", task_data("T-1"))
            .add("case.incident_raised", incident_data("I-1"))
            .add("case.task_completed", {"task": {"id": "T-1"}}))


async def _journal(database: Database) -> dict[str, str]:
    return {doc["_id"]: doc["status"] for doc in await database.collection("events").find({}).to_list(None)}


async def test_an_event_before_its_case_is_parked_and_applied_on_creation(services, gql, database) -> None:
    # Given events of a case that does not exist yet
    created, task, incident, completed = _story().events
    parked = await services.pipeline.ingest([completed, task])
    parked += await services.pipeline.ingest([incident])

    # Then they are parked: the case is not visible yet, nothing is lost
    assert [r.status for r in parked] == [STATUS.PARKED] * 3
    assert await gql(CASE_QUERY) == {"data": {"case": None}}
    assert await services.events.count_parked() == 3

    # When case.created arrives
    [result] = await services.pipeline.ingest([created])

    # Then the case holds every parked event, in order, and nothing stays parked
    assert result.status is STATUS.APPLIED
    assert await gql(CASE_QUERY) == {"data": {"case": {
        "version": 4, "status": "NEW",
        "tasks": [{"id": "T-1", "name": "Verify income documents", "state": "COMPLETED"}],
        "incidents": [{"id": "I-1", "state": "OPEN"}],
        "history": {"edges": [{"node": {"kind": k}} for k in
                              ("TASK_COMPLETED", "INCIDENT_RAISED", "TASK_CREATED", "CASE_CREATED")]}}}}
    assert await services.events.count_parked() == 0
    assert await _journal(database) == {f'["tests/bpms","CASE-1-e00{n}"]': "APPLIED" for n in range(1, 5)}


async def test_a_batch_with_case_created_last_parks_nothing(services) -> None:
    # Given a whole case in one batch with case.created last
    created, task, incident, completed = _story().events

    # When it is ingested
    results = await services.pipeline.ingest([completed, task, incident, created])

    # Then every event is applied at once
    assert [r.status for r in results] == [STATUS.APPLIED] * 4
    assert await services.events.count_parked() == 0
    assert (await stored_case(services, "CASE-1"))["version"] == 4


async def test_over_http_the_event_is_parked_and_the_case_shows_it_later(gql, services) -> None:
    # Given a task event published over HTTP before its case exists
    story = _story()
    parked = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(story.envelopes[1])})
    assert parked == {"data": {"publishCaseEvent": {"eventId": "CASE-1-e002", "status": "PARKED"}}}
    assert await gql(CASE_QUERY) == {"data": {"case": None}}

    # When the case.created is published
    created = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(story.envelopes[0])})

    # Then the case shows the parked task
    assert created == {"data": {"publishCaseEvent": {"eventId": "CASE-1-e001", "status": "APPLIED"}}}
    result = await gql(CASE_QUERY)
    assert result["data"]["case"]["tasks"] == [{"id": "T-1", "name": "Verify income documents", "state": "CREATED"}]
    assert result["data"]["case"]["version"] == 2
    assert await services.events.count_parked() == 0


async def test_a_parked_event_delivered_again_is_a_duplicate_and_applied_once(services) -> None:
    # Given a parked task event
    created, task, _incident, _completed = _story().events
    await services.pipeline.ingest([task])

    # When it is redelivered while parked, and again together with case.created
    [while_parked] = await services.pipeline.ingest([task])
    with_creation = await services.pipeline.ingest([created, task])

    # Then both redeliveries are duplicates and the task was applied once
    assert while_parked.status is STATUS.DUPLICATE
    assert [r.status for r in with_creation] == [STATUS.APPLIED, STATUS.DUPLICATE]
    case = await stored_case(services, "CASE-1")
    assert (case["version"], [e["kind"] for e in case["history"]]) == (2, ["CASE_CREATED", "TASK_CREATED"])
    assert await services.events.count_parked() == 0


async def test_parked_events_wait_for_their_own_case_only(services, gql) -> None:
    # Given a parked event of CASE-2
    other = CaseStory("CASE-2").add("case.created", case_created_data()).add("case.task_created", task_data())
    await services.pipeline.ingest([other.events[1]])

    # When another case is created
    await services.pipeline.ingest(_story().events[:1])

    # Then CASE-2's event stays parked and CASE-1 does not get it
    assert await services.events.count_parked() == 1
    assert (await gql(CASE_QUERY))["data"]["case"]["tasks"] == []



class SlowToCreateEvents:
    """The app's event journal, holding the creating pipeline after it read the parked events until the other
    side has parked its own."""

    def __init__(self, events: EventStore, other_side_done: asyncio.Event) -> None:
        self._events = events
        self._other_side_done = other_side_done

    def __getattr__(self, name: str) -> Any:
        return getattr(self._events, name)

    async def parked_for(self, case_ids: Iterable[str]) -> list[dict[str, Any]]:
        records = await self._events.parked_for(case_ids)
        await self._other_side_done.wait()
        return records


async def test_an_event_parked_while_its_case_is_being_created_elsewhere_is_not_left_behind(services) -> None:
    # Given two pipelines (say two HTTP requests sent in parallel): one creating the case, which has already
    # looked for parked events, and one that parks a task event of that case before the case is written
    created, task, _incident, _completed = _story().events
    parked = asyncio.Event()
    creator = EventPipeline(services.cases, SlowToCreateEvents(services.events, parked),  # type: ignore[arg-type]
                            services.staging)
    other = EventPipeline(services.cases, services.events, services.staging)

    async def park_the_task() -> list[IngestResult]:
        try:
            return await other.ingest([task])
        finally:
            parked.set()

    # When both run at once
    [created_result], [task_result] = await asyncio.gather(creator.ingest([created]), park_the_task())

    # Then the task, parked after the creator looked, still ends up in the case, and nothing stays parked
    assert (created_result.status, task_result.status) == (STATUS.APPLIED, STATUS.PARKED)
    case = await stored_case(services, "CASE-1")
    assert (case["version"], [t["id"] for t in case["tasks"]]) == (2, ["T-1"])
    assert await services.events.count_parked() == 0
