"""CONTRACT §2/§3: a malformed event is refused with a reason that names the problem, and dead-lettered."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from consumers.cloudevents import InvalidEvent, parse_envelope
from stores.database import Database
from tests.factories import (
    BASE_TIME, PUBLISH_CASE_EVENT, action_data, case_created_data, envelope, publish_input, task_data,
)


def _without_customer_id() -> dict[str, Any]:
    data = case_created_data()
    del data["customer"]["id"]
    return data


# (what is wrong, event type, data, envelope overrides, what the message must name)
MALFORMED = [
    ("customer without id", "case.created", _without_customer_id(), {}, "data.customer.id"),
    ("unknown event type", "case.teleported", {"status": "X"}, {}, "type: unknown event type 'case.teleported'"),
    ("a field the type does not have", "case.status_changed", {"status": "DONE", "colour": "red"}, {},
     "data.colour"),
    ("an outcome outside the list", "case.closed", {"outcome": "WON", "at": BASE_TIME.isoformat()}, {},
     "data.outcome"),
    ("data that is not an object", "case.status_changed", ["DONE"], {}, "data: required, a JSON object"),
    ("a sequence that is not a number", "case.status_changed", {"status": "DONE"}, {"sequence": "7b"},
     "sequence: must be a non-negative integer"),
    ("a sequence of non-ASCII digits", "case.status_changed", {"status": "DONE"}, {"sequence": "²"},
     "sequence: must be a non-negative integer"),
    ("a sequence too long to store", "case.status_changed", {"status": "DONE"}, {"sequence": "9" * 30},
     "sequence: must be a non-negative integer"),
    ("a time without UTC offset", "case.status_changed", {"status": "DONE"}, {"time": "2026-11-21T10:00:00"},
     "time: must carry a UTC offset"),
    ("neither time nor sequence", "case.status_changed", {"status": "DONE"}, {"time": None},
     "time: required when the event carries no sequence"),
    ("an action time without UTC offset", "case.action_recorded", action_data(at="2026-11-21T10:00:00"), {},
     "data.action.at"),
    ("a task due date without UTC offset", "case.task_created", task_data(dueAt="2026-11-30T16:00:00"), {},
     "data.task.dueAt"),
    ("an empty subject", "case.status_changed", {"status": "DONE"}, {"subject": ""}, "subject: required"),
]


async def _snapshot(database: Database) -> dict[str, list[dict[str, Any]]]:
    return {name: await database.collection(name).find({}).to_list(None) for name in ("cases", "events")}


@pytest.mark.parametrize(("event_type", "data", "overrides", "named"),
                         [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
async def test_a_malformed_event_is_refused_with_its_reason_and_dead_lettered(
    services, gql, database, event_type: str, data: Any, overrides: dict[str, Any], named: str,
) -> None:
    # Given an existing case, and a subscriber to its updates
    created = envelope("case.created", "CASE-1", case_created_data(), event_id="created-1")
    await services.pipeline.ingest([parse_envelope(created)])
    before = await _snapshot(database)
    raw = {**envelope(event_type, "CASE-1", data, event_id="bad-1"), **overrides}

    with services.bus.subscribe("CASE-1") as updates:
        # When a system publishes the malformed event
        result = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(raw)})

        # Then it gets BAD_USER_INPUT naming the problem, and no update is published
        assert result["data"] is None
        [error] = result["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith("event bad-1: ")
        assert named in error["message"]
        assert updates.empty()

    # And the event is a dead letter with that reason, and nothing else changed
    [letter] = await services.dead_letters.latest()
    assert letter["reason"] == error["message"].removeprefix("event bad-1: ")
    assert letter["origin"] == "graphql"
    assert orjson.loads(letter["payload"])["id"] == "bad-1"
    assert await _snapshot(database) == before


@pytest.mark.parametrize(("event_type", "data", "overrides", "named"),
                         [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_the_pipeline_parser_gives_the_same_reason(event_type: str, data: Any, overrides: dict[str, Any],
                                                  named: str) -> None:
    # Given the same malformed event as a structured CloudEvent (how Kafka delivers it)
    raw = {**envelope(event_type, "CASE-1", data, event_id="bad-1"), **overrides}

    # When it is parsed, then it is refused with the reason the DLQ will carry
    with pytest.raises(InvalidEvent) as refused:
        parse_envelope(raw)
    assert named in refused.value.reason
    assert refused.value.event_id == "bad-1"


async def test_a_second_case_created_for_an_existing_case_is_a_conflict(services, gql, database) -> None:
    # Given an existing case
    await services.pipeline.ingest([parse_envelope(envelope("case.created", "CASE-1", case_created_data()))])
    before = await _snapshot(database)

    # When another case.created (a new event id) for the same case is published
    second = envelope("case.created", "CASE-1", case_created_data(title="Another title"), event_id="created-2")
    result = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(second)})

    # Then it is a CONFLICT, and the case keeps its first creation
    assert result["data"] is None
    [error] = result["errors"]
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["message"] == ("event created-2: case CASE-1 already exists; "
                                "case.created cannot be applied twice")
    assert await _snapshot(database) == before
    view = await gql('{ case(id: "CASE-1") { title version } }')
    assert view == {"data": {"case": {"title": "Mortgage for a flat", "version": 1}}}
