"""IDOR: a caller asking for someone else's case by id, through every path that reaches a case.

Paths: `case(id)`, `cases` (list, filters, totalCount), the customer 360 (`customer(id)` with its cases, summary,
timeline and the customer's own description), `customerByPesel`, federation `_entities` (Case, Customer, Task)
and the live feeds (`caseUpdated`, `caseStatusChanged`). Scopes: the token's branch, restricted cases
(RESTRICTED_CASE_ROLES) and case types (CASE_TYPE_POLICY), all generated from access/policy.py.
Each refusal of a row is "as if it did not exist": null / absent / not counted, never an error that confirms it.
A caller whose roles may not use a root field at all (`_entities` without a case-reading role) gets the error of
the operation policy, the same whether the ids it names exist or not.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from access.policy import CASE_READERS, CASE_TYPE_POLICY, OPERATION_POLICY, RESTRICTED_CASE_ROLES, ROLES
from context import Services
from stores.database import Database
from tests.factories import BASE_TIME, action_recorded, bearer, created, status_changed, task_created, updated
from tests.live import BusWatch, next_frame, signed_in_socket, subscribe

KRK_PESEL = "85031207819"
WAW_ONLY_PESEL = "44051401359"
KRK_ADVISOR = bearer(roles=("case-reader", "advisor"), branch="KRK-01", channel="BRANCH", username="anna.krk")
WAW_ADVISOR = bearer(roles=("case-reader", "advisor"), branch="WAW-01", channel="BRANCH", username="piotr.waw")
FOREIGN = ["CASE-WAW", "CASE-WAW-ONLY", "CASE-RESTRICTED"]  # none of them visible to the Kraków advisor


def at(minutes: int) -> Any:
    return BASE_TIME + timedelta(minutes=minutes)


def customer(customer_id: str, name: str, pesel: str, segment: str = "RETAIL") -> dict[str, Any]:
    return {"id": customer_id, "name": name, "pesel": pesel, "segment": segment}


async def seed(services: Services) -> None:
    """CUST-1 has a case in Kraków, one in Warsaw (newer, describing them differently) and a restricted one in
    Kraków; CUST-2 has only a Warsaw case. Each case has an action on the customer's timeline."""
    cust_1 = customer("CUST-1", "Anna Kowalska", KRK_PESEL)
    await services.pipeline.ingest([
        created("CASE-KRK", time=at(0), data={"branch": "KRK-01", "customer": cust_1, "title": "Kraków mortgage"}),
        created("CASE-WAW", time=at(10), data={
            "branch": "WAW-01", "channel": "ONLINE", "title": "Warsaw credit card",
            "product": {"code": "CARD", "name": "Credit card"},
            "customer": customer("CUST-1", "Anna Kowalska-Wiśniewska", KRK_PESEL, "PRIVATE_BANKING")}),
        created("CASE-RESTRICTED", time=at(20), data={
            "branch": "KRK-01", "restricted": True, "title": "Staff loan", "customer": cust_1,
            "product": {"code": "STAFF", "name": "Staff loan"}}),
        created("CASE-WAW-ONLY", time=at(30), data={
            "branch": "WAW-01", "title": "Warsaw-only mortgage",
            "customer": customer("CUST-2", "Jan Zieliński", WAW_ONLY_PESEL)}),
    ])
    await services.pipeline.ingest([
        action_recorded("CASE-KRK", "A-KRK", at(40), summary="Visited the Kraków branch"),
        action_recorded("CASE-WAW", "A-WAW", at(41), summary="Called about the Warsaw card"),
        action_recorded("CASE-RESTRICTED", "A-RESTRICTED", at(42), summary="Staff loan reviewed"),
        task_created("CASE-WAW", "T-WAW", time=at(43)),
        task_created("CASE-KRK", "T-KRK", time=at(44)),
    ])


async def gql(client: TestClient, query: str, headers: dict[str, str],
              variables: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    text = await response.text()
    return orjson.loads(text), text


def assert_mentions_none_of(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked"


WAW_TRACES = ("CASE-WAW", "Warsaw", "Wiśniewska", "PRIVATE_BANKING", "CARD", "Staff loan", "CASE-RESTRICTED",
              "T-WAW", WAW_ONLY_PESEL, "Zieliński")


# --- case(id) --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case_id", FOREIGN)
async def test_case_by_id_of_another_branch_or_restricted_is_null_as_if_it_did_not_exist(
    client: TestClient, services: Services, database: Database, case_id: str,
) -> None:
    await seed(services)

    body, text = await gql(client, "query ($id: ID!) { case(id: $id) { id title customer { name pesel } } }",
                           KRK_ADVISOR, {"id": case_id})
    missing, _ = await gql(client, '{ case(id: "CASE-NOBODY-HAS") { id } }', KRK_ADVISOR)

    assert body == missing == {"data": {"case": None}}
    assert_mentions_none_of(text, case_id, "Warsaw", "Staff loan")
    record = await database.collection("audit").find_one({"operation": "case"}, sort=[("_id", 1)])
    assert (record["caseIds"], record["customerIds"], record["fields"]) == ([], [], [])


async def test_case_by_id_of_the_own_branch_is_returned(client: TestClient, services: Services) -> None:
    await seed(services)

    body, _ = await gql(client, '{ case(id: "CASE-KRK") { id title customer { name } } }', KRK_ADVISOR)
    warsaw, _ = await gql(client, '{ case(id: "CASE-WAW") { id title } }', WAW_ADVISOR)

    assert body == {"data": {"case": {"id": "CASE-KRK", "title": "Kraków mortgage",
                                      "customer": {"name": "Anna Kowalska"}}}}
    assert warsaw == {"data": {"case": {"id": "CASE-WAW", "title": "Warsaw credit card"}}}


# --- cases ---------------------------------------------------------------------------------------------

CASE_LIST = """query ($filter: CaseFilter) {
  cases(filter: $filter, orderBy: {field: ID, direction: ASC}) { totalCount edges { node { id } } } }"""


@pytest.mark.parametrize("case_filter", [
    None,
    {"customerId": "CUST-1"},
    {"customerId": "CUST-2"},
    {"or": [{"customerId": "CUST-1"}, {"customerId": "CUST-2"}, {"channel": ["ONLINE"]}]},
    {"channel": ["ONLINE"]},
    {"caseType": ["MORTGAGE"], "open": True},
], ids=["no filter", "customer with a foreign case", "customer with only foreign cases", "or of everything",
        "channel of the foreign case", "type and open"])
async def test_a_case_list_never_returns_or_counts_another_branchs_cases(
    client: TestClient, services: Services, case_filter: dict[str, Any] | None,
) -> None:
    await seed(services)
    everything, _ = await gql(client, CASE_LIST, bearer(), {"filter": case_filter})  # the operator sees all

    body, text = await gql(client, CASE_LIST, KRK_ADVISOR, {"filter": case_filter})

    visible = [e["node"]["id"] for e in everything["data"]["cases"]["edges"] if e["node"]["id"] == "CASE-KRK"]
    assert body == {"data": {"cases": {"totalCount": len(visible), "edges": [{"node": {"id": i}} for i in visible]}}}
    assert_mentions_none_of(text, "CASE-WAW", "CASE-RESTRICTED")


# --- customer 360 -------------------------------------------------------------------------------------------

CUSTOMER_360 = """query ($id: ID!) { customer(id: $id) {
  id name segment pesel
  summary { open closed total byStatus { key count } byChannel { key count } byProduct { key count } }
  cases(orderBy: {field: ID, direction: ASC}) { totalCount edges { node { id title } } }
  timeline { edges { node { caseId summary } } }
} }"""


async def test_the_customer_360_shows_only_the_cases_of_the_callers_branch(
    client: TestClient, services: Services,
) -> None:
    await seed(services)

    body, text = await gql(client, CUSTOMER_360, KRK_ADVISOR, {"id": "CUST-1"})

    assert body == {"data": {"customer": {
        # Described by the visible case, not by the newer Warsaw case.
        "id": "CUST-1", "name": "Anna Kowalska", "segment": "RETAIL", "pesel": KRK_PESEL,
        "summary": {"open": 1, "closed": 0, "total": 1, "byStatus": [{"key": "NEW", "count": 1}],
                    "byChannel": [{"key": "BRANCH", "count": 1}], "byProduct": [{"key": "MORT", "count": 1}]},
        "cases": {"totalCount": 1, "edges": [{"node": {"id": "CASE-KRK", "title": "Kraków mortgage"}}]},
        "timeline": {"edges": [{"node": {"caseId": "CASE-KRK", "summary": summary}} for summary in (
            "Task created: Task T-KRK", "Visited the Kraków branch", "Case opened: Kraków mortgage")]},
    }}}
    assert_mentions_none_of(text, *WAW_TRACES)


async def test_a_customer_whose_only_case_is_in_another_branch_is_null(
    client: TestClient, services: Services,
) -> None:
    await seed(services)

    body, text = await gql(client, CUSTOMER_360, KRK_ADVISOR, {"id": "CUST-2"})
    control, _ = await gql(client, '{ customer(id: "CUST-2") { id name } }', WAW_ADVISOR)

    assert body == {"data": {"customer": None}}
    assert_mentions_none_of(text, "Zieliński", WAW_ONLY_PESEL)
    assert control == {"data": {"customer": {"id": "CUST-2", "name": "Jan Zieliński"}}}


async def test_the_360_reached_from_a_visible_case_is_still_scoped(client: TestClient, services: Services) -> None:
    """case -> customer -> cases/timeline is a second way into the 360; it must take the same scope."""
    await seed(services)

    body, text = await gql(client, """{ case(id: "CASE-KRK") { customer {
        cases { totalCount edges { node { id } } } summary { total } timeline { edges { node { caseId } } } } } }""",
                           KRK_ADVISOR)

    customer_view = body["data"]["case"]["customer"]
    assert customer_view["cases"] == {"totalCount": 1, "edges": [{"node": {"id": "CASE-KRK"}}]}
    assert customer_view["summary"] == {"total": 1}
    assert {e["node"]["caseId"] for e in customer_view["timeline"]["edges"]} == {"CASE-KRK"}
    assert_mentions_none_of(text, "CASE-WAW", "CASE-RESTRICTED")


def pesel_searcher() -> str:
    """A role that may search by PESEL and read cases (the policy may change which ones)."""
    return sorted(OPERATION_POLICY["Query.customerByPesel"] & CASE_READERS)[0]


async def test_customer_by_pesel_finds_only_customers_with_a_visible_case(
    client: TestClient, services: Services,
) -> None:
    await seed(services)
    krk = bearer(roles=(pesel_searcher(),), branch="KRK-01", channel="BRANCH")
    waw = bearer(roles=(pesel_searcher(),), branch="WAW-01", channel="BRANCH")
    query = "query ($pesel: String!) { customerByPesel(pesel: $pesel) { id name cases { totalCount } } }"

    foreign, text = await gql(client, query, krk, {"pesel": WAW_ONLY_PESEL})
    own, _ = await gql(client, query, krk, {"pesel": KRK_PESEL})
    control, _ = await gql(client, query, waw, {"pesel": WAW_ONLY_PESEL})

    assert foreign == {"data": {"customerByPesel": None}}
    assert_mentions_none_of(text, "CUST-2", "Zieliński")
    assert own == {"data": {"customerByPesel": {"id": "CUST-1", "name": "Anna Kowalska", "cases": {"totalCount": 1}}}}
    assert control == {"data": {"customerByPesel": {"id": "CUST-2", "name": "Jan Zieliński",
                                                    "cases": {"totalCount": 1}}}}


# --- federation ------------------------------------------------------------------------------------------

ENTITIES = """query ($representations: [_Any!]!) { _entities(representations: $representations) {
  ... on Case { id title customer { pesel } }
  ... on Customer { id name pesel }
  ... on Task { id name case { id } }
} }"""


@pytest.mark.parametrize("representation", [
    {"__typename": "Case", "id": "CASE-WAW"},
    {"__typename": "Case", "id": "CASE-RESTRICTED"},
    {"__typename": "Customer", "id": "CUST-2"},
    {"__typename": "Task", "id": "T-WAW"},
], ids=lambda r: f"{r['__typename']} {r['id']}")
async def test_entities_of_another_branch_resolve_to_null(
    client: TestClient, services: Services, representation: dict[str, Any],
) -> None:
    """A router reaches entities through `_entities`, never through Query.case: the scope must hold there too."""
    await seed(services)

    body, text = await gql(client, ENTITIES, KRK_ADVISOR, {"representations": [
        representation, {"__typename": "Case", "id": "CASE-KRK"}]})

    assert body == {"data": {"_entities": [None, {"id": "CASE-KRK", "title": "Kraków mortgage",
                                                  "customer": {"pesel": KRK_PESEL}}]}}
    assert_mentions_none_of(text, *WAW_TRACES)


async def test_an_entity_customer_shows_only_what_visible_cases_say_about_them(
    client: TestClient, services: Services,
) -> None:
    await seed(services)

    body, text = await gql(client, ENTITIES, KRK_ADVISOR, {"representations": [
        {"__typename": "Customer", "id": "CUST-1"}, {"__typename": "Task", "id": "T-KRK"}]})

    assert body == {"data": {"_entities": [
        {"id": "CUST-1", "name": "Anna Kowalska", "pesel": KRK_PESEL},
        {"id": "T-KRK", "name": "Task T-KRK", "case": {"id": "CASE-KRK"}}]}}
    assert_mentions_none_of(text, "Wiśniewska")


ENTITIES_REFUSED = {"data": None, "errors": [
    {"message": "_entities is not available to this caller", "extensions": {"code": "FORBIDDEN"}}]}


@pytest.mark.parametrize("role", sorted(set(ROLES) - OPERATION_POLICY["Query._entities"]))
async def test_a_role_that_reads_no_cases_is_refused_entities_whether_they_exist_or_not(
    client: TestClient, services: Services, database: Database, role: str,
) -> None:
    await seed(services)
    caller = bearer(roles=(role,))

    body, text = await gql(client, ENTITIES, caller, {"representations": [
        {"__typename": "Case", "id": "CASE-KRK"}, {"__typename": "Customer", "id": "CUST-1"},
        {"__typename": "Task", "id": "T-KRK"}]})
    nobody, _ = await gql(client, ENTITIES, caller, {"representations": [
        {"__typename": "Case", "id": "CASE-NOBODY-HAS"}, {"__typename": "Customer", "id": "CUST-NOBODY"},
        {"__typename": "Task", "id": "T-NOBODY"}]})

    assert body == nobody == ENTITIES_REFUSED
    assert_mentions_none_of(text, "Kraków", "Anna Kowalska", KRK_PESEL, "Task T-KRK")
    records = await database.collection("audit").find({"operation": "_entities"}).sort([("_id", 1)]).to_list(None)
    assert [(r["outcome"], r["caseIds"], r["customerIds"], r["fields"]) for r in records] == [
        ("denied", [], [], [])] * 2


@pytest.mark.parametrize("query", [
    """query ($representations: [_Any!]!) { ... on Query { _entities(representations: $representations) {
         ... on Case { id title customer { pesel } } } } }""",
    """query ($representations: [_Any!]!) { ...Entities }
       fragment Entities on Query { _entities(representations: $representations) { ... on Case { id title } } }""",
    """query ($representations: [_Any!]!) { me { id } ... on Query { ...Entities } }
       fragment Entities on Query { found: _entities(representations: $representations) { ... on Case { id } } }""",
], ids=["inline fragment on Query", "fragment spread", "aliased, in a spread inside an inline fragment"])
async def test_fragments_at_the_root_do_not_get_a_non_reader_to_entities(
    client: TestClient, services: Services, query: str,
) -> None:
    await seed(services)

    body, text = await gql(client, query, bearer(roles=("auditor",)),
                           {"representations": [{"__typename": "Case", "id": "CASE-KRK"}]})

    assert body == ENTITIES_REFUSED
    assert_mentions_none_of(text, "CASE-KRK", "Kraków", KRK_PESEL)


# --- restricted cases and case types: generated from the policy ------------------------------------------------

@pytest.mark.parametrize("role", sorted(CASE_READERS))
async def test_a_restricted_case_is_visible_only_to_the_restricted_case_roles(
    client: TestClient, services: Services, role: str,
) -> None:
    await seed(services)
    caller = bearer(roles=(role,), branch="KRK-01")

    case, _ = await gql(client, '{ case(id: "CASE-RESTRICTED") { id } }', caller)
    listed, _ = await gql(client, CASE_LIST, caller, {"filter": {"customerId": "CUST-1"}})
    entity, _ = await gql(client, ENTITIES, caller,
                          {"representations": [{"__typename": "Case", "id": "CASE-RESTRICTED"}]})

    visible = role in RESTRICTED_CASE_ROLES
    assert case == {"data": {"case": {"id": "CASE-RESTRICTED"} if visible else None}}
    assert [e["node"]["id"] for e in listed["data"]["cases"]["edges"]] == (
        ["CASE-KRK", "CASE-RESTRICTED"] if visible else ["CASE-KRK"])
    assert listed["data"]["cases"]["totalCount"] == (2 if visible else 1)
    assert (entity["data"]["_entities"] != [None]) is visible


def case_type_matrix() -> list[Any]:
    return [pytest.param(case_type, role, role in allowed, id=f"{case_type}-{role}")
            for case_type, allowed in CASE_TYPE_POLICY.items() for role in sorted(CASE_READERS)]


@pytest.mark.parametrize(("case_type", "role", "visible"), case_type_matrix())
async def test_a_case_type_is_visible_only_to_the_roles_its_policy_lists(
    client: TestClient, services: Services, case_type: str, role: str, visible: bool,
) -> None:
    await services.pipeline.ingest([
        created("CASE-TYPED", data={"caseType": case_type, "customer": customer("CUST-9", "Ewa Typed", KRK_PESEL)}),
    ])
    caller = bearer(roles=(role,))

    case, text = await gql(client, '{ case(id: "CASE-TYPED") { id caseType } }', caller)
    listed, _ = await gql(client, CASE_LIST, caller, {"filter": {"caseType": [case_type]}})
    person, _ = await gql(client, '{ customer(id: "CUST-9") { id } }', caller)

    assert case == {"data": {"case": {"id": "CASE-TYPED", "caseType": case_type} if visible else None}}
    assert listed["data"]["cases"]["totalCount"] == (1 if visible else 0)
    assert person == {"data": {"customer": {"id": "CUST-9"} if visible else None}}


# --- live feeds ----------------------------------------------------------------------------------------------

async def pushed_reads(database: Database, operation: str) -> list[list[str]]:
    records = await database.collection("audit").find({"operation": operation}).sort([("_id", 1)]).to_list(None)
    return [r["caseIds"] for r in records]


async def test_case_updated_pushes_nothing_of_another_branchs_case(
    client: TestClient, services: Services, database: Database, bus_watch: BusWatch,
) -> None:
    await seed(services)
    query = "subscription ($id: ID!) { caseUpdated(id: $id) { id status title } }"
    async with signed_in_socket(client, KRK_ADVISOR) as ws:
        # The foreign subscription first: had it been admitted, its push would come before the own one.
        for operation_id, case_id in (("foreign", "CASE-WAW"), ("restricted", "CASE-RESTRICTED"), ("own", "CASE-KRK")):
            await subscribe(ws, operation_id, query, {"id": case_id})
        await bus_watch.until_active(3)

        for minute, case_id in enumerate(("CASE-WAW", "CASE-RESTRICTED", "CASE-KRK"), start=50):
            await services.pipeline.ingest([status_changed(case_id, "IN_PROGRESS", time=at(minute))])
        first = await next_frame(ws)
        await services.pipeline.ingest([status_changed("CASE-WAW", "DECISION", time=at(60))])
        await services.pipeline.ingest([status_changed("CASE-KRK", "DECISION", time=at(61))])
        second = await next_frame(ws)

    assert first == {"id": "own", "type": "next", "payload": {"data": {"caseUpdated": {
        "id": "CASE-KRK", "status": "IN_PROGRESS", "title": "Kraków mortgage"}}}}
    assert second["id"] == "own" and second["payload"]["data"]["caseUpdated"]["status"] == "DECISION"
    assert await pushed_reads(database, "caseUpdated") == [["CASE-KRK"], ["CASE-KRK"]]


async def test_case_status_changed_feeds_only_the_callers_branch(
    client: TestClient, services: Services, database: Database, bus_watch: BusWatch,
) -> None:
    await seed(services)
    async with signed_in_socket(client, KRK_ADVISOR) as ws:
        await subscribe(ws, "feed", "subscription { caseStatusChanged { caseId customerId status } }")
        await bus_watch.until_active(1)

        # One queue for every case, in order: a foreign change, had it passed, would be the first frame.
        await services.pipeline.ingest([status_changed("CASE-WAW", "IN_PROGRESS", time=at(50))])
        await services.pipeline.ingest([status_changed("CASE-WAW-ONLY", "IN_PROGRESS", time=at(51))])
        await services.pipeline.ingest([status_changed("CASE-RESTRICTED", "IN_PROGRESS", time=at(52))])
        await services.pipeline.ingest([status_changed("CASE-KRK", "IN_PROGRESS", time=at(53))])
        first = await next_frame(ws)

    assert first == {"id": "feed", "type": "next", "payload": {"data": {"caseStatusChanged": {
        "caseId": "CASE-KRK", "customerId": "CUST-1", "status": "IN_PROGRESS"}}}}
    assert await pushed_reads(database, "caseStatusChanged") == [["CASE-KRK"]]


@pytest.mark.parametrize(("case_type", "role"), [
    (case_type, sorted(CASE_READERS - allowed)[0]) for case_type, allowed in CASE_TYPE_POLICY.items()
    if CASE_READERS - allowed])
async def test_case_status_changed_skips_case_types_the_role_may_not_see(
    client: TestClient, services: Services, bus_watch: BusWatch, case_type: str, role: str,
) -> None:
    await services.pipeline.ingest([
        created("CASE-HIDDEN", time=at(0), data={"caseType": case_type}),
        created("CASE-PLAIN", time=at(1), data={"caseType": "ACCOUNT_OPENING"}),
    ])
    async with signed_in_socket(client, bearer(roles=(role,))) as ws:
        await subscribe(ws, "feed", "subscription { caseStatusChanged { caseId caseType } }")
        await bus_watch.until_active(1)

        await services.pipeline.ingest([status_changed("CASE-HIDDEN", "IN_PROGRESS", time=at(2))])
        await services.pipeline.ingest([status_changed("CASE-PLAIN", "IN_PROGRESS", time=at(3))])
        first = await next_frame(ws)

    assert first["payload"]["data"] == {"caseStatusChanged": {"caseId": "CASE-PLAIN", "caseType": "ACCOUNT_OPENING"}}


# --- the same question from another caller: no answer is ever shared between callers ---------------------------

SAME_QUESTION = "query ($id: ID!) { case(id: $id) { id title customer { name pesel } } }"


@pytest.mark.parametrize(("first", "second", "case_id"), [
    (WAW_ADVISOR, KRK_ADVISOR, "CASE-WAW"),
    (bearer(roles=("team-manager", "case-reader"), branch="KRK-01", username="maria.wojcik"), KRK_ADVISOR,
     "CASE-RESTRICTED"),
    # the same person (same subject) with fewer roles in a newer token
    (bearer(roles=("team-manager", "case-reader"), branch="KRK-01", username="anna.krk"), KRK_ADVISOR,
     "CASE-RESTRICTED"),
], ids=["other branch", "restricted, other person", "restricted, same person with fewer roles"])
async def test_an_answer_given_to_one_caller_is_not_given_to_another_who_asks_the_same(
    client: TestClient, services: Services, first: dict[str, str], second: dict[str, str], case_id: str,
) -> None:
    await seed(services)
    seen, _ = await gql(client, SAME_QUESTION, first, {"id": case_id})
    assert seen["data"]["case"]["id"] == case_id

    again, text = await gql(client, SAME_QUESTION, second, {"id": case_id})

    assert again == {"data": {"case": None}}
    assert_mentions_none_of(text, case_id, "Warsaw", "Staff loan")


async def test_a_masked_answer_is_not_upgraded_and_a_full_one_not_reused_through_another_channel(
    client: TestClient, services: Services,
) -> None:
    """The same person through two channels (their tokens' claims) gets two answers, and a channel named only by
    the X-Channel header never upgrades a masked one."""
    await seed(services)
    query = '{ case(id: "CASE-KRK") { customer { pesel } } }'

    def advisor(channel: str | None = None) -> dict[str, str]:
        return bearer(roles=("advisor",), branch="KRK-01", username="anna.krk", channel=channel)

    full = await client.post("/graphql", json={"query": query}, headers=advisor("BRANCH"))
    online = await client.post("/graphql", json={"query": query}, headers=advisor("ONLINE"))
    branch_again = await client.post("/graphql", json={"query": query}, headers=advisor("BRANCH"))
    claimed_by_header = await client.post("/graphql", json={"query": query}, headers=advisor() | {"X-Channel": "BRANCH"})

    assert await full.json() == {"data": {"case": {"customer": {"pesel": KRK_PESEL}}}}
    assert await online.json() == {"data": {"case": {"customer": {"pesel": "*******7819"}}}}
    assert await claimed_by_header.json() == {"data": {"case": {"customer": {"pesel": "*******7819"}}}}
    assert await branch_again.json() == {"data": {"case": {"customer": {"pesel": KRK_PESEL}}}}


async def test_a_case_moved_out_of_the_callers_branch_disappears_on_the_next_read(
    client: TestClient, services: Services,
) -> None:
    await seed(services)
    before, _ = await gql(client, SAME_QUESTION, KRK_ADVISOR, {"id": "CASE-KRK"})
    assert before["data"]["case"]["id"] == "CASE-KRK"

    await services.pipeline.ingest([updated("CASE-KRK", {"branch": "WAW-01"}, time=at(90))])
    after, _ = await gql(client, SAME_QUESTION, KRK_ADVISOR, {"id": "CASE-KRK"})

    assert after == {"data": {"case": None}}


