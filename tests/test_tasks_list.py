"""The dashboard's task lists: `myTasks` (what I hold, what is offered to my groups) and `tasks` (every task a
manager or the back office may see), over real HTTP with real dev tokens.

Given three cases — CASE-A (MORTGAGE, KRK-01, CUST-1), CASE-B (CASH_LOAN, WAW-01, CUST-2) and the restricted
CASE-R (MORTGAGE, KRK-01, CUST-3) — and their tasks, created in the order B-2, A-1, R-1, A-3, B-1, A-4, A-2:

| task | candidate groups | assignee | state | due | priority |
| --- | --- | --- | --- | --- | --- |
| A-1 | mortgage-advisors | — | CREATED | 2099-01-10 | 80 |
| A-2 | valuation | — | CREATED | 2020-01-10 (overdue) | 20 |
| A-3 | valuation | anna.nowak | ASSIGNED | 2099-01-20 | — |
| A-4 | mortgage-advisors | — | COMPLETED | — | 80 |
| B-1 | mortgage-advisors | piotr.zielinski | ASSIGNED | 2099-01-05 | 50 |
| B-2 | back-office | — | CREATED | 2020-01-05 (overdue) | — |
| R-1 | mortgage-advisors | — | CREATED | 2099-01-01 | 99 |
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from stores.database import Database
from tests.factories import BASE_TIME, bearer, case_created_data, event, task_created
from tests.panel_sessions import panel_headers

MY_TASKS = """
query ($filter: TaskFilter, $orderBy: TaskOrderInput, $first: Int, $after: String) {
  myTasks(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id } }
  }
}"""
TASKS = MY_TASKS.replace("myTasks(", "tasks(")
HOLDERS = """
{ tasks { totalCount edges { node { id caseId assignee state candidateGroups } } } }
"""

ANNA = {"roles": ("case-reader", "advisor"), "username": "anna.nowak"}
MANAGER = {"roles": ("team-manager", "case-reader", "case-writer"), "username": "maria.wojcik"}
BACK_OFFICE = {"roles": ("back-office", "case-reader", "case-writer"), "username": "jan.wisniewski"}
EVERYONE_BUT_R1 = ["B-2", "A-2", "B-1", "A-1", "A-3", "A-4"]
ALL_BY_DUE = ["B-2", "A-2", "R-1", "B-1", "A-1", "A-3", "A-4"]

CASES = {
    "CASE-A": {"caseType": "MORTGAGE", "branch": "KRK-01", "customer": {"id": "CUST-1", "name": "Anna Kowalska"}},
    "CASE-B": {"caseType": "CASH_LOAN", "branch": "WAW-01", "customer": {"id": "CUST-2", "name": "Piotr Nowak"}},
    "CASE-R": {"caseType": "MORTGAGE", "branch": "KRK-01", "restricted": True,
               "customer": {"id": "CUST-3", "name": "Jan Kowalski"}},
}
# In creation order (so createdAt follows it): case id, task id, fields.
TASK_ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("CASE-B", "B-2", {"candidateGroups": ["back-office"], "dueAt": "2020-01-05T00:00:00+00:00"}),
    ("CASE-A", "A-1", {"candidateGroups": ["mortgage-advisors"], "dueAt": "2099-01-10T00:00:00+00:00",
                       "priority": 80}),
    ("CASE-R", "R-1", {"candidateGroups": ["mortgage-advisors"], "dueAt": "2099-01-01T00:00:00+00:00",
                       "priority": 99}),
    ("CASE-A", "A-3", {"candidateGroups": ["valuation"], "assignee": "anna.nowak", "state": "ASSIGNED",
                       "dueAt": "2099-01-20T00:00:00+00:00"}),
    ("CASE-B", "B-1", {"candidateGroups": ["mortgage-advisors"], "assignee": "piotr.zielinski", "state": "ASSIGNED",
                       "dueAt": "2099-01-05T00:00:00+00:00", "priority": 50}),
    ("CASE-A", "A-4", {"candidateGroups": ["mortgage-advisors"], "state": "COMPLETED", "priority": 80}),
    ("CASE-A", "A-2", {"candidateGroups": ["valuation"], "dueAt": "2020-01-10T00:00:00+00:00", "priority": 20}),
]


@pytest.fixture
async def dashboard(services: Any) -> None:
    moments = (BASE_TIME + timedelta(minutes=n) for n in range(100))
    events = [event("case.created", case_id, case_created_data(**data), time=next(moments))
              for case_id, data in CASES.items()]
    events += [task_created(case_id, task_id, time=next(moments), **fields) for case_id, task_id, fields in TASK_ROWS]
    await services.pipeline.ingest(events)


def ids(result: dict[str, Any], root: str = "myTasks") -> list[str]:
    assert "errors" not in result, result["errors"]
    return [edge["node"]["id"] for edge in result["data"][root]["edges"]]


def refused(result: dict[str, Any]) -> tuple[Any, list[str]]:
    return result["data"], [error["extensions"]["code"] for error in result["errors"]]


# ---- myTasks -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("groups", [("mortgage-advisors",), ("/bank/mortgage-advisors",)])
async def test_an_advisor_sees_what_her_group_is_offered_and_what_she_holds(
    dashboard: None, gql: Any, groups: tuple[str, ...],
) -> None:
    # when Anna (group mortgage-advisors, plainly or as a Keycloak path) opens her inbox
    result = await gql(MY_TASKS, headers=bearer(**ANNA, groups=groups))

    # then: A-1 (offered to her group) and A-3 (valuation's, but she holds it); not valuation's unassigned A-2, not
    # B-1 (offered to her group but held by Piotr), not A-4 (completed), not R-1 (a restricted case)
    assert ids(result) == ["A-1", "A-3"]
    assert (result["data"]["myTasks"]["totalCount"], result["data"]["myTasks"]["pageInfo"]["hasNextPage"]) == (2, False)


async def test_a_group_matches_only_a_whole_last_segment_of_a_path(dashboard: None, gql: Any) -> None:
    # given groups whose paths merely contain "mortgage-advisors"
    groups = ("/bank/mortgage-advisors-lead", "/mortgage-advisors/juniors")

    result = await gql(MY_TASKS, headers=bearer(**ANNA, groups=groups))

    # then only the task she holds
    assert ids(result) == ["A-3"]


async def test_another_group_sees_its_own_offers_and_not_the_tasks_others_hold(dashboard: None, gql: Any) -> None:
    result = await gql(MY_TASKS, headers=bearer(roles=ANNA["roles"], username="olga.lis", groups=("/bank/valuation",)))

    assert ids(result) == ["A-2"]


async def test_a_task_i_hold_in_a_case_outside_my_branch_is_not_shown(dashboard: None, gql: Any) -> None:
    # Piotr holds B-1 (WAW-01), but his token now carries branch KRK-01
    headers = bearer(roles=ANNA["roles"], username="piotr.zielinski", branch="KRK-01", groups=("mortgage-advisors",))

    result = await gql(MY_TASKS, headers=headers)

    assert ids(result) == ["A-1"]


async def test_a_manager_who_may_see_restricted_cases_is_offered_their_tasks(dashboard: None, gql: Any) -> None:
    result = await gql(MY_TASKS, headers=bearer(**MANAGER, branch="KRK-01", groups=("/branches/mortgage-advisors",)))

    assert ids(result) == ["R-1", "A-1"]


async def test_a_filter_narrows_my_inbox_and_never_widens_it(dashboard: None, gql: Any) -> None:
    headers = bearer(**ANNA, groups=("mortgage-advisors",))

    assigned = await gql(MY_TASKS, {"filter": {"state": ["ASSIGNED"]}}, headers=headers)
    someone_else = await gql(MY_TASKS, {"filter": {"assignee": "piotr.zielinski"}}, headers=headers)
    another_group = await gql(MY_TASKS, {"filter": {"candidateGroup": ["back-office"]}}, headers=headers)

    assert ids(assigned) == ["A-3"]
    assert ids(someone_else) == []
    assert ids(another_group) == []
    assert someone_else["data"]["myTasks"]["totalCount"] == 0


# ---- tasks: who holds what in my unit ------------------------------------------------------------------------

def holders(result: dict[str, Any]) -> dict[str, tuple[str, str | None, str]]:
    assert "errors" not in result, result["errors"]
    return {e["node"]["id"]: (e["node"]["caseId"], e["node"]["assignee"], e["node"]["state"])
            for e in result["data"]["tasks"]["edges"]}


async def test_a_branch_manager_sees_every_task_of_the_branch_and_who_holds_it(dashboard: None, gql: Any) -> None:
    result = await gql(HOLDERS, headers=bearer(**MANAGER, branch="KRK-01"))

    assert result["data"]["tasks"]["totalCount"] == 5
    assert holders(result) == {
        "A-2": ("CASE-A", None, "CREATED"), "R-1": ("CASE-R", None, "CREATED"), "A-1": ("CASE-A", None, "CREATED"),
        "A-3": ("CASE-A", "anna.nowak", "ASSIGNED"), "A-4": ("CASE-A", None, "COMPLETED"),
    }


async def test_a_manager_without_a_branch_sees_every_unit(dashboard: None, gql: Any) -> None:
    result = await gql(HOLDERS, headers=bearer(**MANAGER))

    assert result["data"]["tasks"]["totalCount"] == 7
    assert holders(result) == {
        "B-2": ("CASE-B", None, "CREATED"), "A-2": ("CASE-A", None, "CREATED"), "R-1": ("CASE-R", None, "CREATED"),
        "B-1": ("CASE-B", "piotr.zielinski", "ASSIGNED"), "A-1": ("CASE-A", None, "CREATED"),
        "A-3": ("CASE-A", "anna.nowak", "ASSIGNED"), "A-4": ("CASE-A", None, "COMPLETED"),
    }


async def test_the_back_office_sees_every_unit_but_not_restricted_cases(dashboard: None, gql: Any) -> None:
    result = await gql(TASKS, headers=bearer(**BACK_OFFICE))

    assert ids(result, "tasks") == EVERYONE_BUT_R1
    assert result["data"]["tasks"]["totalCount"] == 6


async def test_a_task_shows_its_case_and_the_engine_fields(dashboard: None, gql: Any) -> None:
    query = """{ tasks(filter: {caseId: "CASE-B"}) { edges { node {
      id name candidateGroups assignee dueAt state priority createdAt case { id caseType branch } } } } }"""

    result = await gql(query, headers=bearer(**MANAGER))

    assert result == {"data": {"tasks": {"edges": [
        {"node": {"id": "B-2", "name": "Task B-2", "candidateGroups": ["back-office"], "assignee": None,
                  "dueAt": "2020-01-05T00:00:00+00:00", "state": "CREATED", "priority": None,
                  "createdAt": "2026-11-21T10:03:00+00:00",
                  "case": {"id": "CASE-B", "caseType": "CASH_LOAN", "branch": "WAW-01"}}},
        {"node": {"id": "B-1", "name": "Task B-1", "candidateGroups": ["mortgage-advisors"],
                  "assignee": "piotr.zielinski", "dueAt": "2099-01-05T00:00:00+00:00", "state": "ASSIGNED",
                  "priority": 50, "createdAt": "2026-11-21T10:07:00+00:00",
                  "case": {"id": "CASE-B", "caseType": "CASH_LOAN", "branch": "WAW-01"}}},
    ]}}}


# ---- filters -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("task_filter", "expected"), [
    ({"state": ["ASSIGNED"]}, ["B-1", "A-3"]),
    ({"state": ["CREATED", "COMPLETED"]}, ["B-2", "A-2", "R-1", "A-1", "A-4"]),
    ({"caseType": ["CASH_LOAN"]}, ["B-2", "B-1"]),
    ({"candidateGroup": ["valuation"]}, ["A-2", "A-3"]),
    ({"candidateGroup": ["valuation", "back-office"]}, ["B-2", "A-2", "A-3"]),
    ({"assignee": "anna.nowak"}, ["A-3"]),
    ({"unassigned": True}, ["B-2", "A-2", "R-1", "A-1", "A-4"]),
    ({"unassigned": False}, ["B-1", "A-3"]),
    ({"customerId": "CUST-2"}, ["B-2", "B-1"]),
    ({"caseId": "CASE-R"}, ["R-1"]),
    ({"dueBefore": "2099-01-05T00:00:00Z"}, ["B-2", "A-2", "R-1"]),
    ({"dueAfter": "2099-01-05T00:00:00Z"}, ["B-1", "A-1", "A-3"]),
    ({"dueAfter": "2099-01-01T00:00:00Z", "dueBefore": "2099-01-10T00:00:00Z"}, ["R-1", "B-1"]),
    ({"overdue": True}, ["B-2", "A-2"]),
    ({"overdue": False}, ["R-1", "B-1", "A-1", "A-3", "A-4"]),
    ({"candidateGroup": ["mortgage-advisors"], "unassigned": True, "overdue": False}, ["R-1", "A-1", "A-4"]),
    ({"caseId": "CASE-A", "customerId": "CUST-2"}, []),
], ids=lambda value: str(value) if isinstance(value, dict) else "")
async def test_each_filter_field(dashboard: None, gql: Any, task_filter: dict[str, Any], expected: list[str]) -> None:
    result = await gql(TASKS, {"filter": task_filter}, headers=bearer(**MANAGER))

    assert ids(result, "tasks") == expected
    assert result["data"]["tasks"]["totalCount"] == len(expected)


# ---- orders and paging ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "direction", "expected"), [
    ("DUE_AT", "ASC", ALL_BY_DUE),
    ("DUE_AT", "DESC", ALL_BY_DUE[::-1]),
    ("CREATED_AT", "ASC", ["B-2", "A-1", "R-1", "A-3", "B-1", "A-4", "A-2"]),
    ("CREATED_AT", "DESC", ["A-2", "A-4", "B-1", "A-3", "R-1", "A-1", "B-2"]),
    # 80 twice and no priority twice (A-3, B-2): ties go by the row id, in the order's direction
    ("PRIORITY", "DESC", ["R-1", "A-4", "A-1", "B-1", "A-2", "B-2", "A-3"]),
    ("PRIORITY", "ASC", ["A-3", "B-2", "A-2", "B-1", "A-1", "A-4", "R-1"]),
])
async def test_pages_follow_the_order_without_gaps_or_repeats(
    dashboard: None, gql: Any, field: str, direction: str, expected: list[str],
) -> None:
    order_by = {"field": field, "direction": direction}
    seen, pages, after = [], [], None
    while True:
        result = await gql(TASKS, {"orderBy": order_by, "first": 2, "after": after}, headers=bearer(**MANAGER))
        page = result["data"]["tasks"]
        seen += ids(result, "tasks")
        pages.append((page["totalCount"], page["pageInfo"]["hasNextPage"]))
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == expected
    assert pages == [(7, True), (7, True), (7, True), (7, False)]


async def test_the_default_order_is_soonest_due_first_with_undated_tasks_last(dashboard: None, gql: Any) -> None:
    assert ids(await gql(TASKS, headers=bearer(**MANAGER)), "tasks") == ALL_BY_DUE


async def test_my_inbox_pages_too(dashboard: None, gql: Any) -> None:
    headers = bearer(**MANAGER, groups=("mortgage-advisors", "valuation"))

    first = await gql(MY_TASKS, {"first": 1}, headers=headers)
    rest = await gql(MY_TASKS, {"first": 5, "after": first["data"]["myTasks"]["pageInfo"]["endCursor"]},
                     headers=headers)

    assert (ids(first), ids(rest)) == (["A-2"], ["R-1", "A-1"])
    assert [r["data"]["myTasks"]["totalCount"] for r in (first, rest)] == [3, 3]


@pytest.mark.parametrize("first", [-1, 501])
async def test_first_out_of_range_is_bad_user_input(dashboard: None, gql: Any, first: int) -> None:
    for query, root in ((TASKS, "tasks"), (MY_TASKS, "myTasks")):
        result = await gql(query, {"first": first}, headers=bearer(**MANAGER))

        assert refused(result) == (None, ["BAD_USER_INPUT"])


async def test_a_cursor_of_another_order_or_list_is_bad_user_input(dashboard: None, gql: Any) -> None:
    headers = bearer(**MANAGER)
    by_due = await gql(TASKS, {"first": 1}, headers=headers)
    case_cursor = (await gql("{ cases(first: 1) { pageInfo { endCursor } } }", headers=headers))[
        "data"]["cases"]["pageInfo"]["endCursor"]

    other_order = await gql(TASKS, {"first": 1, "orderBy": {"field": "CREATED_AT"},
                                    "after": by_due["data"]["tasks"]["pageInfo"]["endCursor"]}, headers=headers)
    other_list = await gql(TASKS, {"first": 1, "after": case_cursor}, headers=headers)

    assert refused(other_order) == (None, ["BAD_USER_INPUT"])
    assert refused(other_list) == (None, ["BAD_USER_INPUT"])


# ---- who may ask -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("caller", ["panel", "customer", "no-roles", "auditor", "advisor"])
async def test_the_task_list_is_refused_to_everyone_but_managers_and_the_back_office(
    dashboard: None, gql: Any, services: Any, caller: str,
) -> None:
    headers = await panel_headers(services, "CASE-A", "P-1") if caller == "panel" else bearer(**{
        "customer": {"roles": ("customer",)}, "no-roles": {"roles": ()}, "auditor": {"roles": ("auditor",)},
        "advisor": ANNA}[caller], groups=("mortgage-advisors",))

    result = await gql(TASKS, headers=headers)

    # Staff are told the roles; a panel session or a customer is told the operation is not theirs at all.
    message = {"panel": "tasks is not available to a Customer Panel session",
               "customer": "tasks is not available to a customer's online or mobile banking token"}.get(
        caller, "tasks needs one of the roles: back-office, team-manager")
    assert result == {"data": None, "errors": [
        {"message": message, "locations": [{"line": 3, "column": 3}], "path": ["tasks"],
         "extensions": {"code": "FORBIDDEN"}}]}


@pytest.mark.parametrize("caller", ["panel", "customer", "no-roles", "auditor"])
async def test_my_inbox_is_refused_to_callers_who_do_not_work_cases(
    dashboard: None, gql: Any, services: Any, caller: str,
) -> None:
    headers = await panel_headers(services, "CASE-A", "P-1") if caller == "panel" else bearer(**{
        "customer": {"roles": ("customer",)}, "no-roles": {"roles": ()}, "auditor": {"roles": ("auditor",)},
    }[caller], groups=("mortgage-advisors",))

    result = await gql(MY_TASKS, headers=headers)

    assert refused(result) == (None, ["FORBIDDEN"])


async def test_without_a_token_neither_list_answers(dashboard: None, gql: Any) -> None:
    for query in (TASKS, MY_TASKS):
        assert refused(await gql(query, headers={})) == (None, ["UNAUTHENTICATED"])


# ---- cost ----------------------------------------------------------------------------------------------------

INBOX_WITH_CASES = """
query ($first: Int) { myTasks(first: $first) { totalCount edges { node { id state case { id status } } } } }
"""


@pytest.mark.parametrize("n", [1, 200])
async def test_an_inbox_page_costs_the_same_round_trips_for_any_number_of_tasks(
    services: Any, database: Database, gql: Any, n: int,
) -> None:
    # given N cases, each with a task offered to mortgage-advisors
    await services.pipeline.ingest([
        e for i in range(n) for e in (event("case.created", f"CASE-{i:04d}", case_created_data()),
                                       task_created(f"CASE-{i:04d}", f"T-{i:04d}", candidateGroups=["mortgage-advisors"]))
    ])

    database.round_trips.reset()
    result = await gql(INBOX_WITH_CASES, {"first": n}, headers=bearer(**ANNA, groups=("/bank/mortgage-advisors",)))

    # then one read of the page, one count, one batched read of the cases, the request's audit record
    assert "errors" not in result, result["errors"]
    edges = result["data"]["myTasks"]["edges"]
    assert len(edges) == n and result["data"]["myTasks"]["totalCount"] == n
    assert edges[-1] == {"node": {"id": f"T-{n - 1:04d}", "state": "CREATED",
                                  "case": {"id": f"CASE-{n - 1:04d}", "status": "NEW"}}}
    assert dict(database.round_trips.by_operation) == {
        "tasks.aggregate": 1, "tasks.count_documents": 1, "cases.aggregate": 1, "audit.insert_one": 1}
