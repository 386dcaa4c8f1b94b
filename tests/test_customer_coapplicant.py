"""The customer 360 follows a person into the cases where they are a co-applicant, and gathers their offers.

Piotr (CUST-2) has a credit card case of his own and is the co-borrower on Anna's (CUST-1) mortgage: his 360 shows
both, counted once each, with the mortgage still Anna's case. He is recognised by his PESEL's blind index.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from stores.migrations import index_participant_pesels
from tests.factories import bearer, case_created_data, event

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
PIOTR_PESEL = "90072412344"
PIOTR = {"id": "CUST-2", "name": "Piotr Nowak", "pesel": PIOTR_PESEL, "segment": "RETAIL"}
PIOTR_AS_CO_BORROWER = {"id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak", "phone": "+48602300400",
                        "pesel": PIOTR_PESEL}
CARD = {"caseType": "CREDIT_CARD", "title": "Gold credit card", "channel": "ONLINE", "branch": "WAW-01",
        "customer": PIOTR,
        "product": {"code": "CARD-GOLD", "name": "Gold credit card", "amount": "20000.00", "currency": "PLN"},
        "participants": [{"id": "P-1", "role": "APPLICANT", "name": "Piotr Nowak", "phone": "+48602300400",
                          "pesel": PIOTR_PESEL}]}
EWA = {"id": "CUST-3", "name": "Ewa Lis", "pesel": "44051401458", "segment": "RETAIL"}
WARSAW_ADVISOR = bearer(username="jan.wisniewski", roles=("advisor",), branch="WAW-01", channel="BRANCH")

CUSTOMER = """query ($id: ID!) { customer(id: $id) {
  cases { totalCount edges { node { id customer { id } } } }
  summary { open closed total byProduct { key count } byChannel { key count } }
  timeline(first: 50) { totalCount edges { node { caseId kind } } }
  offers { id caseId name status } } }"""


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def offer(offer_id: str, name: str) -> dict[str, Any]:
    return {"offer": {"id": offer_id, "productCode": "X", "name": name, "status": "PRESENTED"}}


@pytest.fixture
async def piotr_and_anna(services: Any) -> None:
    await services.pipeline.ingest([
        event("case.created", "CASE-P1", case_created_data(**CARD), event_id="p1-1", time=at(0)),
        event("case.offer_presented", "CASE-P1", offer("O-7", "Gold card, 20,000 PLN limit"), event_id="p1-2",
              time=at(1)),
        event("case.created", "CASE-A1", case_created_data(), event_id="a1-1", time=at(2)),
        event("case.participant_added", "CASE-A1", {"participant": PIOTR_AS_CO_BORROWER}, event_id="a1-2",
              time=at(3)),
        event("case.offer_presented", "CASE-A1", offer("O-1", "Fixed 5y, 25 years"), event_id="a1-3", time=at(4)),
        # Someone else's case, with nobody of Piotr's in it.
        event("case.created", "CASE-E1", case_created_data(customer=EWA, participants=[]), event_id="e1-1",
              time=at(5)),
    ])


async def test_a_co_applicant_s_360_shows_the_cases_they_take_part_in(gql: Any, piotr_and_anna: None) -> None:
    answer = await gql(CUSTOMER, {"id": "CUST-2"})

    assert answer == {"data": {"customer": {
        # The mortgage is still Anna's case; it is in Piotr's 360 because he is its co-borrower
        "cases": {"totalCount": 2, "edges": [{"node": {"id": "CASE-A1", "customer": {"id": "CUST-1"}}},
                                             {"node": {"id": "CASE-P1", "customer": {"id": "CUST-2"}}}]},
        "summary": {"open": 2, "closed": 0, "total": 2,
                    "byProduct": [{"key": "CARD-GOLD", "count": 1}, {"key": "MORT", "count": 1}],
                    "byChannel": [{"key": "BRANCH", "count": 1}, {"key": "ONLINE", "count": 1}]},
        "timeline": {"totalCount": 5, "edges": [
            {"node": {"caseId": "CASE-A1", "kind": "OFFER_PRESENTED"}},
            {"node": {"caseId": "CASE-A1", "kind": "PARTICIPANT_ADDED"}},
            {"node": {"caseId": "CASE-A1", "kind": "CASE_CREATED"}},
            {"node": {"caseId": "CASE-P1", "kind": "OFFER_PRESENTED"}},
            {"node": {"caseId": "CASE-P1", "kind": "CASE_CREATED"}}]},
        # Offers across all his cases, the most recently changed case first
        "offers": [{"id": "O-1", "caseId": "CASE-A1", "name": "Fixed 5y, 25 years", "status": "PRESENTED"},
                   {"id": "O-7", "caseId": "CASE-P1", "name": "Gold card, 20,000 PLN limit", "status": "PRESENTED"}],
    }}}


async def test_a_case_where_the_customer_is_also_a_participant_counts_once(gql: Any, piotr_and_anna: None) -> None:
    # Anna is the mortgage's customer and its primary borrower (participant P-1)
    answer = await gql(CUSTOMER, {"id": "CUST-1"})

    customer = answer["data"]["customer"]
    assert customer["cases"]["totalCount"] == 1
    assert customer["summary"]["total"] == 1
    assert customer["offers"] == [
        {"id": "O-1", "caseId": "CASE-A1", "name": "Fixed 5y, 25 years", "status": "PRESENTED"}]


async def test_the_row_scope_still_decides_which_of_those_cases_a_caller_sees(
    gql: Any, piotr_and_anna: None,
) -> None:
    # A Warsaw advisor sees Piotr's card (WAW-01), not Anna's Kraków mortgage
    answer = await gql(CUSTOMER, {"id": "CUST-2"}, headers=WARSAW_ADVISOR)

    customer = answer["data"]["customer"]
    assert customer["cases"] == {"totalCount": 1, "edges": [{"node": {"id": "CASE-P1", "customer": {"id": "CUST-2"}}}]}
    assert customer["summary"]["total"] == 1
    assert customer["timeline"]["totalCount"] == 2
    assert [o["id"] for o in customer["offers"]] == ["O-7"]


async def test_the_participant_s_blind_index_is_never_published(services: Any, piotr_and_anna: None) -> None:
    sent = await services.outbox.sent("updates")
    published = [p for e in sent if e["subject"] == "CASE-A1" for p in e["data"]["participants"]]
    assert published and all(set(p) == {"id", "role", "name"} for p in published)


async def test_cases_sealed_before_participants_had_a_blind_index_are_indexed_at_startup(
    gql: Any, services: Any, database: Any, piotr_and_anna: None,
) -> None:
    cases = database.collection("cases")
    stored = await cases.find_one({"_id": "CASE-A1"})
    for participant in stored["participants"]:
        del participant["peselIndex"]
    await cases.replace_one({"_id": "CASE-A1"}, stored)
    assert (await gql(CUSTOMER, {"id": "CUST-2"}))["data"]["customer"]["cases"]["totalCount"] == 1

    assert await index_participant_pesels(database, services.cipher) == 1

    assert (await gql(CUSTOMER, {"id": "CUST-2"}))["data"]["customer"]["cases"]["totalCount"] == 2
    assert await index_participant_pesels(database, services.cipher) == 0

