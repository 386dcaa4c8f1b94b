"""The customer 360 over HTTP: `customer(id)` with its own cases, a summary and a timeline across cases."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.factories import action_recorded, closed, created, status_changed, updated

OPERATION = (Path(__file__).parents[1] / "graphql" / "operations" / "customer_360.graphql").read_text()
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
PIOTR = {"id": "CUST-2", "name": "Piotr Nowak", "segment": "RETAIL"}
CASH_LOAN = {"caseType": "CASH_LOAN", "title": "Cash loan", "channel": "MOBILE",
             "product": {"code": "LOAN-CASH", "name": "Cash loan", "amount": "15000.00", "currency": "PLN"}}


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def iso(n: float) -> str:
    return hours(n).isoformat()


@pytest.fixture
async def anna_and_piotr(services: Any) -> None:
    """Anna (CUST-1) has a closed cash loan and two open mortgages; Piotr (CUST-2) has one case."""
    await services.pipeline.ingest([
        created("CASE-A2", time=hours(0), event_id="a2-created", data=CASH_LOAN),
        status_changed("CASE-A2", "DECISION", "DECISION", time=hours(1), event_id="a2-status"),
        closed("CASE-A2", "APPROVED", at=hours(2), time=hours(2), event_id="a2-closed"),
        created("CASE-A1", time=hours(3), event_id="a1-created"),
        status_changed("CASE-A1", "IN_PROGRESS", "ANALYSIS", time=hours(4), event_id="a1-status"),
        action_recorded("CASE-A1", "a1-call", at=hours(5), summary="Asked about the rate", time=hours(5)),
        created("CASE-P1", time=hours(4.5), event_id="p1-created", data={"customer": PIOTR, "participants": []}),
        action_recorded("CASE-P1", "p1-call", at=hours(7), summary="Piotr called", time=hours(7)),
        # Same moment as a1-call: the timeline breaks the tie by entry id, newest order first.
        created("CASE-A3", time=hours(5), event_id="a3-created", data={"title": "Second mortgage"}),
        updated("CASE-A3", {"customer": {"segment": "AFFLUENT"}}, time=hours(6), event_id="a3-updated"),
    ])


TIMELINE = """
query($id: ID!, $first: Int, $after: String) {
  customer(id: $id) { timeline(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { caseId id kind at } } } }
}"""
CASES = """
query($id: ID!, $filter: CaseFilter, $orderBy: CaseOrderInput) {
  customer(id: $id) { cases(filter: $filter, orderBy: $orderBy) { totalCount edges { node { id customer { id } } } } }
}"""


def error_code(result: dict[str, Any]) -> str:
    [error] = result["errors"]
    return error["extensions"]["code"]


async def test_customer_360_operation_shows_profile_summary_cases_and_timeline(
    anna_and_piotr: None, gql: Any,
) -> None:
    result = await gql(OPERATION, {"id": "CUST-1", "casesFilter": {"open": True}, "timelineFirst": 3})

    customer = result["data"]["customer"]
    end_cursor = customer["timeline"]["pageInfo"]["endCursor"]
    assert isinstance(end_cursor, str)
    assert customer == {
        "id": "CUST-1", "name": "Anna Kowalska",
        # The newest description of the customer wins: CASE-A3's update changed the segment.
        "segment": "AFFLUENT",
        "summary": {
            "open": 2, "closed": 1, "total": 3,
            "byStatus": [{"key": "CLOSED", "count": 1}, {"key": "IN_PROGRESS", "count": 1},
                         {"key": "NEW", "count": 1}],
            "byChannel": [{"key": "BRANCH", "count": 2}, {"key": "MOBILE", "count": 1}],
            "byProduct": [{"key": "MORT", "count": 2}, {"key": "LOAN-CASH", "count": 1}],
            "lastContactAt": iso(6),
        },
        "cases": {"totalCount": 2, "edges": [
            {"node": {"id": "CASE-A3", "caseType": "MORTGAGE", "title": "Second mortgage", "status": "NEW",
                      "updatedAt": iso(6)}},
            {"node": {"id": "CASE-A1", "caseType": "MORTGAGE", "title": "Mortgage for a flat",
                      "status": "IN_PROGRESS", "updatedAt": iso(5)}},
        ]},
        "timeline": {
            "pageInfo": {"hasNextPage": True, "endCursor": end_cursor},
            "edges": [
                {"node": {"caseId": "CASE-A3", "id": "a3-updated", "kind": "CASE_UPDATED", "at": iso(6),
                          "summary": "Updated: customer", "actor": {"type": "SYSTEM", "id": "tests", "name": None},
                          "channel": None}},
                {"node": {"caseId": "CASE-A3", "id": "a3-created", "kind": "CASE_CREATED", "at": iso(5),
                          "summary": "Case opened: Second mortgage",
                          "actor": {"type": "SYSTEM", "id": "tests", "name": None}, "channel": None}},
                {"node": {"caseId": "CASE-A1", "id": "a1-call", "kind": "CALL", "at": iso(5),
                          "summary": "Asked about the rate",
                          "actor": {"type": "USER", "id": "u-marek", "name": "Marek Lis"},
                          "channel": "CALL_CENTER"}},
            ],
        },
    }
    assert "errors" not in result


async def test_an_unknown_customer_is_null(anna_and_piotr: None, gql: Any) -> None:
    result = await gql('{ customer(id: "CUST-404") { id } }')

    assert result == {"data": {"customer": None}}


async def test_customer_cases_are_only_the_customers_own(anna_and_piotr: None, gql: Any) -> None:
    anna = await gql(CASES, {"id": "CUST-1", "orderBy": {"field": "ID", "direction": "ASC"}})
    piotr = await gql(CASES, {"id": "CUST-2"})

    assert anna["data"]["customer"]["cases"] == {"totalCount": 3, "edges": [
        {"node": {"id": "CASE-A1", "customer": {"id": "CUST-1"}}},
        {"node": {"id": "CASE-A2", "customer": {"id": "CUST-1"}}},
        {"node": {"id": "CASE-A3", "customer": {"id": "CUST-1"}}},
    ]}
    assert piotr["data"]["customer"]["cases"] == {"totalCount": 1, "edges": [
        {"node": {"id": "CASE-P1", "customer": {"id": "CUST-2"}}}]}


@pytest.mark.parametrize(("case_filter", "expected"), [
    pytest.param({"open": False}, ["CASE-A2"], id="closed"),
    pytest.param({"caseType": ["MORTGAGE"], "status": ["NEW"]}, ["CASE-A3"], id="type-and-status"),
    pytest.param({"or": [{"status": ["CLOSED"]}, {"text": "second"}]}, ["CASE-A2", "CASE-A3"], id="or"),
    # A filter cannot widen the view to someone else's cases.
    pytest.param({"customerId": "CUST-2"}, [], id="other-customer"),
    pytest.param({"or": [{"customerId": "CUST-2"}, {"open": False}]}, ["CASE-A2"], id="or-other-customer"),
])
async def test_customer_cases_filter_narrows_within_the_customer(
    anna_and_piotr: None, gql: Any, case_filter: dict[str, Any], expected: list[str],
) -> None:
    result = await gql(CASES, {"id": "CUST-1", "filter": case_filter, "orderBy": {"field": "ID", "direction": "ASC"}})

    cases = result["data"]["customer"]["cases"]
    assert [edge["node"]["id"] for edge in cases["edges"]] == expected
    assert cases["totalCount"] == len(expected)


async def test_summary_of_a_customer_with_one_case(anna_and_piotr: None, gql: Any) -> None:
    result = await gql('{ customer(id: "CUST-2") { summary { open closed total byStatus { key count } '
                       'byChannel { key count } byProduct { key count } lastContactAt } } }')

    assert result == {"data": {"customer": {"summary": {
        "open": 1, "closed": 0, "total": 1, "byStatus": [{"key": "NEW", "count": 1}],
        "byChannel": [{"key": "BRANCH", "count": 1}], "byProduct": [{"key": "MORT", "count": 1}],
        "lastContactAt": iso(7),
    }}}}


async def test_timeline_pages_through_every_action_of_every_case_newest_first(
    anna_and_piotr: None, gql: Any,
) -> None:
    pages: list[list[tuple[str, str, str]]] = []
    after = None
    while True:
        timeline = (await gql(TIMELINE, {"id": "CUST-1", "first": 3, "after": after}))["data"]["customer"]["timeline"]
        pages.append([(e["node"]["caseId"], e["node"]["id"], e["node"]["at"]) for e in timeline["edges"]])
        assert timeline["pageInfo"]["endCursor"] == timeline["edges"][-1]["cursor"]
        assert timeline["totalCount"] == 8  # every page counts the whole timeline
        if not timeline["pageInfo"]["hasNextPage"]:
            break
        after = timeline["pageInfo"]["endCursor"]
        assert len(pages) < 10, "paging does not end"

    assert pages == [
        [("CASE-A3", "a3-updated", iso(6)), ("CASE-A3", "a3-created", iso(5)), ("CASE-A1", "a1-call", iso(5))],
        [("CASE-A1", "a1-status", iso(4)), ("CASE-A1", "a1-created", iso(3)), ("CASE-A2", "a2-closed", iso(2))],
        [("CASE-A2", "a2-status", iso(1)), ("CASE-A2", "a2-created", iso(0))],
    ]


async def test_timeline_in_one_page_has_no_next_page(anna_and_piotr: None, gql: Any) -> None:
    timeline = (await gql(TIMELINE, {"id": "CUST-2", "first": 5}))["data"]["customer"]["timeline"]

    assert [(e["node"]["caseId"], e["node"]["id"]) for e in timeline["edges"]] == [
        ("CASE-P1", "p1-call"), ("CASE-P1", "p1-created")]
    assert timeline["pageInfo"]["hasNextPage"] is False


async def test_timeline_refuses_a_forged_cursor_and_too_large_a_page(
    anna_and_piotr: None, gql: Any, settings: Any,
) -> None:
    forged = await gql(TIMELINE, {"id": "CUST-1", "after": "forged"})
    too_many = await gql(TIMELINE, {"id": "CUST-1", "first": settings.max_page_size + 1})

    assert error_code(forged) == "BAD_USER_INPUT"
    assert error_code(too_many) == "BAD_USER_INPUT"


async def test_a_case_moved_to_another_customer_follows_them(services: Any, gql: Any) -> None:
    await services.pipeline.ingest([
        created("CASE-1", time=hours(0)),
        updated("CASE-1", {"customer": {"id": "CUST-9", "name": "Jan Nowak"}}, time=hours(1)),
    ])

    new_owner = await gql('{ customer(id: "CUST-9") { id name cases { totalCount } } }')
    old_owner = await gql('{ customer(id: "CUST-1") { id } }')

    assert new_owner == {"data": {"customer": {"id": "CUST-9", "name": "Jan Nowak", "cases": {"totalCount": 1}}}}
    assert old_owner == {"data": {"customer": None}}


async def test_a_case_moved_to_another_customer_keeps_nothing_of_the_previous_one(services, gql) -> None:
    from tests.factories import bearer, created, event

    await services.pipeline.ingest([created("CASE-1")])
    await services.pipeline.ingest([event("case.updated", "CASE-1", {"customer": {"id": "CUST-2", "name": "Jan Nowak"}})])
    back_office = bearer(roles=("back-office", "case-reader"), channel="BACK_OFFICE")

    moved = await gql('{ customer(id: "CUST-2") { id name segment pesel } '
                      'customerByPesel(pesel: "85031207819") { id } }', headers=back_office)

    assert moved == {"data": {"customer": {"id": "CUST-2", "name": "Jan Nowak", "segment": None, "pesel": None},
                              "customerByPesel": None}}
