"""Case types, channels and branches are canonical at ingest and in filters: no spelling of a restricted case type
escapes the rule that restricts it (issue 11, item 6)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.factories import PUBLISH_CASE_EVENT, bearer, case_created_data, envelope, publish_input

CALL_CENTER = bearer(username="ewa.kowalska", roles=("call-center", "case-reader"), channel="CALL_CENTER")
ADVISOR = bearer(username="anna.nowak", roles=("advisor", "case-reader"), channel="BRANCH")
PUBLISHER = bearer(username="bpms", roles=("system-publisher",), system=True)
CASE = "query ($id: ID!) { case(id: $id) { caseType channel branch } }"
LIST = "query ($types: [String!]) { cases(filter: {caseType: $types}) { totalCount } }"


async def publish(gql: Any, case_id: str, **data: Any) -> dict[str, Any]:
    event = envelope("case.created", case_id, case_created_data(**data))
    return await gql(PUBLISH_CASE_EVENT, {"event": publish_input(event)}, headers=PUBLISHER)


@pytest.mark.parametrize("spelling", ["leasing", "LEASING ", " Leasing", "ＬＥＡＳＩＮＧ", "LEA\u200bSING", "LEASING\u2060"])
async def test_every_spelling_of_a_restricted_case_type_is_that_case_type(gql: Any, spelling: str) -> None:
    answer = await publish(gql, "CASE-L", caseType=spelling, channel=" branch", branch="krk-01")
    assert answer["data"]["publishCaseEvent"]["status"] == "APPLIED"

    # The call center may not see LEASING, whatever the producer wrote
    assert await gql(CASE, {"id": "CASE-L"}, headers=CALL_CENTER) == {"data": {"case": None}}
    assert await gql(CASE, {"id": "CASE-L"}, headers=ADVISOR) == {"data": {"case": {
        "caseType": "LEASING", "channel": "BRANCH", "branch": "KRK-01"}}}
    # And a filter in any spelling finds it, for those who may see it
    assert await gql(LIST, {"types": [spelling]}, headers=ADVISOR) == {"data": {"cases": {"totalCount": 1}}}


@pytest.mark.parametrize("value", ["LEA SING", "", "   ", "LEASING/ALL", "Ω", "A" * 65])
async def test_a_value_that_is_no_code_is_refused_with_the_field_named(gql: Any, value: str) -> None:
    answer = await publish(gql, "CASE-X", caseType=value)

    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "data.caseType" in error["message"]
    assert await gql(CASE, {"id": "CASE-X"}, headers=ADVISOR) == {"data": {"case": None}}


async def test_a_filter_value_that_is_no_code_is_bad_input(gql: Any) -> None:
    answer = await gql(LIST, {"types": ["LEA SING"]}, headers=ADVISOR)

    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert answer["errors"][0]["message"].startswith("caseType: 'LEA SING' is not a code")
