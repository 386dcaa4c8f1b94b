"""CONTRACT §2: an event id is applied at most once, whichever way it comes back."""
from __future__ import annotations

from typing import Any

from consumers.pipeline import IngestStatus
from stores.database import Database
from tests.factories import (
    PUBLISH_CASE_EVENT, CaseStory, case_created_data, full_story, publish_input, stored_case, task_data,
)

STATUS = IngestStatus


async def _journal(database: Database) -> list[dict[str, Any]]:
    return await database.collection("events").find({}, {"_id": 1, "status": 1}).sort("_id").to_list(None)


def _story() -> CaseStory:
    return (CaseStory("CASE-1").add("case.created", case_created_data())
            .add("case.task_created", task_data("T-1")))


async def test_a_redelivered_event_is_a_duplicate_and_changes_nothing(services, database) -> None:
    # Given a case whose task event was applied
    created, task = _story().events
    await services.pipeline.ingest([created, task])
    before = await services.cases.get_for_update(["CASE-1"])

    # When the task event is delivered again
    [result] = await services.pipeline.ingest([task])

    # Then it is a duplicate, and the stored case (history, version, event ids) is exactly as before
    assert result.status is STATUS.DUPLICATE
    assert await services.cases.get_for_update(["CASE-1"]) == before
    assert before["CASE-1"]["version"] == 2
    assert [e["kind"] for e in (await stored_case(services, "CASE-1"))["history"]] == ["CASE_CREATED", "TASK_CREATED"]
    # (the journal keys an event by its CloudEvents identity, source and id)
    assert await _journal(database) == [{"_id": '["tests/bpms","CASE-1-e001"]', "status": "APPLIED"},
                                        {"_id": '["tests/bpms","CASE-1-e002"]', "status": "APPLIED"}]


async def test_the_same_event_twice_in_one_batch_is_applied_once(services) -> None:
    # Given a case
    created, task = _story().events
    await services.pipeline.ingest([created])

    # When one batch carries the same event twice
    results = await services.pipeline.ingest([task, task])

    # Then the first copy is applied and the second is a duplicate
    assert [r.status for r in results] == [STATUS.APPLIED, STATUS.DUPLICATE]
    case = await stored_case(services, "CASE-1")
    assert (case["version"], len(case["history"]), len(case["tasks"])) == (2, 2, 1)


async def test_replaying_a_whole_case_changes_nothing(services) -> None:
    # Given a case built from its whole story
    events = full_story("CASE-1").events
    await services.pipeline.ingest(events)
    before = await services.cases.get_for_update(["CASE-1"])

    # When the whole story is replayed, once as one batch and once event by event
    replayed = await services.pipeline.ingest(events)
    one_by_one = [(await services.pipeline.ingest([event]))[0] for event in events]

    # Then every event is a duplicate and the stored case is exactly as before
    assert {r.status for r in replayed + one_by_one} == {STATUS.DUPLICATE}
    assert await services.cases.get_for_update(["CASE-1"]) == before


async def test_an_event_published_over_http_is_a_duplicate_on_kafka(services, gql) -> None:
    # Given a case, and a task event published over HTTP
    story = _story()
    await services.pipeline.ingest([story.events[0]])
    first = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(story.envelopes[1])})
    assert first == {"data": {"publishCaseEvent": {"eventId": "CASE-1-e002", "status": "APPLIED"}}}

    # When the same event arrives through the pipeline
    [result] = await services.pipeline.ingest([story.events[1]])

    # Then it is a duplicate and the case holds it once
    assert result.status is STATUS.DUPLICATE
    view = await gql('{ case(id: "CASE-1") { version tasks { id } history { totalCount } } }')
    assert view == {"data": {"case": {"version": 2, "tasks": [{"id": "T-1"}], "history": {"totalCount": 2}}}}


async def test_an_event_from_kafka_is_a_duplicate_over_http(services, gql) -> None:
    # Given a case whose task event came through the pipeline
    story = _story()
    await services.pipeline.ingest(story.events)

    # When a system publishes the same event over HTTP, twice
    results = [await gql(PUBLISH_CASE_EVENT, {"event": publish_input(story.envelopes[1])}) for _ in range(2)]

    # Then both answers are DUPLICATE and nothing changed
    assert results == [{"data": {"publishCaseEvent": {"eventId": "CASE-1-e002", "status": "DUPLICATE"}}}] * 2
    view = await gql('{ case(id: "CASE-1") { version tasks { id } history { totalCount } } }')
    assert view == {"data": {"case": {"version": 2, "tasks": [{"id": "T-1"}], "history": {"totalCount": 2}}}}


async def test_the_case_created_event_itself_is_a_duplicate_not_a_conflict(services, gql) -> None:
    # Given a case created over HTTP
    story = _story()
    await gql(PUBLISH_CASE_EVENT, {"event": publish_input(story.envelopes[0])})

    # When the same case.created (same event id) comes again, over HTTP and through the pipeline
    again = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(story.envelopes[0])})
    [result] = await services.pipeline.ingest([story.events[0]])

    # Then both are duplicates, not conflicts
    assert again == {"data": {"publishCaseEvent": {"eventId": "CASE-1-e001", "status": "DUPLICATE"}}}
    assert result.status is STATUS.DUPLICATE
    assert (await stored_case(services, "CASE-1"))["version"] == 1


async def test_a_redelivery_after_a_crash_between_case_write_and_journal_completes_the_journal(
    services, database, monkeypatch,
) -> None:
    """The case has the event but the journal does not: the redelivery is a duplicate and is journaled."""
    from tests.factories import created as created_event

    first = created_event("CASE-J")
    real_record = services.events.record_applied

    async def crash(records):
        raise ConnectionError("process died after the case write")

    monkeypatch.setattr(services.events, "record_applied", crash)
    try:
        await services.pipeline.ingest([first])
    except ConnectionError:
        pass
    monkeypatch.setattr(services.events, "record_applied", real_record)

    [result] = await services.pipeline.ingest([first])

    assert result.status.value == "DUPLICATE"
    journal = await database.collection("events").find({"eventId": first.id}, {"status": 1, "caseId": 1}).to_list(None)
    assert journal == [{"_id": f'["tests","{first.id}"]', "status": "APPLIED", "caseId": "CASE-J"}]
