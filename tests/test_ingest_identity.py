"""Issue 11, item 8: an event is itself by its CloudEvents identity, (`source`, `id`). The same id from another
producer is another event — applied, parked and retired on its own — and only the same pair twice is a DUPLICATE."""
from __future__ import annotations

from typing import Any

from consumers.cloudevents import parse_envelope
from consumers.pipeline import IngestStatus
from stores.database import Database
from tests.factories import (
    PUBLISH_CASE_EVENT, case_created_data, envelope, publish_input, stored_case, task_data,
)

STATUS = IngestStatus
CASE_QUERY = ('{ case(id: "CASE-ID-1") { version status tasks { id name } '
              'history { edges { node { kind summary } } } } }')


def _status(case_id: str, status: str, *, source: str, event_id: str, sequence: int) -> dict[str, Any]:
    return envelope("case.status_changed", case_id, {"status": status, "stage": "ANALYSIS"}, event_id=event_id,
                    sequence=sequence, source=source)


async def _journal(database: Database) -> list[dict[str, Any]]:
    return await database.collection("events").find(
        {}, {"_id": 1, "source": 1, "eventId": 1, "caseId": 1, "status": 1}).sort("_id").to_list(None)


async def test_the_same_id_from_two_sources_is_two_events_both_applied(gql, database) -> None:
    # Given a case
    created = envelope("case.created", "CASE-ID-1", case_created_data(), event_id="created-1", sequence=1,
                       source="crm")
    assert (await gql(PUBLISH_CASE_EVENT, {"event": publish_input(created)}))["data"]["publishCaseEvent"][
        "status"] == "APPLIED"

    # When two producers each send their own event 42 for it
    from_bpms = _status("CASE-ID-1", "IN_REVIEW", source="bpms", event_id="42", sequence=2)
    from_scoring = _status("CASE-ID-1", "SCORED", source="scoring", event_id="42", sequence=3)
    first = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(from_bpms)})
    second = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(from_scoring)})

    # Then both are applied: two history entries, the newer status wins
    assert first == {"data": {"publishCaseEvent": {"eventId": "42", "status": "APPLIED"}}}
    assert second == {"data": {"publishCaseEvent": {"eventId": "42", "status": "APPLIED"}}}
    case = (await gql(CASE_QUERY))["data"]["case"]
    assert case["version"] == 3
    assert case["status"] == "SCORED"
    assert [e["node"]["summary"] for e in case["history"]["edges"]] == [
        "Status changed to SCORED, stage ANALYSIS", "Status changed to IN_REVIEW, stage ANALYSIS",
        "Case opened: Mortgage for a flat"]

    # And the journal holds one record per (source, id)
    assert await _journal(database) == [
        {"_id": '["bpms","42"]', "source": "bpms", "eventId": "42", "caseId": "CASE-ID-1", "status": "APPLIED"},
        {"_id": '["crm","created-1"]', "source": "crm", "eventId": "created-1", "caseId": "CASE-ID-1",
         "status": "APPLIED"},
        {"_id": '["scoring","42"]', "source": "scoring", "eventId": "42", "caseId": "CASE-ID-1",
         "status": "APPLIED"},
    ]


async def test_the_same_source_and_id_twice_is_a_duplicate_whatever_the_path(services, gql) -> None:
    # Given an applied event (bpms, 42)
    created = envelope("case.created", "CASE-ID-1", case_created_data(), event_id="created-1", sequence=1)
    await services.pipeline.ingest([parse_envelope(created)])
    event = _status("CASE-ID-1", "IN_REVIEW", source="bpms", event_id="42", sequence=2)
    [applied] = await services.pipeline.ingest([parse_envelope(event)])

    # When it is delivered again over HTTP, then through the pipeline twice in one batch
    again = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(event)})
    batch = await services.pipeline.ingest([parse_envelope(event), parse_envelope(event)])

    # Then every redelivery is a DUPLICATE and the case changed once
    assert applied.status is STATUS.APPLIED
    assert again == {"data": {"publishCaseEvent": {"eventId": "42", "status": "DUPLICATE"}}}
    assert [r.status for r in batch] == [STATUS.DUPLICATE, STATUS.DUPLICATE]
    assert (await stored_case(services, "CASE-ID-1"))["version"] == 2


async def test_in_one_batch_the_same_id_from_two_sources_is_applied_twice_and_its_copy_is_a_duplicate(
    services,
) -> None:
    # Given a batch holding case.created, (bpms, 7), (scoring, 7) and (bpms, 7) again
    created = envelope("case.created", "CASE-ID-1", case_created_data(), event_id="7", sequence=1, source="crm")
    bpms = _status("CASE-ID-1", "IN_REVIEW", source="bpms", event_id="7", sequence=2)
    scoring = _status("CASE-ID-1", "SCORED", source="scoring", event_id="7", sequence=3)

    # When it is ingested
    results = await services.pipeline.ingest([parse_envelope(e) for e in (created, bpms, scoring, bpms)])

    # Then three events are applied and the copy is a duplicate
    assert [r.status for r in results] == [STATUS.APPLIED, STATUS.APPLIED, STATUS.APPLIED, STATUS.DUPLICATE]
    case = await stored_case(services, "CASE-ID-1")
    assert (case["version"], case["status"]) == (3, "SCORED")
    assert [e["kind"] for e in case["history"]] == ["CASE_CREATED", "STATUS_CHANGED", "STATUS_CHANGED"]


async def test_an_id_used_in_another_case_by_another_source_does_not_retire_an_event(services) -> None:
    # Given a case whose event (crm, 42) was applied
    await services.pipeline.ingest([parse_envelope(
        envelope("case.created", "CASE-ID-2", case_created_data(), event_id="42", sequence=1, source="crm"))])

    # When another producer's event 42 creates another case
    [result] = await services.pipeline.ingest([parse_envelope(
        envelope("case.created", "CASE-ID-1", case_created_data(), event_id="42", sequence=1, source="bpms"))])

    # Then it is applied, and both cases have their own history row
    assert result.status is STATUS.APPLIED
    assert [e["kind"] for e in (await stored_case(services, "CASE-ID-1"))["history"]] == ["CASE_CREATED"]
    assert [e["kind"] for e in (await stored_case(services, "CASE-ID-2"))["history"]] == ["CASE_CREATED"]


async def test_a_parked_event_of_one_source_is_not_retired_by_another_sources_event_with_its_id(
    services, gql, database,
) -> None:
    # Given an event of source A parked (its case does not exist yet)
    parked = envelope("case.task_created", "CASE-ID-1", task_data("T-A"), event_id="77", sequence=2, source="a")
    assert (await gql(PUBLISH_CASE_EVENT, {"event": publish_input(parked)})) == {
        "data": {"publishCaseEvent": {"eventId": "77", "status": "PARKED"}}}

    # When source B sends its own event 77 for the same case, parked too, then the case is created
    other = envelope("case.task_created", "CASE-ID-1", task_data("T-B"), event_id="77", sequence=3, source="b")
    assert (await gql(PUBLISH_CASE_EVENT, {"event": publish_input(other)})) == {
        "data": {"publishCaseEvent": {"eventId": "77", "status": "PARKED"}}}
    assert await services.events.count_parked() == 2
    created = envelope("case.created", "CASE-ID-1", case_created_data(), event_id="c-1", sequence=1, source="a")
    await gql(PUBLISH_CASE_EVENT, {"event": publish_input(created)})

    # Then both parked events are applied: both tasks are there, nothing stays parked
    case = (await gql(CASE_QUERY))["data"]["case"]
    assert [t["id"] for t in case["tasks"]] == ["T-A", "T-B"]
    assert case["version"] == 3
    assert await services.events.count_parked() == 0


async def test_an_applied_event_of_another_source_does_not_retire_a_parked_one(services, gql) -> None:
    # Given an existing case CASE-ID-2 and an event (a, 88) parked for CASE-ID-1
    await services.pipeline.ingest([parse_envelope(
        envelope("case.created", "CASE-ID-2", case_created_data(), event_id="c-2", sequence=1, source="b"))])
    parked = envelope("case.task_created", "CASE-ID-1", task_data("T-A"), event_id="88", sequence=2, source="a")
    await services.pipeline.ingest([parse_envelope(parked)])

    # When source B's event 88 is applied to CASE-ID-2
    [other] = await services.pipeline.ingest([parse_envelope(
        envelope("case.task_created", "CASE-ID-2", task_data("T-B"), event_id="88", sequence=2, source="b"))])

    # Then it is applied, and A's event is still parked and is applied when its case is created
    assert other.status is STATUS.APPLIED
    assert await services.events.count_parked() == 1
    await services.pipeline.ingest([parse_envelope(
        envelope("case.created", "CASE-ID-1", case_created_data(), event_id="c-1", sequence=1, source="a"))])
    assert [t["id"] for t in (await gql(CASE_QUERY))["data"]["case"]["tasks"]] == ["T-A"]
    assert await services.events.count_parked() == 0


async def test_journal_records_from_before_sources_still_answer_for_their_case_only(services, database) -> None:
    # Given a case whose events were journaled by an older version: bare ids, no source
    created = envelope("case.created", "CASE-ID-1", case_created_data(), event_id="old-1", sequence=1, source="crm")
    await services.pipeline.ingest([parse_envelope(created)])
    journal = database.collection("events")
    record = await journal.find_one({"eventId": "old-1"})
    await journal.delete_one({"_id": record["_id"]})
    del record["source"], record["eventId"]
    await journal.insert_one({**record, "_id": "old-1"})

    # When the same event is delivered again, and another case's event reuses the id
    [again] = await services.pipeline.ingest([parse_envelope(created)])
    [elsewhere] = await services.pipeline.ingest([parse_envelope(
        envelope("case.created", "CASE-ID-2", case_created_data(), event_id="old-1", sequence=1, source="crm"))])

    # Then the old record still makes the redelivery a duplicate, and does not retire the other case's event
    assert again.status is STATUS.DUPLICATE
    assert elsewhere.status is STATUS.APPLIED


async def test_events_parked_before_sources_are_re_keyed_at_startup_and_applied(services, database) -> None:
    # Given an event parked by an older version under its bare id
    parked = envelope("case.task_created", "CASE-ID-1", task_data("T-A"), event_id="p-1", sequence=2, source="a")
    await services.pipeline.ingest([parse_envelope(parked)])
    journal = database.collection("events")
    record = await journal.find_one({"eventId": "p-1"})
    await journal.delete_one({"_id": record["_id"]})
    del record["source"], record["eventId"]
    await journal.insert_one({**record, "_id": "p-1"})

    # When the startup migration runs (twice, as two instances starting would), then the case is created
    assert await services.events.rekey_parked() == 1
    assert await services.events.rekey_parked() == 0
    await services.pipeline.ingest([parse_envelope(
        envelope("case.created", "CASE-ID-1", case_created_data(), event_id="c-1", sequence=1, source="a"))])

    # Then the parked event was applied and retired
    assert [t["id"] for t in (await stored_case(services, "CASE-ID-1"))["tasks"]] == ["T-A"]
    assert await services.events.count_parked() == 0
    assert [r["_id"] for r in await journal.find({"caseId": "CASE-ID-1"}).sort("_id").to_list(None)] == [
        '["a","c-1"]', '["a","p-1"]']
