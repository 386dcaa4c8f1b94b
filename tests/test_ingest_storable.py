"""No event can corrupt or erase a stored case (issue 11, item 3): whatever the store could not encode is refused
at the door with a reason naming where it is, over HTTP and from Kafka alike, and the case keeps its state."""
from __future__ import annotations

from typing import Any

import pytest

from consumers.cloudevents import InvalidEvent, parse_envelope
from tests.factories import PUBLISH_CASE_EVENT, action_data, bearer, created, envelope, publish_input

PUBLISHER = bearer(username="bpms", roles=("system-publisher",), system=True)
CASE = '{ case(id: "CASE-1") { version title history(first: 5) { totalCount } } }'


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"next": value}
    return value


SHAPES = [
    ({"a\x00b": 1}, "holds a NUL character"),
    ({"$where": "1"}, "starts with $ or holds a dot"),
    ({"a.b": 1}, "starts with $ or holds a dot"),
    ({"": 1}, "an empty key"),
    ({"n": 2**63}, "integer outside the 64-bit range"),
    ({"n": -(2**63) - 1}, "integer outside the 64-bit range"),
    ({"s": "x\ud800y"}, "not valid UTF-8"),
    ({"list": [1, {"k.v": 2}]}, "starts with $ or holds a dot"),
    (deep(40), "nested deeper than 32 levels"),
    ({"s": "x" * 70_000}, "longer than 65536 bytes"),
]


@pytest.mark.parametrize(("details", "reason"), SHAPES)
def test_a_value_the_store_cannot_encode_is_an_invalid_event_naming_where_it_is(
    details: dict[str, Any], reason: str,
) -> None:
    raw = envelope("case.action_recorded", "CASE-1", action_data(details=details))

    with pytest.raises(InvalidEvent) as refused:
        parse_envelope(raw)

    assert reason in refused.value.reason
    assert refused.value.reason.startswith("event.data.action.details")


@pytest.mark.parametrize(("details", "reason"), [s for s in SHAPES if "\ud800" not in repr(s[0])][:6])
async def test_over_http_it_is_bad_input_and_the_case_keeps_its_state(
    gql: Any, services: Any, details: dict[str, Any], reason: str,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    before = await gql(CASE)

    raw = envelope("case.action_recorded", "CASE-1", action_data(details=details))
    answer = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(raw)}, headers=PUBLISHER)

    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert reason in answer["errors"][0]["message"]
    assert await gql(CASE) == before == {"data": {"case": {
        "version": 1, "title": "Mortgage for a flat", "history": {"totalCount": 1}}}}
    # And the case still takes the next good event
    good = envelope("case.action_recorded", "CASE-1", action_data("A-2", details={"ok": True}))
    assert (await gql(PUBLISH_CASE_EVENT, {"event": publish_input(good)}, headers=PUBLISHER))["data"][
        "publishCaseEvent"]["status"] == "APPLIED"
