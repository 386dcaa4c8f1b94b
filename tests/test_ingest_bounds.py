"""Issue 11, item 9 (ingest): ids, names and free text are bounded, and a `time` or `sequence` far ahead is refused
instead of pinning a case's state for good. Over HTTP: BAD_USER_INPUT (a time, a length) or CONFLICT (a sequence,
judged against the case), dead-lettered either way; the case is unchanged."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from consumers.cloudevents import InvalidEvent, parse_envelope
from stores.database import Database
from tests.factories import (
    PUBLISH_CASE_EVENT, action_data, case_created_data, envelope, publish_input, stored_case, task_data,
)

CASE = "CASE-B-1"


async def _snapshot(database: Database) -> dict[str, list[dict[str, Any]]]:
    return {name: await database.collection(name).find({}).to_list(None) for name in ("cases", "events", "history")}


def _long(n: int) -> str:
    return "x" * n


def _created_with(**overrides: Any) -> dict[str, Any]:
    return case_created_data(**overrides)


# (what is too long, event type, data, envelope overrides, the reason it gets)
TOO_LONG = [
    ("an event id", "case.status_changed", {"status": "DONE"}, {"id": _long(257)},
     "id: longer than 256 characters (257)"),
    ("a source", "case.status_changed", {"status": "DONE"}, {"source": _long(300)},
     "source: longer than 256 characters (300)"),
    ("a case id", "case.status_changed", {"status": "DONE"}, {"subject": "C" * 129},
     "subject: longer than 128 characters (129)"),
    ("a type", "case.status_changed", {"status": "DONE"}, {"type": "case." + _long(60)},
     "type: longer than 64 characters (65)"),
    ("a status reason", "case.status_changed", {"status": "DONE", "reason": _long(4001)}, {},
     "data.reason: longer than 4000 characters (4001)"),
    ("a status", "case.status_changed", {"status": _long(129)}, {}, "data.status: longer than 128 characters (129)"),
    ("an action summary", "case.action_recorded", action_data(summary=_long(5000)), {},
     "data.action.summary: longer than 4000 characters (5000)"),
    ("an action's details", "case.action_recorded", action_data(details={"note": _long(17000)}), {},
     "data.action.details: larger than 16384 bytes as JSON (17011)"),
    ("a task name", "case.task_created", task_data(name=_long(257)), {},
     "data.task.name: longer than 256 characters (257)"),
    ("a task id", "case.task_created", task_data(_long(129)), {}, "data.task.id: longer than 128 characters (129)"),
    ("a candidate group", "case.task_created", task_data(candidateGroups=["ok", _long(200)]), {},
     "data.task.candidateGroups[1]: longer than 128 characters (200)"),
    ("too many candidate groups", "case.task_created", task_data(candidateGroups=[f"g{n}" for n in range(201)]),
     {}, "data.task.candidateGroups: more than 200 items (201)"),
    ("a participant's id", "case.participant_added",
     {"participant": {"id": "P-1", "role": "CO_BORROWER", "name": "Jan", "participantId": _long(130)}}, {},
     "data.participant.participantId: longer than 128 characters (130)"),
    ("an unlisted extension attribute", "case.status_changed", {"status": "DONE"}, {"traceparent": _long(2000)},
     "traceparent: longer than 1024 characters (2000)"),
]

FAR_AHEAD = [
    ("two days ahead", datetime.now(timezone.utc) + timedelta(days=2), "time: more than 1 day ahead"),
    ("year 9999", "9999-12-31T23:59:59+00:00", "time: more than 1 day ahead"),
    ("past year 9999 in UTC", "9999-12-31T23:59:59-23:59", "time: outside the years 1 to 9999 in UTC"),
    ("before year 1 in UTC", "0001-01-01T00:00:00+23:59", "time: outside the years 1 to 9999 in UTC"),
]


@pytest.mark.parametrize(("event_type", "data", "overrides", "reason"), [t[1:] for t in TOO_LONG],
                         ids=[t[0] for t in TOO_LONG])
async def test_a_value_longer_than_its_bound_is_refused_and_dead_lettered(
    services, gql, database, event_type: str, data: dict[str, Any], overrides: dict[str, Any], reason: str,
) -> None:
    # Given an existing case
    await services.pipeline.ingest([parse_envelope(envelope("case.created", CASE, case_created_data(), sequence=1))])
    before = await _snapshot(database)
    raw = {**envelope(event_type, CASE, data, event_id="long-1", sequence=2), **overrides}

    # When a system publishes it (over HTTP the extension attribute is not an input: parsed as Kafka would)
    if "traceparent" in overrides:
        with pytest.raises(InvalidEvent) as refused:
            parse_envelope(raw)
        assert refused.value.reason == reason
        return
    result = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(raw)})

    # Then BAD_USER_INPUT with the reason, a dead letter with it, and nothing changed
    [error] = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].endswith(reason)
    [letter] = await services.dead_letters.latest()
    assert letter["reason"] == reason
    assert await _snapshot(database) == before


async def test_values_at_their_bounds_are_accepted(services) -> None:
    # Given an event whose id, case id, names and free text are exactly as long as allowed
    raw = envelope("case.created", "C" * 128, case_created_data(title=_long(256)), event_id="i" * 256,
                   source="s" * 256, sequence=1)
    reason = envelope("case.status_changed", "C" * 128, {"status": _long(128), "reason": _long(4000)}, sequence=2)

    # When they are ingested, then they are applied
    results = await services.pipeline.ingest([parse_envelope(raw), parse_envelope(reason)])
    assert [r.status.value for r in results] == ["APPLIED", "APPLIED"]


@pytest.mark.parametrize(("time", "reason"), [t[1:] for t in FAR_AHEAD], ids=[t[0] for t in FAR_AHEAD])
async def test_a_time_far_ahead_is_refused_and_the_case_keeps_its_state(
    services, gql, database, time: Any, reason: str,
) -> None:
    # Given a case ordered by time
    await services.pipeline.ingest([parse_envelope(envelope("case.created", CASE, case_created_data()))])
    before = await _snapshot(database)
    raw = envelope("case.status_changed", CASE, {"status": "PINNED"}, event_id="ahead-1")
    raw["time"] = time.isoformat() if isinstance(time, datetime) else time

    # When an event from the far future is published
    result = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(raw)})

    # Then it is BAD_USER_INPUT with the reason and the case is unchanged
    [error] = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert reason in error["message"]
    assert await _snapshot(database) == before

    # And a later real event still changes the case
    [later] = await services.pipeline.ingest([parse_envelope(
        envelope("case.status_changed", CASE, {"status": "IN_REVIEW"}))])
    assert later.status.value == "APPLIED"
    assert (await stored_case(services, CASE))["status"] == "IN_REVIEW"


async def test_a_time_within_a_day_ahead_is_accepted(services) -> None:
    soon = datetime.now(timezone.utc) + timedelta(hours=23)
    [result] = await services.pipeline.ingest([parse_envelope(
        envelope("case.created", CASE, case_created_data(), time=soon))])
    assert result.status.value == "APPLIED"


@pytest.mark.parametrize("sequence", ["1000003", "999999999999999999"])
async def test_a_sequence_far_ahead_of_the_case_is_refused_and_later_events_still_apply(
    services, gql, database, sequence: str,
) -> None:
    # Given a case at sequence 2
    await services.pipeline.ingest([parse_envelope(e) for e in (
        envelope("case.created", CASE, case_created_data(), sequence=1),
        envelope("case.status_changed", CASE, {"status": "IN_REVIEW"}, sequence=2))])
    before = await _snapshot(database)

    # When an event jumps more than a million ahead
    raw = {**envelope("case.status_changed", CASE, {"status": "PINNED"}, event_id="jump-1"), "sequence": sequence}
    result = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(raw)})

    # Then it is refused (CONFLICT, as any refusal judged against the case), dead-lettered, the case unchanged
    [error] = result["errors"]
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["message"] == (f"event jump-1: sequence: {sequence} is more than 1000000 ahead of the highest "
                                f"order the case has seen (2)")
    [letter] = await services.dead_letters.latest()
    assert letter["reason"].startswith(f"sequence: {sequence} is more than 1000000 ahead")
    assert await _snapshot(database) == before

    # And the producer's next real event applies
    [next_one] = await services.pipeline.ingest([parse_envelope(
        envelope("case.status_changed", CASE, {"status": "APPROVED"}, sequence=3))])
    assert next_one.status.value == "APPLIED"
    assert (await stored_case(services, CASE))["status"] == "APPROVED"


async def test_a_sequence_a_million_ahead_is_still_accepted(services) -> None:
    await services.pipeline.ingest([parse_envelope(envelope("case.created", CASE, case_created_data(), sequence=1))])
    [result] = await services.pipeline.ingest([parse_envelope(
        envelope("case.status_changed", CASE, {"status": "IN_REVIEW"}, sequence=1_000_001))])
    assert result.status.value == "APPLIED"
