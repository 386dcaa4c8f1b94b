"""Reading cases over HTTP: `case(id)`, `cases(filter, orderBy, first, after)` and a case's `history`."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from demo.events import load_demo_cases
from tests.factories import (
    action_recorded, closed, created, incident_raised, incident_resolved, status_changed,
)

OPERATIONS = Path(__file__).parents[1] / "graphql" / "operations"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def iso(moment: datetime) -> str:
    return moment.isoformat()


CUSTOMERS = {
    "CUST-1": {"id": "CUST-1", "name": "Anna Kowalska", "segment": "RETAIL"},
    "CUST-2": {"id": "CUST-2", "name": "Piotr Nowak", "segment": "AFFLUENT"},
    "CUST-3": {"id": "CUST-3", "name": "Zofia Wiśniewska", "segment": "RETAIL"},
}


def _created(case_id: str, customer: str, case_type: str, title: str, channel: str, status: str, stage: str,
             at: datetime) -> Any:
    return created(case_id, time=at, data={
        "caseType": case_type, "title": title, "channel": channel, "customer": CUSTOMERS[customer],
        "status": status, "stage": stage})


# Six cases with ties on purpose (status NEW x3, caseType MORTGAGE x3, createdAt and updatedAt pairs), so
# that ordering and paging must break ties by id.
#   id       customer type         status       stage        channel      created updated open incident
#   CASE-01  CUST-1   MORTGAGE     NEW          APPLICATION  BRANCH       0       0       yes  -
#   CASE-02  CUST-1   CASH_LOAN    IN_PROGRESS  ANALYSIS     MOBILE       1       6       yes  open
#   CASE-03  CUST-2   MORTGAGE     CLOSED       APPLICATION  ONLINE       2       3       no   -
#   CASE-04  CUST-3   COMPLAINT    NEW          REGISTERED   CALL_CENTER  3       6       yes  -
#   CASE-05  CUST-2   CREDIT_CARD  ON_HOLD      SCORING      ONLINE       4       7       yes  resolved
#   CASE-06  CUST-3   MORTGAGE     NEW          APPLICATION  BRANCH       3       3       yes  -
def six_cases() -> list[Any]:
    return [
        _created("CASE-01", "CUST-1", "MORTGAGE", "Mortgage for a flat in Kraków", "BRANCH", "NEW", "APPLICATION",
                 hours(0)),
        _created("CASE-02", "CUST-1", "CASH_LOAN", "Cash loan 15,000 PLN (consolidation)", "MOBILE", "NEW",
                 "APPLICATION", hours(1)),
        status_changed("CASE-02", "IN_PROGRESS", "ANALYSIS", time=hours(5)),
        incident_raised("CASE-02", "I-1", at=hours(6), time=hours(6)),
        _created("CASE-03", "CUST-2", "MORTGAGE", "Mortgage refinancing", "ONLINE", "NEW", "APPLICATION", hours(2)),
        closed("CASE-03", "APPROVED", at=hours(3), time=hours(3)),
        _created("CASE-04", "CUST-3", "COMPLAINT", "Complaint: double card charge", "CALL_CENTER", "NEW",
                 "REGISTERED", hours(3)),
        action_recorded("CASE-04", "A-4", at=hours(6), time=hours(6)),
        _created("CASE-05", "CUST-2", "CREDIT_CARD", "Gold credit card", "ONLINE", "ON_HOLD", "SCORING", hours(4)),
        incident_raised("CASE-05", "I-2", at=hours(5), time=hours(5)),
        incident_resolved("CASE-05", "I-2", time=hours(7)),
        _created("CASE-06", "CUST-3", "MORTGAGE", "Second mortgage", "BRANCH", "NEW", "APPLICATION", hours(3)),
    ]


@pytest.fixture
async def cases(services: Any) -> None:
    await services.pipeline.ingest(six_cases())


LIST = (OPERATIONS / "case_list.graphql").read_text()
IDS_QUERY = """
query($filter: CaseFilter, $orderBy: CaseOrderInput, $first: Int, $after: String) {
  cases(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } }
  }
}"""


def ids(result: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in result["data"]["cases"]["edges"]]


def error_code(result: dict[str, Any]) -> str:
    [error] = result["errors"]
    return error["extensions"]["code"]


# ---- case(id) ---------------------------------------------------------------------------------------


async def test_case_detail_operation_returns_the_whole_case(services: Any, gql: Any) -> None:
    # given the demo mortgage, loaded through the pipeline
    await load_demo_cases(services.pipeline)

    # when an analyst runs the example case-detail operation
    result = await gql((OPERATIONS / "case_detail.graphql").read_text(),
                       {"id": "CASE-2026-000123", "historyFirst": 3})

    # then every field is what the events said
    assert result == {"data": {"case": {
        "id": "CASE-2026-000123", "caseType": "MORTGAGE", "title": "Mortgage 350,000 PLN – flat in Kraków",
        "status": "IN_PROGRESS", "stage": "ANALYSIS", "channel": "BRANCH", "branch": "KRK-01",
        "sourceSystem": "branch-frontend", "createdAt": "2026-11-02T09:30:00+00:00",
        "updatedAt": "2026-11-02T17:00:00+00:00", "closedAt": None, "outcome": None, "version": 16,
        "hasOpenIncident": False,
        "customer": {"id": "CUST-1001", "name": "Anna Kowalska", "segment": "RETAIL"},
        "product": {"code": "MORT-FIX5", "name": "Mortgage, 5-year fixed rate", "amount": "350000.00",
                    "currency": "PLN"},
        "participants": [{"id": "P-1", "role": "PRIMARY_BORROWER", "name": "Anna Kowalska"},
                         {"id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak"}],
        "documents": [
            {"id": "D-1", "name": "Income statement – Anna", "kind": "INCOME_STATEMENT", "status": "RECEIVED",
             "participantId": "P-1", "url": None, "required": True},
            {"id": "D-2", "name": "Income statement – Piotr", "kind": "INCOME_STATEMENT", "status": "MISSING",
             "participantId": "P-2", "url": None, "required": True},
            {"id": "D-3", "name": "Property valuation", "kind": "VALUATION", "status": "ORDERED",
             "participantId": None, "url": None, "required": True}],
        "tasks": [
            {"id": "T-123-1", "name": "Verify income documents", "formKey": "verify-income",
             "candidateGroups": ["back-office"], "assignee": None, "participantId": None,
             "dueAt": "2026-11-06T16:00:00+00:00", "state": "CREATED"},
            {"id": "T-123-2", "name": "Upload income statement", "formKey": None, "candidateGroups": [],
             "assignee": None, "participantId": "P-2", "dueAt": None, "state": "CREATED"},
            {"id": "T-123-3", "name": "Prepare the credit decision", "formKey": "credit-decision",
             "candidateGroups": ["mortgage-advisors"], "assignee": None, "participantId": None,
             "dueAt": "2026-12-10T15:00:00+00:00", "state": "CREATED"},
            {"id": "T-123-4", "name": "Call the co-borrower about the missing income statement", "formKey": None,
             "candidateGroups": ["mortgage-advisors"], "assignee": "anna.nowak", "participantId": None,
             "dueAt": "2026-12-03T10:00:00+00:00", "state": "ASSIGNED"},
            {"id": "T-123-5", "name": "Confirm your employment details", "formKey": None, "candidateGroups": [],
             "assignee": None, "participantId": "P-1", "dueAt": None, "state": "CREATED"}],
        "incidents": [],
        "processes": [{"engine": "camunda8", "definitionKey": "mortgage-origination",
                       "instanceId": "2251799813685249",
                       "bpmnUrl": "https://bpms.bank.local/processes/2251799813685249"}],
        "forms": [{"id": "F-1", "key": "mortgage-application", "name": "Mortgage application", "url": None,
                   "status": "SUBMITTED"}],
        "consents": [{"id": "C-1", "participantId": "P-2", "kind": "CREDIT_BUREAU",
                      "text": "I consent to the bank checking my credit history in BIK.", "required": True,
                      "state": "REQUESTED"},
                     {"id": "C-2", "participantId": "P-1", "kind": "CREDIT_BUREAU",
                      "text": "I consent to the bank checking my credit history in BIK.", "required": True,
                      "state": "REQUESTED"}],
        "offers": [{"id": "O-1", "productCode": "MORT-FIX5", "name": "Fixed 5y, 25 years", "amount": "350000.00",
                    "currency": "PLN", "rate": "6.85", "termMonths": 300,
                    "validUntil": "2026-12-15T00:00:00+00:00", "status": "PRESENTED"}],
        "history": {
            "totalCount": 16,
            "pageInfo": {"hasNextPage": True, "endCursor": result["data"]["case"]["history"]["pageInfo"]["endCursor"]},
            "edges": [
                {"node": {"id": "CASE-2026-000123-e016", "kind": "CONSENT_REQUESTED",
                          "actor": {"type": "SYSTEM", "id": "bpms/mortgage", "name": None}, "channel": None,
                          "at": "2026-11-02T17:00:00+00:00", "summary": "Consent requested: CREDIT_BUREAU"}},
                {"node": {"id": "CASE-2026-000123-e015", "kind": "TASK_CREATED",
                          "actor": {"type": "SYSTEM", "id": "bpms/mortgage", "name": None}, "channel": None,
                          "at": "2026-11-02T16:30:00+00:00", "summary": "Task created: Confirm your employment details"}},
                {"node": {"id": "CASE-2026-000123-e014", "kind": "TASK_CREATED",
                          "actor": {"type": "SYSTEM", "id": "bpms/mortgage", "name": None}, "channel": None,
                          "at": "2026-11-02T16:00:00+00:00",
                          "summary": "Task created: Call the co-borrower about the missing income statement"}},
            ]},
    }}}


async def test_an_unknown_case_id_is_null_without_errors(cases: None, gql: Any) -> None:
    result = await gql('{ case(id: "CASE-404") { id } }')

    assert result == {"data": {"case": None}}


async def test_a_closed_case_shows_outcome_and_closing_time(cases: None, gql: Any) -> None:
    result = await gql('{ case(id: "CASE-03") { status outcome closedAt updatedAt version } }')

    assert result == {"data": {"case": {"status": "CLOSED", "outcome": "APPROVED", "closedAt": iso(hours(3)),
                                        "updatedAt": iso(hours(3)), "version": 2}}}


# ---- cases(filter) ----------------------------------------------------------------------------------

FILTERS = [
    pytest.param({}, ["CASE-01", "CASE-02", "CASE-03", "CASE-04", "CASE-05", "CASE-06"], id="empty"),
    pytest.param({"customerId": "CUST-1"}, ["CASE-01", "CASE-02"], id="customerId"),
    pytest.param({"customerId": "CUST-404"}, [], id="customerId-unknown"),
    pytest.param({"caseType": ["MORTGAGE"]}, ["CASE-01", "CASE-03", "CASE-06"], id="caseType"),
    pytest.param({"caseType": ["MORTGAGE", "COMPLAINT"]}, ["CASE-01", "CASE-03", "CASE-04", "CASE-06"],
                 id="caseType-any-of"),
    pytest.param({"status": ["NEW"]}, ["CASE-01", "CASE-04", "CASE-06"], id="status"),
    pytest.param({"status": ["CLOSED", "ON_HOLD"]}, ["CASE-03", "CASE-05"], id="status-any-of"),
    pytest.param({"status": ["NO_SUCH_STATUS"]}, [], id="status-none"),
    pytest.param({"stage": ["APPLICATION"]}, ["CASE-01", "CASE-03", "CASE-06"], id="stage"),
    pytest.param({"channel": ["ONLINE"]}, ["CASE-03", "CASE-05"], id="channel"),
    pytest.param({"hasOpenIncident": True}, ["CASE-02"], id="hasOpenIncident"),
    pytest.param({"hasOpenIncident": False}, ["CASE-01", "CASE-03", "CASE-04", "CASE-05", "CASE-06"],
                 id="no-open-incident"),
    pytest.param({"open": True}, ["CASE-01", "CASE-02", "CASE-04", "CASE-05", "CASE-06"], id="open"),
    pytest.param({"open": False}, ["CASE-03"], id="closed"),
    pytest.param({"createdFrom": iso(hours(2))}, ["CASE-03", "CASE-04", "CASE-05", "CASE-06"],
                 id="createdFrom-inclusive"),
    pytest.param({"createdTo": iso(hours(2))}, ["CASE-01", "CASE-02"], id="createdTo-exclusive"),
    pytest.param({"createdFrom": iso(hours(1)), "createdTo": iso(hours(3))}, ["CASE-02", "CASE-03"],
                 id="created-range"),
    pytest.param({"updatedFrom": iso(hours(6))}, ["CASE-02", "CASE-04", "CASE-05"], id="updatedFrom"),
    pytest.param({"updatedTo": iso(hours(3))}, ["CASE-01"], id="updatedTo"),
    pytest.param({"updatedFrom": "2026-11-01T12:00:00Z", "updatedTo": "2026-11-01T16:00:00+01:00"},
                 ["CASE-03", "CASE-06"], id="updated-range-other-offsets"),
    pytest.param({"text": "mortgage"}, ["CASE-01", "CASE-03", "CASE-06"], id="text-title-case-insensitive"),
    pytest.param({"text": "NOWAK"}, ["CASE-03", "CASE-05"], id="text-customer-name"),
    pytest.param({"text": "case-04"}, ["CASE-04"], id="text-case-id"),
    pytest.param({"text": "15,000 PLN (consolidation)"}, ["CASE-02"], id="text-with-regex-characters"),
    pytest.param({"text": ".*"}, [], id="text-is-not-a-regex"),
    pytest.param({"and": [{"caseType": ["MORTGAGE"]}, {"open": True}]}, ["CASE-01", "CASE-06"], id="and"),
    pytest.param({"or": [{"customerId": "CUST-1"}, {"channel": ["ONLINE"]}]},
                 ["CASE-01", "CASE-02", "CASE-03", "CASE-05"], id="or"),
    pytest.param({"or": [{"and": [{"caseType": ["MORTGAGE"]}, {"status": ["NEW"]}]}, {"hasOpenIncident": True}]},
                 ["CASE-01", "CASE-02", "CASE-06"], id="or-of-and"),
    pytest.param({"customerId": "CUST-3", "or": [{"status": ["CLOSED"]}, {"caseType": ["COMPLAINT"]}]},
                 ["CASE-04"], id="field-and-or"),
    pytest.param({"and": [{"or": [{"channel": ["BRANCH"]}, {"channel": ["ONLINE"]}]},
                          {"or": [{"open": False}, {"text": "second"}]}]},
                 ["CASE-03", "CASE-06"], id="and-of-or"),
]


@pytest.mark.parametrize(("case_filter", "expected"), FILTERS)
async def test_cases_filter_returns_exactly_the_matching_cases(
    cases: None, gql: Any, case_filter: dict[str, Any], expected: list[str],
) -> None:
    result = await gql(IDS_QUERY, {"filter": case_filter, "orderBy": {"field": "ID", "direction": "ASC"}})

    assert "errors" not in result
    assert ids(result) == expected
    assert result["data"]["cases"]["totalCount"] == len(expected)


async def test_total_count_is_the_filters_count_not_the_page_size(cases: None, gql: Any) -> None:
    result = await gql(IDS_QUERY, {"filter": {"open": True}, "first": 2,
                                   "orderBy": {"field": "ID", "direction": "ASC"}})

    assert ids(result) == ["CASE-01", "CASE-02"]
    assert result["data"]["cases"]["totalCount"] == 5
    assert result["data"]["cases"]["pageInfo"]["hasNextPage"] is True


async def test_case_list_operation_shows_the_list_columns(cases: None, gql: Any) -> None:
    result = await gql(LIST, {"filter": {"open": True, "or": [{"caseType": ["MORTGAGE"]}, {"hasOpenIncident": True}]},
                              "orderBy": {"field": "UPDATED_AT", "direction": "DESC"}, "first": 20})

    connection = result["data"]["cases"]
    assert [edge["node"] for edge in connection["edges"]] == [
        {"id": "CASE-02", "caseType": "CASH_LOAN", "title": "Cash loan 15,000 PLN (consolidation)",
         "status": "IN_PROGRESS", "stage": "ANALYSIS", "channel": "MOBILE", "updatedAt": iso(hours(6)),
         "hasOpenIncident": True, "customer": {"id": "CUST-1", "name": "Anna Kowalska"}},
        {"id": "CASE-06", "caseType": "MORTGAGE", "title": "Second mortgage", "status": "NEW",
         "stage": "APPLICATION", "channel": "BRANCH", "updatedAt": iso(hours(3)), "hasOpenIncident": False,
         "customer": {"id": "CUST-3", "name": "Zofia Wiśniewska"}},
        {"id": "CASE-01", "caseType": "MORTGAGE", "title": "Mortgage for a flat in Kraków", "status": "NEW",
         "stage": "APPLICATION", "channel": "BRANCH", "updatedAt": iso(hours(0)), "hasOpenIncident": False,
         "customer": {"id": "CUST-1", "name": "Anna Kowalska"}},
    ]
    assert connection["totalCount"] == 3
    assert connection["pageInfo"] == {"hasNextPage": False, "endCursor": connection["edges"][-1]["cursor"]}


# ---- cases(orderBy) and paging ----------------------------------------------------------------------

ORDERS = [
    ("UPDATED_AT", "DESC", ["CASE-05", "CASE-04", "CASE-02", "CASE-06", "CASE-03", "CASE-01"]),
    ("UPDATED_AT", "ASC", ["CASE-01", "CASE-03", "CASE-06", "CASE-02", "CASE-04", "CASE-05"]),
    ("CREATED_AT", "DESC", ["CASE-05", "CASE-06", "CASE-04", "CASE-03", "CASE-02", "CASE-01"]),
    ("CREATED_AT", "ASC", ["CASE-01", "CASE-02", "CASE-03", "CASE-04", "CASE-06", "CASE-05"]),
    ("STATUS", "DESC", ["CASE-05", "CASE-06", "CASE-04", "CASE-01", "CASE-02", "CASE-03"]),
    ("STATUS", "ASC", ["CASE-03", "CASE-02", "CASE-01", "CASE-04", "CASE-06", "CASE-05"]),
    ("CASE_TYPE", "DESC", ["CASE-06", "CASE-03", "CASE-01", "CASE-05", "CASE-04", "CASE-02"]),
    ("CASE_TYPE", "ASC", ["CASE-02", "CASE-04", "CASE-05", "CASE-01", "CASE-03", "CASE-06"]),
    ("ID", "DESC", ["CASE-06", "CASE-05", "CASE-04", "CASE-03", "CASE-02", "CASE-01"]),
    ("ID", "ASC", ["CASE-01", "CASE-02", "CASE-03", "CASE-04", "CASE-05", "CASE-06"]),
]
ORDER_IDS = [f"{field}-{direction}" for field, direction, _ in ORDERS]


@pytest.mark.parametrize(("field", "direction", "expected"), ORDERS, ids=ORDER_IDS)
async def test_cases_order_by_each_field_breaks_ties_by_id(
    cases: None, gql: Any, field: str, direction: str, expected: list[str],
) -> None:
    result = await gql(IDS_QUERY, {"orderBy": {"field": field, "direction": direction}})

    assert ids(result) == expected


async def test_cases_default_order_is_most_recently_updated_first(cases: None, gql: Any) -> None:
    result = await gql(IDS_QUERY)

    assert ids(result) == ["CASE-05", "CASE-04", "CASE-02", "CASE-06", "CASE-03", "CASE-01"]


async def _all_pages(gql: Any, variables: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Follows endCursor until hasNextPage is false; returns the ids seen and every page's connection."""
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        result = await gql(IDS_QUERY, {**variables, "after": after})
        assert "errors" not in result, result
        connection = result["data"]["cases"]
        pages.append(connection)
        seen += ids(result)
        if not connection["pageInfo"]["hasNextPage"]:
            return seen, pages
        after = connection["pageInfo"]["endCursor"]
        assert len(pages) <= 10, "paging does not end"


@pytest.mark.parametrize("first", [1, 2, 4])
@pytest.mark.parametrize(("field", "direction", "expected"), ORDERS, ids=ORDER_IDS)
async def test_paging_through_all_pages_returns_every_case_once_in_order(
    cases: None, gql: Any, field: str, direction: str, expected: list[str], first: int,
) -> None:
    seen, pages = await _all_pages(gql, {"first": first, "orderBy": {"field": field, "direction": direction}})

    assert seen == expected
    assert len(pages) == -(-len(expected) // first)
    assert {page["totalCount"] for page in pages} == {6}
    for page in pages:
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]


async def test_paging_a_filtered_list_stays_inside_the_filter(cases: None, gql: Any) -> None:
    seen, pages = await _all_pages(gql, {"first": 1, "filter": {"status": ["NEW"]},
                                         "orderBy": {"field": "UPDATED_AT", "direction": "DESC"}})

    assert seen == ["CASE-04", "CASE-06", "CASE-01"]
    assert [page["totalCount"] for page in pages] == [3, 3, 3]


async def test_an_empty_list_has_no_cursor(cases: None, gql: Any) -> None:
    result = await gql(IDS_QUERY, {"filter": {"customerId": "CUST-404"}})

    assert result == {"data": {"cases": {"totalCount": 0, "pageInfo": {"hasNextPage": False, "endCursor": None},
                                         "edges": []}}}


async def test_first_up_to_the_cap_is_allowed(cases: None, gql: Any, settings: Any) -> None:
    result = await gql(IDS_QUERY, {"first": settings.max_page_size})

    assert len(ids(result)) == 6


async def test_first_above_the_cap_is_bad_user_input(cases: None, gql: Any, settings: Any) -> None:
    result = await gql(IDS_QUERY, {"first": settings.max_page_size + 1})

    assert error_code(result) == "BAD_USER_INPUT"
    assert result["errors"][0]["message"] == f"first: at most {settings.max_page_size} items per page"
    assert result["data"] is None


async def test_negative_first_is_bad_user_input(cases: None, gql: Any) -> None:
    result = await gql(IDS_QUERY, {"first": -1})

    assert error_code(result) == "BAD_USER_INPUT"


def _encode(payload: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


def _tampered(cursor: str, index: int, value: Any) -> str:
    """A cursor the API issued with one element of its payload replaced, as a curious client would."""
    payload = orjson.loads(base64.urlsafe_b64decode(cursor))
    payload[index] = value
    return _encode(payload)


# Each forgery starts from a real cursor of `STATUS ASC` (whose payload is [kind, status, case id, order]).
FORGERIES = [
    pytest.param(lambda real: "not a cursor", id="not-base64"),
    pytest.param(lambda real: "abc", id="three-letters"),
    pytest.param(lambda real: base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-json"),
    pytest.param(lambda real: _encode({"kind": "v", "value": "NEW", "id": "CASE-01"}), id="an-object"),
    pytest.param(lambda real: _encode(orjson.loads(base64.urlsafe_b64decode(real))[:2]), id="too-short"),
    pytest.param(lambda real: _tampered(real, 0, "x"), id="unknown-kind"),
    pytest.param(lambda real: _tampered(_tampered(real, 0, "t"), 1, "yesterday"), id="bad-timestamp"),
    pytest.param(lambda real: _tampered(_tampered(real, 0, "t"), 1, "2026-11-01T09:00:00"),
                 id="timestamp-without-offset"),
    pytest.param(lambda real: _tampered(real, 2, 7), id="id-not-a-string"),
    pytest.param(lambda real: _tampered(real, 1, {"$gt": ""}), id="operator-injection-in-value"),
    pytest.param(lambda real: _tampered(real, 2, {"$gt": ""}), id="operator-injection-in-id"),
    pytest.param(lambda real: _tampered(real, 1, ["NEW"]), id="value-a-list"),
    pytest.param(lambda real: _tampered(real, 3, "CASE_TYPE:ASC"), id="issued-for-another-order"),
]


@pytest.mark.parametrize("forge", FORGERIES)
async def test_a_forged_after_cursor_is_bad_user_input(cases: None, gql: Any, forge: Any) -> None:
    # given a real cursor of the STATUS ASC order
    order = {"field": "STATUS", "direction": "ASC"}
    real = (await gql(IDS_QUERY, {"orderBy": order, "first": 2}))["data"]["cases"]["pageInfo"]["endCursor"]
    assert ids(await gql(IDS_QUERY, {"orderBy": order, "after": real})) == ["CASE-01", "CASE-04", "CASE-06",
                                                                               "CASE-05"]

    # when a client sends a cursor it made up
    result = await gql(IDS_QUERY, {"after": forge(real), "orderBy": order})

    # then it is refused with the client's error code, and no data leaks
    assert error_code(result) == "BAD_USER_INPUT"
    assert result["errors"][0]["message"] == "after: not a cursor issued by this API"
    assert result["data"] is None


async def test_a_cursor_of_one_order_is_refused_under_another(cases: None, gql: Any) -> None:
    by_status = await gql(IDS_QUERY, {"orderBy": {"field": "STATUS", "direction": "ASC"}, "first": 2})
    cursor = by_status["data"]["cases"]["pageInfo"]["endCursor"]

    result = await gql(IDS_QUERY, {"orderBy": {"field": "STATUS", "direction": "DESC"}, "after": cursor})

    assert error_code(result) == "BAD_USER_INPUT"


# ---- history(first, after) --------------------------------------------------------------------------

HISTORY = """
query($id: ID!, $first: Int, $after: String) {
  case(id: $id) { history(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id kind at summary } } } }
}"""


@pytest.fixture
async def case_with_history(services: Any) -> None:
    # Delivered out of order on purpose: history is ordered by when things happened, not by arrival.
    await services.pipeline.ingest([
        created("CASE-H", time=hours(0), event_id="h-created"),
        action_recorded("CASE-H", "h-call-2", at=hours(3), summary="Second call", time=hours(3)),
        action_recorded("CASE-H", "h-call-1", at=hours(1), summary="First call", time=hours(1)),
        status_changed("CASE-H", "IN_PROGRESS", "ANALYSIS", time=hours(2), event_id="h-status"),
        closed("CASE-H", "REJECTED", at=hours(4), time=hours(4), event_id="h-closed"),
    ])


async def test_history_is_newest_first(case_with_history: None, gql: Any) -> None:
    result = await gql(HISTORY, {"id": "CASE-H"})

    history = result["data"]["case"]["history"]
    assert [edge["node"] for edge in history["edges"]] == [
        {"id": "h-closed", "kind": "CASE_CLOSED", "at": iso(hours(4)), "summary": "Case closed: REJECTED"},
        {"id": "h-call-2", "kind": "CALL", "at": iso(hours(3)), "summary": "Second call"},
        {"id": "h-status", "kind": "STATUS_CHANGED", "at": iso(hours(2)),
         "summary": "Status changed to IN_PROGRESS, stage ANALYSIS"},
        {"id": "h-call-1", "kind": "CALL", "at": iso(hours(1)), "summary": "First call"},
        {"id": "h-created", "kind": "CASE_CREATED", "at": iso(hours(0)), "summary": "Case opened: Mortgage for a flat"},
    ]
    assert history["totalCount"] == 5
    assert history["pageInfo"] == {"hasNextPage": False, "endCursor": history["edges"][-1]["cursor"]}


async def test_history_pages_follow_the_cursor(case_with_history: None, gql: Any) -> None:
    pages = []
    after = None
    while True:
        history = (await gql(HISTORY, {"id": "CASE-H", "first": 2, "after": after}))["data"]["case"]["history"]
        pages.append([edge["node"]["id"] for edge in history["edges"]])
        if not history["pageInfo"]["hasNextPage"]:
            break
        after = history["pageInfo"]["endCursor"]

    assert pages == [["h-closed", "h-call-2"], ["h-status", "h-call-1"], ["h-created"]]


async def test_history_first_above_the_cap_and_forged_cursor_are_bad_user_input(
    case_with_history: None, gql: Any, settings: Any,
) -> None:
    too_many = await gql(HISTORY, {"id": "CASE-H", "first": settings.max_page_size + 1})
    forged = await gql(HISTORY, {"id": "CASE-H", "after": "forged"})

    assert error_code(too_many) == "BAD_USER_INPUT"
    assert error_code(forged) == "BAD_USER_INPUT"
