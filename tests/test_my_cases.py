"""Online and mobile banking: a signed-in customer's cases in the PanelCase shape (issue 9, CONTRACT §5).

Demo: Anna (CUST-1001) is the customer of the mortgage and of a cash loan closed in October (past its 30 days);
Piotr (CUST-1002) is the customer of a credit card and the co-borrower of Anna's mortgage (found by his PESEL's
blind index).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from auth.dev_tokens import PERSONAS_BY_NAME, mint_dev_token
from settings import Settings
from tests.factories import bearer, case_created_data, closed, event
from tests.panel_flow import post

MY_CASES = """{ myCases { totalCount edges { node { caseId status statusText participant { id role name }
  actions { id } consents { id } documents { id } others { roleText } availableUntil } } } }"""


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=True, outbox_relay_seconds=3600.0)


def customer(name: str, **changes: Any) -> dict[str, str]:
    persona = PERSONAS_BY_NAME[name]
    if changes:
        from dataclasses import replace
        persona = replace(persona, **changes)
    return {"Authorization": f"Bearer {mint_dev_token(Settings(), persona)}"}


async def test_a_co_borrower_sees_their_own_case_and_their_part_of_the_joint_one(client: TestClient) -> None:
    answer = await post(client, MY_CASES, headers=customer("customer-piotr"))

    assert answer == {"data": {"myCases": {"totalCount": 2, "edges": [
        {"node": {"caseId": "CASE-2026-000124", "status": "ON_HOLD", "statusText": "Waiting",
                  "participant": {"id": "P-1", "role": "APPLICANT", "name": "Piotr Nowak"}, "actions": [],
                  "consents": [], "documents": [], "others": [], "availableUntil": None}},
        {"node": {"caseId": "CASE-2026-000123", "status": "IN_PROGRESS", "statusText": "In progress",
                  "participant": {"id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak"},
                  "actions": [{"id": "T-123-2"}], "consents": [{"id": "C-1"}], "documents": [{"id": "D-2"}, {"id": "D-3"}],
                  "others": [{"roleText": "the borrower"}], "availableUntil": None}}]}}}


async def test_open_cases_come_first_and_a_closed_one_shows_only_within_its_window(
    client: TestClient, services: Any,
) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    anna = {"id": "CUST-1001", "name": "Anna Kowalska", "pesel": "85031207819", "segment": "RETAIL"}
    await services.pipeline.ingest([
        event("case.created", "CASE-RECENT", case_created_data(caseType="COMPLAINT", customer=anna, participants=[]),
              sequence=1, time=now),
        closed("CASE-RECENT", "COMPLETED", at=now - timedelta(days=2), sequence=2, time=now + timedelta(seconds=1)),
    ])

    answer = await post(client, "{ myCases { totalCount edges { node { caseId statusText availableUntil "
                                "participant { id role } } } } }", headers=customer("customer-anna"))

    until = (now - timedelta(days=2) + timedelta(days=30)).isoformat()
    assert answer == {"data": {"myCases": {"totalCount": 2, "edges": [
        {"node": {"caseId": "CASE-2026-000123", "statusText": "In progress", "availableUntil": None,
                  "participant": {"id": "P-1", "role": "PRIMARY_BORROWER"}}},
        {"node": {"caseId": "CASE-RECENT", "statusText": "Completed", "availableUntil": until,
                  "participant": {"id": "customer:CUST-1001", "role": "CUSTOMER"}}}]}}}


async def test_my_case_answers_for_my_cases_only_and_forbids_one_past_its_window(client: TestClient) -> None:
    piotr = customer("customer-piotr")
    anna = customer("customer-anna")

    joint = await post(client, '{ myCase(id: "CASE-2026-000123") { caseId participant { id } } }', headers=piotr)
    not_mine = await post(client, '{ myCase(id: "CASE-2026-000131") { caseId } }', headers=piotr)
    gone = await post(client, '{ myCase(id: "CASE-2026-000098") { caseId } }', headers=anna)

    assert joint == {"data": {"myCase": {"caseId": "CASE-2026-000123", "participant": {"id": "P-2"}}}}
    assert not_mine == {"data": {"myCase": None}}
    assert gone["data"] == {"myCase": None}
    assert [(e["message"], e["extensions"]["code"]) for e in gone["errors"]] == [(
        "case CASE-2026-000098 was closed on 2026-10-13 and was available in the Customer Panel until 2026-11-12; "
        "please contact the bank", "FORBIDDEN")]


@pytest.mark.parametrize("query", [
    '{ case(id: "CASE-2026-000124") { id } }', "{ cases { totalCount } }", '{ customer(id: "CUST-1002") { id } }',
    "{ tasks { totalCount } }", "{ panelCase { caseId } }",
    '{ _entities(representations: [{__typename: "Case", id: "CASE-2026-000124"}]) { ... on Case { id } } }',
])
async def test_a_customer_token_gets_no_data_from_employee_operations(client: TestClient, query: str) -> None:
    answer = await post(client, query, headers=customer("customer-piotr"))

    assert answer["data"] in (None, {query.split("(")[0].strip("{ ").split(" ")[0]: None})
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["FORBIDDEN"]


async def test_my_cases_needs_a_customer_token_in_online_or_mobile_banking(client: TestClient) -> None:
    in_branch = await post(client, MY_CASES, headers=customer("customer-piotr", channel="BRANCH"))
    no_customer_id = await post(client, MY_CASES, headers=customer("customer-piotr", customer_id=None))
    employee = await post(client, MY_CASES, headers=bearer(roles=("case-reader",)))

    assert [e["message"] for e in in_branch["errors"]] == [
        "a customer's cases are shown in online and mobile banking only (channel ONLINE or MOBILE)"]
    assert [e["message"] for e in no_customer_id["errors"]] == [
        "only a customer's online or mobile banking token lists their cases"]
    assert [e["message"] for e in employee["errors"]] == ["myCases needs one of the roles: customer"]
