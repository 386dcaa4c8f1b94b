"""Bounds on what one request may ask for (issue 11, items 4 and 9), over real HTTP and WebSocket.

Argument values (literal or in variables) are measured before anything runs (schema/input_limits.py): a refusal
is QUERY_TOO_COMPLEX naming the argument and the limit, and reaches no store. `_entities` resolves each distinct
representation once. The response cache is bounded in bytes, and a WebSocket message like an HTTP body.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from edge.app import MAX_BODY_BYTES
from edge.response_cache import ResponseCache
from edge.view import MAX_MESSAGE_BYTES
from settings import Settings
from stores.database import Database
from tests.factories import BASE_TIME, action_recorded, created, task_created
from tests.live import TIMEOUT, next_frame, signed_in_socket, subscribe

CASES = "query ($filter: CaseFilter) { cases(filter: $filter, first: 10) { totalCount } }"
TASKS = "query ($filter: TaskFilter) { tasks(filter: $filter) { totalCount } }"
ENTITIES = """query ($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on Case { id history(first: 5) { totalCount edges { node { id } } } }
  }
}"""


def refused(message: str, limit: str, line: int = 1, column: int = 1) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message, "locations": [{"line": line, "column": column}],
                                      "extensions": {"code": "QUERY_TOO_COMPLEX", "limit": limit}}]}


def store_reads(database: Database) -> dict[str, int]:
    """Round trips to anything but the audit trail (which records refusals too)."""
    return {k: n for k, n in database.round_trips.by_operation.items() if not k.startswith("audit.")}


def nested_or(levels: int) -> dict[str, Any]:
    """`{or: [{or: [... {status: ["NEW"]} ...]}]}`, `levels` input objects deep."""
    filter_: dict[str, Any] = {"status": ["NEW"]}
    for _ in range(levels - 1):
        filter_ = {"or": [filter_]}
    return filter_


# --- filters: size, nesting, search text -------------------------------------------------------------------

@pytest.mark.parametrize(("filter_", "message", "limit"), [
    # The attack of the review: a long `or` (28 KB of clauses in one variable).
    ({"or": [{"status": [f"S{i}"], "text": f"t{i}"} for i in range(400)]},
     "filter.or has 400 items: the list length limit is 100", "list length"),
    ({"status": [f"S{i}" for i in range(101)]}, "filter.status has 101 items: the list length limit is 100",
     "list length"),
    (nested_or(5), "filter.or.or.or.or nests 5 levels: the input depth limit is 4", "input depth"),
    ({"and": [{"or": [{"status": ["NEW"] * 4}] * 50}] * 2},
     "the arguments hold too many input objects and list items: the input size limit is 500", "input size"),
    ({"text": "x" * 201}, "filter.text has 201 characters: the search text length limit is 200",
     "search text length"),
    ({"or": [{"text": "y" * 300}]}, "filter.or.text has 300 characters: the search text length limit is 200",
     "search text length"),
])
async def test_a_filter_beyond_a_bound_is_refused_before_any_store_read(
    gql: Any, services: Any, database: Database, filter_: dict[str, Any], message: str, limit: str,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    database.round_trips.reset()

    result = await gql(CASES, {"filter": filter_})

    assert result == refused(message, limit, column=37)
    assert store_reads(database) == {}


async def test_a_filter_at_the_bounds_is_answered(gql: Any, services: Any) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    # 100 clauses, each an input object with a list of 3 and a 200-character text: 400 items, 4 levels deep.
    at_bounds = {"and": [{"or": [{"status": ["NEW", "A", "B"], "text": "z" * 200} for _ in range(99)]
                                 + [{"and": [{"status": ["NEW"]}]}]}]}

    assert await gql(CASES, {"filter": at_bounds}) == {"data": {"cases": {"totalCount": 1}}}


async def test_bounds_hold_for_literal_arguments_too(gql: Any, services: Any, database: Database) -> None:
    statuses = ", ".join(f'"S{i}"' for i in range(101))
    deep = '{or: [{or: [{or: [{or: [{status: ["NEW"]}]}]}]}]}'
    long_id = "C" * 10_001
    database.round_trips.reset()

    too_long_list = await gql(f"{{ cases(filter: {{status: [{statuses}]}}) {{ totalCount }} }}")
    too_deep = await gql(f"{{ cases(filter: {deep}) {{ totalCount }} }}")
    too_long_string = await gql(f'{{ case(id: "{long_id}") {{ id }} }}')

    assert too_long_list == refused("filter.status has 101 items: the list length limit is 100", "list length",
                                    column=9)
    assert too_deep == refused("filter.or.or.or.or nests 5 levels: the input depth limit is 4", "input depth",
                               column=9)
    assert too_long_string == refused("id has 10001 characters: the string length limit is 10000",
                                      "string length", column=8)
    assert store_reads(database) == {}


async def test_every_list_argument_is_bounded_not_only_the_case_filter(gql: Any, database: Database) -> None:
    database.round_trips.reset()

    result = await gql(TASKS, {"filter": {"candidateGroup": [f"group-{i}" for i in range(150)]}})

    assert result == refused("filter.candidateGroup has 150 items: the list length limit is 100", "list length",
                             column=37)
    assert store_reads(database) == {}


async def test_a_subscription_with_an_argument_beyond_a_bound_is_refused(client: TestClient) -> None:
    from tests.factories import bearer

    query = "subscription ($caseType: String) { caseStatusChanged(caseType: $caseType) { caseId } }"
    async with signed_in_socket(client, bearer()) as ws:
        await subscribe(ws, "s-1", query, {"caseType": "M" * 10_001})
        frame = await next_frame(ws)

    assert frame == {"id": "s-1", "type": "next", "payload": {"data": None, "errors": [{
        "message": "caseType has 10001 characters: the string length limit is 10000",
        "locations": [{"line": 1, "column": 54}],
        "extensions": {"code": "QUERY_TOO_COMPLEX", "limit": "string length"}}]}}


# --- _entities: a cap, and duplicates resolved once ----------------------------------------------------------

async def test_more_representations_than_a_page_of_references_are_refused(gql: Any, database: Database) -> None:
    many = [{"__typename": "Case", "id": f"CASE-{i}"} for i in range(101)]
    database.round_trips.reset()

    result = await gql(ENTITIES, {"representations": many})

    assert result == refused("representations has 101 items: the list length limit is 100", "list length",
                             line=2, column=13)
    assert store_reads(database) == {}


async def test_repeated_representations_are_resolved_once_and_answered_for_each(
    gql: Any, services: Any, database: Database,
) -> None:
    await services.pipeline.ingest([created("CASE-1", event_id="c1-created"), created("CASE-2", event_id="c2-created"),
                                    task_created("CASE-1", "T-1", event_id="c1-task")])
    # Twenty copies of one key (in two key orders), one of another, one of a case that does not exist.
    same = [{"__typename": "Case", "id": "CASE-1"}, {"id": "CASE-1", "__typename": "Case"}] * 10
    representations = [*same, {"__typename": "Case", "id": "CASE-2"}, {"__typename": "Case", "id": "CASE-404"}]
    database.round_trips.reset()

    result = await gql(ENTITIES, {"representations": representations})

    case_1 = {"id": "CASE-1", "history": {"totalCount": 2, "edges": [{"node": {"id": "c1-task"}},
                                                                      {"node": {"id": "c1-created"}}]}}
    case_2 = {"id": "CASE-2", "history": {"totalCount": 1, "edges": [{"node": {"id": "c2-created"}}]}}
    assert result == {"data": {"_entities": [case_1] * 20 + [case_2, None]}}
    # One read of the cases for all 22, and one history page (and count) per distinct case found.
    reads = store_reads(database)
    assert (reads["history.find"], reads["history.count_documents"]) == (2, 2)
    assert sum(n for k, n in reads.items() if k.startswith("cases.")) == 1


# --- the response cache: bounded in bytes --------------------------------------------------------------------

# Long answers come from contact notes (free text: up to 4,000 characters each at ingest).
CASE_DETAIL = "query ($id: ID!) { case(id: $id) { id history(first: 2) { edges { node { summary } } } } }"
SUMMARY = "T" * 700


async def _case_with_notes(services: Any, case_id: str, *summaries: str) -> None:
    await services.pipeline.ingest([created(case_id, time=BASE_TIME)] + [
        action_recorded(case_id, f"A-{n}", BASE_TIME + timedelta(minutes=n + 1), summary=summary,
                        time=BASE_TIME + timedelta(minutes=n + 1))
        for n, summary in enumerate(summaries)])


@pytest.fixture
def settings() -> Settings:
    # Three cached answers of a 700-character summary fit in 5,000 bytes (about 1.5 KB each, key included).
    return Settings(demo_data=False, outbox_relay_seconds=3600.0, response_cache_max_bytes=5_000)


async def test_the_response_cache_holds_no_more_bytes_than_its_bound(
    gql: Any, services: Any, client: TestClient, database: Database,
) -> None:
    for n in range(1, 7):
        await _case_with_notes(services, f"CASE-{n}", f"{n} {SUMMARY}")

    for n in range(1, 7):
        await gql(CASE_DETAIL, {"id": f"CASE-{n}"})

    cache = services.responses
    assert 0 < cache.bytes <= 5_000
    assert len(cache) == 3
    metrics = await (await client.get("/metrics")).text()
    assert f"case_repository_response_cache_bytes {float(cache.bytes)}" in metrics
    # The newest answers stayed, the oldest went: reading CASE-6 again reads no case, CASE-1 does.
    database.round_trips.reset()
    await gql(CASE_DETAIL, {"id": "CASE-6"})
    assert store_reads(database) == {}
    await gql(CASE_DETAIL, {"id": "CASE-1"})
    assert store_reads(database) != {}


async def test_an_answer_larger_than_the_whole_bound_is_not_cached(gql: Any, services: Any) -> None:
    await _case_with_notes(services, "CASE-1", "L" * 3_000, "M" * 3_000)

    answer = await gql(CASE_DETAIL, {"id": "CASE-1"})

    assert answer == {"data": {"case": {"id": "CASE-1", "history": {"edges": [
        {"node": {"summary": "M" * 3_000}}, {"node": {"summary": "L" * 3_000}}]}}}}
    assert (len(services.responses), services.responses.bytes) == (0, 0)


def test_the_byte_bound_is_a_setting_with_the_contract_default() -> None:
    assert Settings.from_env({}).response_cache_max_bytes == 64 * 1024 * 1024
    assert Settings.from_env({"RESPONSE_CACHE_MAX_BYTES": "1048576"}).response_cache_max_bytes == 1_048_576


def test_eviction_by_bytes_drops_the_least_recently_used_first() -> None:
    cache = ResponseCache(ttl_seconds=60, max_bytes=3_000, clock=lambda: 0.0)

    def put(name: str) -> None:
        cache.put(("caller", name, None, b"{}"), {"case": {"title": name * 900}}, case_ids={name},
                  customer_ids=set(), fields=set(), looked_up=set(), computed_since=0)

    put("a")
    put("b")
    assert cache.get(("caller", "a", None, b"{}")) is not None  # a is now the most recently used
    put("c")

    assert cache.get(("caller", "b", None, b"{}")) is None
    assert cache.get(("caller", "a", None, b"{}")) is not None
    assert cache.get(("caller", "c", None, b"{}")) is not None
    assert cache.bytes <= 3_000


# --- WebSocket messages: bounded like an HTTP body ---------------------------------------------------------------

def test_a_websocket_message_is_bounded_like_an_http_body() -> None:
    assert MAX_MESSAGE_BYTES == MAX_BODY_BYTES == 1024 * 1024


@pytest.mark.parametrize("padding", ["variables", "query"])
async def test_a_subscribe_message_over_1_mib_closes_the_socket_with_4400(client: TestClient, padding: str) -> None:
    from tests.factories import bearer

    query = "subscription ($id: ID!) { caseUpdated(id: $id) { id } }"
    variables: dict[str, Any] = {"id": "CASE-1"}
    if padding == "variables":
        variables["padding"] = "p" * MAX_MESSAGE_BYTES
    else:
        query += " " * MAX_MESSAGE_BYTES
    async with signed_in_socket(client, bearer()) as ws:
        await subscribe(ws, "big", query, variables)
        closing = await ws.receive(timeout=TIMEOUT)

    assert closing.type is WSMsgType.CLOSE
    assert (closing.data, closing.extra) == (4400, "Message larger than 1048576 bytes")


async def test_a_message_under_the_bound_is_served(client: TestClient) -> None:
    from tests.factories import bearer

    async with signed_in_socket(client, bearer()) as ws:
        await ws.send_json({"type": "ping", "payload": {"padding": "p" * (MAX_MESSAGE_BYTES - 1024)}})
        assert (await next_frame(ws))["type"] == "pong"
