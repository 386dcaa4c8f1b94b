"""Query limits (CONTRACT §4): depth, aliases, tokens and cost reject with QUERY_TOO_COMPLEX before any resolver.

The app is server.create_app as it is wired (build_schema adds schema/limits.py's extensions). "No resolver
ran" is proven by the store's round-trip counter for the case and event collections, next to a control
query within the limits that does reach them.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from auth.dev_tokens import mint_dev_token
from schema.limits import QueryLimits, limit_extensions
from server import create_app
from settings import Settings
from stores.database import Database
from tests.factories import created, task_created
from tests.live import next_frame, signed_in_socket, subscribe

OPERATIONS = Path(__file__).parents[1] / "graphql" / "operations"
TIMEOUT = 5


def too_complex(message: str, limit: str, line: int = 1, column: int = 1) -> dict[str, Any]:
    """The response to a refused operation, as a client sees it."""
    return {"data": None, "errors": [{"message": message, "locations": [{"line": line, "column": column}],
                                      "extensions": {"code": "QUERY_TOO_COMPLEX", "limit": limit}}]}


def case_reads(database: Database) -> dict[str, int]:
    """Round trips to the case and event collections (the audit trail records refusals too)."""
    return {k: n for k, n in database.round_trips.by_operation.items() if k.startswith(("cases.", "events."))}


@pytest.fixture
def introspection() -> bool:
    return False


@pytest.fixture
def settings(introspection: bool) -> Settings:
    # The relay's periodic pass (every second by default) reads the case collection: kept out of the counts.
    return Settings(demo_data=False, graphql_introspection=introspection, outbox_relay_seconds=3600.0)


@pytest.fixture
async def client(settings: Settings, database: Database) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings, database))) as test_client:
        yield test_client


@pytest.fixture
def advisor(settings: Settings) -> dict[str, str]:
    """A Kraków branch advisor, who may read the test cases (branch KRK-01)."""
    return {"Authorization": f"Bearer {mint_dev_token(settings, 'advisor')}"}


@pytest.fixture(autouse=True)
def round_trips_from_zero(client: TestClient, database: Database) -> None:
    database.round_trips.reset()  # the app's startup created indexes


@pytest.fixture
async def case_with_task(services: Any, database: Database) -> None:
    await services.pipeline.ingest([created("CASE-1"), task_created("CASE-1", "T-1")])
    database.round_trips.reset()


Post = Callable[..., Any]


@pytest.fixture
def post(client: TestClient, advisor: dict[str, str]) -> Post:
    async def post(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                                     headers=advisor)
        assert response.status == 200
        return await response.json()

    return post


# case 1, customer 2, cases 3, edges 4, node 5, customer 6, cases 7, edges 8, node 9, id 10
DEPTH_10 = """{ case(id: "CASE-1") { customer { cases(first: 1) { edges { node {
  customer { cases(first: 1) { edges { node { id } } } } } } } } } }"""
# ... node 9, tasks 10, case 11, id 12
DEPTH_12 = DEPTH_10.replace("node { id }", "node { tasks { case { id } } }")


# --- depth ---

async def test_a_query_deeper_than_10_is_refused_before_any_resolver_runs(
    post: Post, database: Database, case_with_task: None,
) -> None:
    result = await post(DEPTH_12)

    assert result == too_complex("query depth 12 exceeds the limit of 10", "depth")
    assert case_reads(database) == {}


async def test_a_query_10_deep_is_answered(post: Post, database: Database, case_with_task: None) -> None:
    result = await post(DEPTH_10)

    assert result == {"data": {"case": {"customer": {"cases": {"edges": [{"node": {
        "customer": {"cases": {"edges": [{"node": {"id": "CASE-1"}}]}}}}]}}}}}
    assert case_reads(database) != {}


async def test_depth_counts_through_fragments_and_inline_fragments(post: Post, database: Database) -> None:
    query = """
    query Deep { case(id: "CASE-1") { ...Tasks } }
    fragment Tasks on Case { tasks { case { ... on Case { tasks { ...MoreTasks } } } } }
    fragment MoreTasks on Task { case { tasks { case { ... { tasks { case { tasks { case { id } } } } } } } } }
    """

    result = await post(query)

    assert result == too_complex("query depth 12 exceeds the limit of 10", "depth", line=2, column=5)
    assert case_reads(database) == {}


# --- aliases ---

async def test_aliases_are_counted_through_fragments_once_per_spread(post: Post, database: Database) -> None:
    aliased = " ".join(f"t{i}: title" for i in range(10))
    query = f"""
    {{ one: case(id: "CASE-1") {{ ...Titles }} two: case(id: "CASE-2") {{ ...Titles }} }}
    fragment Titles on Case {{ {aliased} }}
    """

    result = await post(query)

    assert result == too_complex("query alias count 22 exceeds the limit of 15", "alias count", line=2, column=5)
    assert case_reads(database) == {}


async def test_15_aliases_are_answered(post: Post, case_with_task: None) -> None:
    aliased = " ".join(f"t{i}: title" for i in range(15))

    result = await post(f'{{ case(id: "CASE-1") {{ {aliased} }} }}')

    assert result == {"data": {"case": {f"t{i}": "Mortgage for a flat" for i in range(15)}}}


async def test_a_fragment_bomb_is_measured_in_linear_time(post: Post, database: Database) -> None:
    # 40 fragments, each spreading the next twice: 2**40 aliased fields if expanded.
    fragments = " ".join(f"fragment F{i} on Case {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    query = f'{{ case(id: "CASE-1") {{ ...F0 }} }} {fragments} fragment F40 on Case {{ t: title }}'

    started = time.perf_counter()
    result = await post(query)

    assert result == too_complex(f"query alias count {2 ** 40} exceeds the limit of 15", "alias count")
    # Expanding the spreads, as Strawberry's MaxAliasesLimiter does, takes 1.5 s at 20 fragments, days at 40.
    assert time.perf_counter() - started < TIMEOUT
    assert case_reads(database) == {}


# --- tokens ---

def tokens_query(comments: int) -> str:
    """11 tokens, and one more per comment line: comments count, or they would be free to send."""
    return '{ case(id: "CASE-1") { title }\n' + "# a comment\n" * comments + "}"


async def test_a_document_of_2000_tokens_is_answered(post: Post, case_with_task: None) -> None:
    result = await post(tokens_query(1989))

    assert result == {"data": {"case": {"title": "Mortgage for a flat"}}}


async def test_a_document_over_2000_tokens_is_refused_while_parsing(post: Post, database: Database) -> None:
    result = await post(tokens_query(1990))

    assert result == {"data": None, "errors": [{
        "message": "query token count exceeds the limit of 2000",
        "locations": [{"line": 1992, "column": 1}],
        "extensions": {"code": "QUERY_TOO_COMPLEX", "limit": "token count"}}]}
    assert case_reads(database) == {}


# --- cost ---

LIST_WITH_TASKS = """
query List($first: Int) { cases(first: $first) { edges { node { id customer { id } tasks { id } } } } }
"""


async def test_a_list_multiplies_the_cost_of_its_items_by_first(post: Post, database: Database) -> None:
    # cases + edges + 5000 x (node, id, customer, customer.id, tasks) + 5000 x 20 x tasks.id
    result = await post(LIST_WITH_TASKS, {"first": 5000})

    assert result == too_complex("query cost 125002 exceeds the limit of 50000", "cost", line=2, column=1)
    assert case_reads(database) == {}


async def test_a_page_of_500_cases_with_customer_and_tasks_is_answered(
    post: Post, database: Database, case_with_task: None,
) -> None:
    result = await post(LIST_WITH_TASKS.replace("($first: Int)", "").replace("$first", "500"))

    assert result == {"data": {"cases": {"edges": [
        {"node": {"id": "CASE-1", "customer": {"id": "CUST-1"}, "tasks": [{"id": "T-1"}]}}]}}}


@pytest.mark.parametrize("operation", ["case_detail", "case_list", "customer_360"])
async def test_the_published_operations_pass_the_limits_with_the_largest_pages(post: Post, operation: str) -> None:
    largest = {"id": "CASE-1", "historyFirst": 500, "first": 500, "casesFirst": 500, "timelineFirst": 500}

    result = await post((OPERATIONS / f"{operation}.graphql").read_text(), largest)

    assert "errors" not in result


async def test_a_variable_default_for_first_is_honoured(post: Post, database: Database) -> None:
    query = LIST_WITH_TASKS.replace("$first: Int", "$first: Int = 5000")

    result = await post(query)

    assert result == too_complex("query cost 125002 exceeds the limit of 50000", "cost", line=2, column=1)


async def test_entities_cost_as_many_as_their_representations(post: Post, database: Database) -> None:
    # What a federation router sends: one representation per case it needs, each with a history page.
    query = """
    query Entities($representations: [_Any!]!) {
      _entities(representations: $representations) {
        ... on Case { history(first: 100) { edges { node { id kind summary } } } }
      }
    }"""
    # 90: within the 100 representations a request may carry (tests/test_request_bounds.py), over the cost.
    many = [{"__typename": "Case", "id": f"CASE-{i}"} for i in range(90)]

    refused = await post(query, {"representations": many})
    answered = await post(query, {"representations": many[:10]})

    # _entities + 90 x (history, a store read per case: 1 + 250, + edges) + 90 x 100 x (node, id, kind, summary)
    assert refused == too_complex("query cost 58681 exceeds the limit of 50000", "cost", line=2, column=5)
    assert answered == {"data": {"_entities": [None] * 10}}


# --- the caches ---

async def test_a_refused_document_is_refused_again_when_parse_and_validation_come_from_the_caches(
    post: Post, database: Database,
) -> None:
    deep = DEPTH_12
    tokens = "{ " + "__typename " * 2001 + "}"

    first = [await post(deep), await post(LIST_WITH_TASKS, {"first": 5000}), await post(tokens)]
    again = [await post(deep), await post(LIST_WITH_TASKS, {"first": 5000}), await post(tokens)]

    assert again == first
    assert [r["errors"][0]["extensions"]["code"] for r in again] == ["QUERY_TOO_COMPLEX"] * 3
    assert case_reads(database) == {}


async def test_the_same_document_is_measured_with_each_requests_variables(post: Post, case_with_task: None) -> None:
    # The cached document passed validation; only the variables change the cost.
    small = await post(LIST_WITH_TASKS, {"first": 5})
    large = await post(LIST_WITH_TASKS, {"first": 5000})

    assert small["data"]["cases"]["edges"][0]["node"]["id"] == "CASE-1"
    assert large["errors"][0]["message"] == "query cost 125002 exceeds the limit of 50000"


# --- introspection and suggestions ---

async def test_without_introspection_schema_and_type_are_refused_but_typename_is_answered(post: Post) -> None:
    schema = await post("{ __schema { queryType { name } } }")
    type_ = await post('{ __type(name: "Case") { name } }')
    typename = await post("{ __typename }")

    assert schema["data"] is None
    assert [e["message"] for e in schema["errors"]][0] == (
        "GraphQL introspection has been disabled, but the requested query contained the field '__schema'.")
    assert [e["message"] for e in type_["errors"]] == [
        "GraphQL introspection has been disabled, but the requested query contained the field '__type'."]
    assert typename == {"data": {"__typename": "Query"}}


async def test_without_introspection_errors_suggest_no_field_names(post: Post) -> None:
    result = await post('{ case(id: "CASE-1") { titel } cases(frist: 1) { totalCount } }')

    # Not even the type or field names: the schema is not described here
    assert [e["message"] for e in result["errors"]] == [
        "the document or its variables do not match the schema (it is not described here)"] * 2
    assert [e["extensions"]["code"] for e in result["errors"]] == ["BAD_USER_INPUT"] * 2


async def test_without_introspection_variable_errors_suggest_no_enum_values(post: Post) -> None:
    query = "query($order: CaseOrderInput) { cases(orderBy: $order) { totalCount } }"

    result = await post(query, {"order": {"field": "UPDATE_AT"}})

    assert [e["message"] for e in result["errors"]] == [
        "the document or its variables do not match the schema (it is not described here)"]


@pytest.mark.parametrize("introspection", [True])
async def test_with_introspection_the_ide_can_introspect_and_errors_keep_suggestions(post: Post) -> None:
    from graphql import get_introspection_query

    introspected = await post(get_introspection_query(descriptions=True))
    suggested = await post('{ case(id: "CASE-1") { titel } }')

    assert "errors" not in introspected
    assert introspected["data"]["__schema"]["queryType"] == {"name": "Query", "kind": "OBJECT"}
    assert [e["message"] for e in suggested["errors"]] == [
        "Cannot query field 'titel' on type 'Case'. Did you mean 'title' or 'notes'?"]


# --- subscriptions (WebSocket) ---

async def test_a_subscription_over_the_limits_is_refused_before_it_subscribes(
    client: TestClient, advisor: dict[str, str], services: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscribed: list[str | None] = []
    monkeypatch.setattr(services.bus, "subscribe", lambda case_id=None: subscribed.append(case_id))
    deep = "subscription { caseUpdated(id: \"CASE-1\") { tasks { case { tasks { case { tasks { case { " \
           "tasks { case { tasks { id } } } } } } } } } } }"
    costly = "subscription { caseUpdated(id: \"CASE-1\") { tasks { case { history(first: 500) { " \
             "edges { node { id kind actor { id name type } summary at } } } } } } }"
    async with signed_in_socket(client, advisor) as ws:
        await subscribe(ws, "deep", deep)
        deep_reply = await next_frame(ws)
        await subscribe(ws, "costly", costly)
        costly_replies = [await next_frame(ws), await next_frame(ws)]

    assert deep_reply == {"id": "deep", "type": "error", "payload": [{
        "message": "query depth 11 exceeds the limit of 10", "locations": [{"line": 1, "column": 1}],
        "extensions": {"code": "QUERY_TOO_COMPLEX", "limit": "depth"}}]}
    # The cost is checked when execution starts, so it comes as a result with errors, then completion.
    # caseUpdated, tasks, 20 x (case, history (+ 250: a store read per case), edges),
    # 20 x 500 x (node, id, kind, actor + 3, summary, at)
    assert costly_replies == [
        {"id": "costly", "type": "next", "payload": {"data": None, "errors": [{
            "message": "query cost 95062 exceeds the limit of 50000", "locations": [{"line": 1, "column": 1}],
            "extensions": {"code": "QUERY_TOO_COMPLEX", "limit": "cost"}}]}},
        {"id": "costly", "type": "complete"}]
    assert subscribed == []


async def test_without_introspection_a_subscription_error_suggests_no_field_names(
    client: TestClient, advisor: dict[str, str],
) -> None:
    async with signed_in_socket(client, advisor) as ws:
        await subscribe(ws, "typo", 'subscription { caseUpdated(id: "CASE-1") { titel } }')
        reply = await next_frame(ws)

    assert (reply["type"], [e["message"] for e in reply["payload"]]) == (
        "error", ["the document or its variables do not match the schema (it is not described here)"])


async def test_a_subscription_over_2000_tokens_is_refused_with_an_error(
    client: TestClient, advisor: dict[str, str],
) -> None:
    query = 'subscription { caseUpdated(id: "CASE-1") { id } }' + "\n# a comment" * 1989  # 12 + 1989 tokens
    async with signed_in_socket(client, advisor) as ws:
        await subscribe(ws, "long", query)
        reply = await next_frame(ws)

    assert reply == {"id": "long", "type": "error", "payload": [{
        "message": "query token count exceeds the limit of 2000", "locations": [{"line": 1990, "column": 1}],
        "extensions": {"code": "QUERY_TOO_COMPLEX", "limit": "token count"}}]}


# --- what the extensions cost ---

async def test_the_limits_add_no_per_field_resolve_hook() -> None:
    extensions = [factory() for factory in limit_extensions(QueryLimits(), introspection=False)]

    assert [type(e).__name__ for e in extensions if e._implements_resolve()] == []


async def test_a_list_that_would_read_every_customers_own_cases_is_too_complex(client) -> None:
    """`Customer.cases` and `timeline` cost one store read per customer: under a long list they are refused."""
    from tests.factories import bearer

    query = ("{ cases(first: 200) { edges { node { customer { cases(first: 1) { totalCount } "
             "timeline(first: 1) { edges { cursor } } } } } } }")
    response = await client.post("/graphql", json={"query": query}, headers=bearer())
    body = await response.json()

    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]
