"""CONTRACT §2 order: state takes the newest event by `sequence` (else `time`); late events only add history."""
from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from consumers.apply import public_state
from consumers.cloudevents import CaseEvent, parse_envelope
from consumers.pipeline import IngestStatus
from stores.database import Database
from tests.factories import (
    BASE_TIME, CaseStory, case_created_data, envelope, full_story, incident_data, stored_case, task_data,
)

CASE_VIEW = """
query ($id: ID!) { case(id: $id) {
  id caseType title status stage channel branch sourceSystem createdAt updatedAt closedAt outcome version
  hasOpenIncident
  customer { id name segment }
  product { code name amount currency }
  participants { id role name }
  documents { id name kind status participantId url required }
  tasks { id caseId name formKey candidateGroups assignee participantId dueAt state }
  incidents { id kind message service retryable at state }
  processes { engine definitionKey instanceId bpmnUrl }
  forms { id key name url status }
  consents { id participantId kind text required state }
  offers { id productCode name amount currency rate termMonths validUntil status }
  history(first: 100) { totalCount edges { cursor node { id kind actor { type id name } channel at summary details } } }
} }
"""
SEED = 20261121


async def _deliver_in_batches(services: Any, events: Sequence[CaseEvent], rng: random.Random) -> None:
    """Deliver `events` in their given order, split into batches at random points."""
    cuts = sorted(rng.sample(range(1, len(events)), k=rng.randint(0, min(4, len(events) - 1))))
    for start, end in zip([0, *cuts], [*cuts, len(events)]):
        results = await services.pipeline.ingest(events[start:end])
        assert all(r.status in (IngestStatus.APPLIED, IngestStatus.PARKED) for r in results), results


async def _stored_views(services: Any, gql: Any, case_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return public_state(await stored_case(services, case_id)), await gql(CASE_VIEW, {"id": case_id})


def _permutations(count: int, rng: random.Random) -> list[list[int]]:
    """Random orders, forced to include one where case.created comes last and one fully reversed."""
    orders = [list(range(count))[::-1]]
    for _ in range(12):
        order = list(range(count))
        rng.shuffle(order)
        orders.append(order)
    created_last = list(range(1, count))
    rng.shuffle(created_last)
    orders.append([*created_last, 0])
    return orders


async def _forget_everything(database: Database) -> None:
    """Empty the store, so the next delivery of the same event ids starts from nothing."""
    for name in ("cases", "events", "history", "tasks", "outbox"):
        await database.collection(name).delete_many({})


@pytest.mark.parametrize("sequenced", [True, False], ids=["by-sequence", "by-time"])
async def test_any_delivery_order_ends_in_the_same_case(services, gql, database, sequenced: bool) -> None:
    # Given the stored result of one case's story delivered in order, one event at a time
    rng = random.Random(SEED)
    events = full_story("CASE-1", sequenced=sequenced).events
    for event in events:
        await services.pipeline.ingest([event])
    expected_state, expected_view = await _stored_views(services, gql, "CASE-1")
    assert expected_state["status"] == "CLOSED" and expected_state["version"] == len(events)

    for order in _permutations(len(events), rng):
        await _forget_everything(database)
        # When the same events arrive shuffled, in batches split at random points
        await _deliver_in_batches(services, [events[i] for i in order], rng)

        # Then the stored public state and the GraphQL view equal the in-order ones, field for field
        state, view = await _stored_views(services, gql, "CASE-1")
        assert state == expected_state, f"delivery order {order}"
        assert view == expected_view, f"delivery order {order}"


async def test_the_in_order_case_is_what_the_story_says(services, gql) -> None:
    # Given the whole story delivered in order
    await services.pipeline.ingest(full_story("CASE-1").events)

    # Then the case shows the newest value of every field
    result = await gql(CASE_VIEW, {"id": "CASE-1"})
    case = result["data"]["case"]
    assert {k: case[k] for k in ("title", "status", "stage", "outcome", "closedAt", "version", "hasOpenIncident")} == {
        "title": "Mortgage for a flat in Kraków", "status": "CLOSED", "stage": "DECISION", "outcome": "APPROVED",
        "closedAt": "2026-11-21T14:00:00+00:00", "version": 18, "hasOpenIncident": False,
    }
    assert case["customer"] == {"id": "CUST-1", "name": "Anna Kowalska", "segment": "AFFLUENT"}
    assert [(t["id"], t["state"], t["assignee"]) for t in case["tasks"]] == [
        ("T-1", "COMPLETED", "u-olga"), ("T-2", "CREATED", None)]
    assert [(d["id"], d["status"]) for d in case["documents"]] == [("D-1", "RECEIVED")]
    assert [(i["id"], i["state"], i["message"]) for i in case["incidents"]] == [
        ("I-1", "RESOLVED", "Credit bureau timeout")]
    assert [(o["id"], o["status"], o["amount"]) for o in case["offers"]] == [("O-1", "ACCEPTED", "340000.00")]
    assert [p["id"] for p in case["participants"]] == ["P-1", "P-2"]
    assert case["history"]["totalCount"] == 18


async def _ingest_in(services: Any, story: CaseStory, order: Sequence[int]) -> dict[str, Any]:
    events = story.events
    for index in order:
        await services.pipeline.ingest([events[index]])
    return await stored_case(services, story.case_id)


async def test_a_task_completed_before_it_was_created_stays_completed(services) -> None:
    # Given task created (seq 2), updated (seq 3), completed (seq 4)
    story = (CaseStory("CASE-1").add("case.created", case_created_data())
             .add("case.task_created", task_data("T-1"))
             .add("case.task_updated", {"task": {"id": "T-1", "assignee": "u-olga", "state": "ASSIGNED"}})
             .add("case.task_completed", {"task": {"id": "T-1"}}))

    # When they arrive completed, created, updated
    case = await _ingest_in(services, story, [0, 3, 1, 2])

    # Then the task is completed, keeps the created task's details and the assignee, and history has all three
    assert public_state(case)["tasks"] == [{
        "id": "T-1", "name": "Verify income documents", "formKey": "verify-income",
        "candidateGroups": ["back-office"], "assignee": "u-olga", "participantId": None, "dueAt": None,
        "state": "COMPLETED", "priority": None, "createdAt": BASE_TIME + timedelta(minutes=20)}]
    assert [e["kind"] for e in case["history"]] == ["CASE_CREATED", "TASK_CREATED", "TASK_UPDATED", "TASK_COMPLETED"]


async def test_an_incident_resolved_before_it_was_raised_stays_resolved(services, gql) -> None:
    # Given an incident raised (seq 2) and resolved (seq 3)
    story = (CaseStory("CASE-1").add("case.created", case_created_data())
             .add("case.incident_raised", incident_data("I-1"))
             .add("case.incident_resolved", {"incident": {"id": "I-1"}}))

    # When the resolution arrives first
    await _ingest_in(services, story, [0, 2, 1])

    # Then the incident is resolved and the case has no open incident
    result = await gql('{ case(id: "CASE-1") { hasOpenIncident incidents { id kind message state } } }')
    assert result == {"data": {"case": {"hasOpenIncident": False, "incidents": [
        {"id": "I-1", "kind": "SERVICE_TIMEOUT", "message": "Credit bureau timeout", "state": "RESOLVED"}]}}}


async def test_a_closed_case_stays_closed_when_an_older_status_change_arrives_late(services, gql) -> None:
    # Given a case closed at sequence 9
    created = CaseStory("CASE-1").add("case.created", case_created_data()).envelopes[0]
    late = _sequenced("case.status_changed", {"status": "IN_PROGRESS", "stage": "ANALYSIS"}, 5, minutes=50)
    closed = _sequenced("case.closed", {"outcome": "REJECTED", "at": (BASE_TIME + timedelta(hours=2)).isoformat()},
                        9, minutes=90)
    await services.pipeline.ingest([parse_envelope(created), parse_envelope(closed)])

    # When the status change of sequence 5 arrives late
    [result] = await services.pipeline.ingest([parse_envelope(late)])

    # Then it enters the history (in time order) and sets the stage (no newer event set one), but the case
    # stays CLOSED
    assert result.status is IngestStatus.APPLIED
    view = await gql('{ case(id: "CASE-1") { status stage outcome version '
                     'history { edges { node { kind summary } } } } }')
    assert view == {"data": {"case": {"status": "CLOSED", "stage": "ANALYSIS", "outcome": "REJECTED", "version": 3,
                                      "history": {"edges": [
                                          {"node": {"kind": "CASE_CLOSED", "summary": "Case closed: REJECTED"}},
                                          {"node": {"kind": "STATUS_CHANGED",
                                                    "summary": "Status changed to IN_PROGRESS, stage ANALYSIS"}},
                                          {"node": {"kind": "CASE_CREATED",
                                                    "summary": "Case opened: Mortgage for a flat"}}]}}}}


async def test_sequence_decides_over_time_when_the_producer_sets_it(services) -> None:
    # Given two status changes whose times disagree with their sequence numbers
    created = CaseStory("CASE-1").add("case.created", case_created_data()).envelopes[0]
    newer = _sequenced("case.status_changed", {"status": "DECISION"}, 3, minutes=20)
    older_but_later_clock = _sequenced("case.status_changed", {"status": "ANALYSIS"}, 2, minutes=40)

    # When both are applied
    await services.pipeline.ingest([parse_envelope(e) for e in (created, newer, older_but_later_clock)])

    # Then the higher sequence wins
    case = await stored_case(services, "CASE-1")
    assert (case["status"], case["version"]) == ("DECISION", 3)


async def test_without_sequence_the_newest_time_wins(services) -> None:
    # Given events without sequence numbers
    story = (CaseStory("CASE-1", sequenced=False).add("case.created", case_created_data())
             .add("case.status_changed", {"status": "IN_PROGRESS", "stage": "ANALYSIS"})
             .add("case.updated", {"stage": "DECISION", "title": "Renamed"}))

    # When the newest arrives before the older status change
    case = await _ingest_in(services, story, [0, 2, 1])

    # Then the status comes from the status change, and the stage from the newer update
    assert (case["status"], case["stage"], case["title"]) == ("IN_PROGRESS", "DECISION", "Renamed")
    assert [e["kind"] for e in case["history"]] == ["CASE_CREATED", "STATUS_CHANGED", "CASE_UPDATED"]


def _sequenced(event_type: str, data: dict[str, Any], sequence: int, *, minutes: int) -> dict[str, Any]:
    return envelope(event_type, "CASE-1", data, sequence=sequence, time=BASE_TIME + timedelta(minutes=minutes))


async def test_items_are_listed_in_the_producers_order_whatever_the_arrival(services, gql) -> None:
    # Given tasks T-1 (seq 2), T-2 (seq 3), T-3 (seq 4), and T-1 completed (seq 5)
    story = (CaseStory("CASE-1").add("case.created", case_created_data())
             .add("case.task_created", task_data("T-1")).add("case.task_created", task_data("T-2"))
             .add("case.task_created", task_data("T-3")).add("case.task_completed", {"task": {"id": "T-1"}}))

    # When they arrive T-3, T-1 completed, T-2, T-1 created
    await _ingest_in(services, story, [0, 3, 4, 2, 1])

    # Then the tasks are listed as the producer introduced them
    result = await gql('{ case(id: "CASE-1") { tasks { id state } } }')
    assert result == {"data": {"case": {"tasks": [
        {"id": "T-1", "state": "COMPLETED"}, {"id": "T-2", "state": "CREATED"}, {"id": "T-3", "state": "CREATED"}]}}}


def _claimed_then_unclaimed(case_id: str) -> CaseStory:
    """A task claimed (seq 3) and then unclaimed (seq 4: assignee set to null)."""
    return (CaseStory(case_id).add("case.created", case_created_data()).add("case.task_created", task_data("T-1"))
            .add("case.task_updated", {"task": {"id": "T-1", "assignee": "u-olga", "state": "ASSIGNED"}})
            .add("case.task_updated", {"task": {"id": "T-1", "assignee": None, "state": "CREATED"}}))


async def test_an_unclaimed_task_stays_unclaimed_when_the_older_claim_arrives_late(services, gql) -> None:
    # Given a task claimed and then unclaimed, in two cases
    # When one case gets the events in order, and the other gets the claim last
    await _ingest_in(services, _claimed_then_unclaimed("CASE-1"), [0, 1, 2, 3])
    await _ingest_in(services, _claimed_then_unclaimed("CASE-2"), [0, 1, 3, 2])

    # Then both tasks are unclaimed
    result = await gql('{ a: case(id: "CASE-1") { tasks { id assignee state } } '
                       'b: case(id: "CASE-2") { tasks { id assignee state } } }')
    unclaimed = {"tasks": [{"id": "T-1", "assignee": None, "state": "CREATED"}]}
    assert result == {"data": {"a": unclaimed, "b": unclaimed}}
