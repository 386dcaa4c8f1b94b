"""GraphQL in /metrics, as an operator graphs it: operations by a bounded name and their outcome (a GraphQL error
is not an HTTP error, so HTTP status alone says 200), latency by operation, the response cache's hits and misses,
and the audit append latency every request pays; over WebSocket, each subscribe message as an operation."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from context import Services
from edge.operations import OperationLabels
from tests.factories import bearer, created, status_changed
from tests.live import BusWatch, next_frame, signed_in_socket, subscribe
from tests.test_health_metrics import scrape

FIND_CASE = "query FindCase($id: ID!) { case(id: $id) { id } }"


def operations(operation: str, outcome: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return "case_repository_graphql_operations_total", (("operation", operation), ("outcome", outcome))


def latency_count(operation: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return "case_repository_graphql_operation_seconds_count", (("operation", operation),)


def grown(before: dict[Any, float], after: dict[Any, float], *keys: Any) -> list[float]:
    return [after.get(key, 0.0) - before.get(key, 0.0) for key in keys]


async def test_operations_are_counted_by_name_and_outcome(client: TestClient, services: Services) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    before = await scrape(client)

    await client.post("/graphql", json={"query": FIND_CASE, "variables": {"id": "CASE-1"}}, headers=bearer())
    await client.post("/graphql", json={"query": FIND_CASE, "variables": {"id": "CASE-1"}})  # anonymous caller
    await client.post("/graphql", json={"query": '{ case(id: "CASE-1") { id } }'}, headers=bearer())
    await client.post("/graphql", json={"query": "{ case(id: "})  # does not parse

    after = await scrape(client)
    assert grown(before, after, operations("FindCase", "ok"), operations("FindCase", "UNAUTHENTICATED"),
                 operations("anonymous", "ok"), operations("other", "BAD_USER_INPUT")) == [1.0, 1.0, 1.0, 1.0]
    assert grown(before, after, latency_count("FindCase"), latency_count("anonymous"), latency_count("other")) == [
        2.0, 1.0, 1.0]
    # The same requests, as HTTP sees them: four 200s, whatever GraphQL said.
    graphql_200 = ("case_repository_http_requests_total", (("path", "/graphql"), ("status", "200")))
    assert grown(before, after, graphql_200) == [4.0]


async def test_a_name_the_document_does_not_define_never_becomes_a_label(client: TestClient) -> None:
    before = await scrape(client)

    response = await client.post("/graphql", json={"query": "query Real { __typename }", "operationName": "Invented"})

    assert (response.status, await response.json()) == (400, {"errors": [
        {"message": 'Unknown operation named "Invented".', "extensions": {"code": "BAD_USER_INPUT"}}]})
    assert not [key for key in await scrape(client) if key not in before and "Invented" in str(key)]


async def test_a_refusal_before_graphql_is_not_an_operation(client: TestClient) -> None:
    before = await scrape(client)

    await client.post("/graphql", data=b"{}", headers={"Content-Type": "text/plain"})

    after = await scrape(client)
    assert sum(v for (name, _), v in after.items() if name == "case_repository_graphql_operations_total") == sum(
        v for (name, _), v in before.items() if name == "case_repository_graphql_operations_total")


def test_labels_are_the_documents_names_truncated_masked_and_limited() -> None:
    labels = OperationLabels(limit=3)

    assert [labels.label("query A { x }", None), labels.label("query B { x } query C { x }", "C"),
            labels.label("{ x }", None), labels.label("query " + "L" * 80 + " { x }", None),
            labels.label("query D { x }", None), labels.label("query A { x }", None),
            labels.label("query Pesel85031207819 { x }", None), labels.label("query B { x } query C { x }", None),
            labels.label(None, None), labels.label("query {", None)] == [
        "A", "C", "anonymous", "L" * 64, "other", "A", "other", "other", "other", "other"]
    assert OperationLabels().label("query Pesel85031207819 { x }", None) == "Pesel#"


async def test_the_response_cache_counts_hits_and_misses(client: TestClient, services: Services) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    hits = ("case_repository_response_cache_hits_total", ())
    misses = ("case_repository_response_cache_misses_total", ())
    before = await scrape(client)

    for _ in range(3):
        await client.post("/graphql", json={"query": FIND_CASE, "variables": {"id": "CASE-1"}}, headers=bearer())

    assert grown(before, await scrape(client), hits, misses) == [2.0, 1.0]


async def test_every_audit_append_is_timed(client: TestClient, services: Services) -> None:
    appends = ("case_repository_audit_append_seconds_count", ())
    before = await scrape(client)

    await client.post("/graphql", json={"query": FIND_CASE, "variables": {"id": "CASE-404"}}, headers=bearer())
    await client.post("/graphql", json={"query": FIND_CASE, "variables": {"id": "CASE-405"}}, headers=bearer())

    assert grown(before, await scrape(client), appends) == [2.0]


async def test_the_operators_other_metrics_are_exposed(client: TestClient) -> None:
    names = {name for name, _ in await scrape(client)}

    assert {"case_repository_live_subscribers", "case_repository_outbox_backlog",
            "case_repository_audit_append_seconds_bucket",
            "case_repository_response_cache_hits_total", "case_repository_response_cache_misses_total"} <= names


# --- over WebSocket: one operation per subscribe message, counted when it ends, never per push ----------------

WATCH_CASE = 'subscription WatchCase { caseUpdated(id: "CASE-1") { id stage } }'


def socket_operations(operation: str, kind: str, outcome: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return "case_repository_graphql_ws_operations_total", (("operation", operation), ("outcome", outcome),
                                                           ("type", kind))


def socket_operations_open(operation: str, kind: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return "case_repository_graphql_ws_operations_open", (("operation", operation), ("type", kind))


async def metrics_until(client: TestClient, before: dict[Any, float], expected: dict[Any, float]) -> None:
    """Scrape until these samples have grown by these amounts (an operation is counted as its task ends, just
    after its last frame was sent)."""
    for _ in range(100):
        after = await scrape(client)
        if dict(zip(expected, grown(before, after, *expected))) == expected:
            return
        await asyncio.sleep(0.02)
    assert dict(zip(expected, grown(before, after, *expected))) == expected


async def test_a_subscription_over_websocket_is_one_operation_by_name_whatever_it_pushes(
    client: TestClient, services: Services, bus_watch: BusWatch,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    before = await scrape(client)
    async with signed_in_socket(client, bearer()) as ws:
        await subscribe(ws, "1", WATCH_CASE)
        await metrics_until(client, before, {socket_operations_open("WatchCase", "subscription"): 1.0})
        await bus_watch.until_active(1)

        await services.pipeline.ingest([status_changed("CASE-1", "IN_PROGRESS", "ANALYSIS")])
        await services.pipeline.ingest([status_changed("CASE-1", "IN_PROGRESS", "DECISION")])
        assert [(await next_frame(ws))["payload"]["data"]["caseUpdated"]["stage"] for _ in range(2)] == [
            "ANALYSIS", "DECISION"]
        await ws.send_json({"id": "1", "type": "complete"})

        # two pushes, one operation: open while it ran, then counted once, as a subscription that ended well
        await metrics_until(client, before, {socket_operations_open("WatchCase", "subscription"): 0.0,
                                             socket_operations("WatchCase", "subscription", "ok"): 1.0})
    after = await scrape(client)
    assert grown(before, after, operations("WatchCase", "ok"), latency_count("WatchCase")) == [0.0, 0.0]  # not HTTP


async def test_queries_mutations_and_refusals_over_websocket_are_counted_by_type_and_outcome(
    client: TestClient, services: Services,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    before = await scrape(client)
    async with signed_in_socket(client, bearer(roles=("auditor",))) as auditor, \
            signed_in_socket(client, bearer()) as operator:
        await subscribe(auditor, "refused", WATCH_CASE)
        assert [e["extensions"]["code"] for e in (await next_frame(auditor))["payload"]] == ["FORBIDDEN"]
        await subscribe(operator, "read", 'query FindCase { case(id: "CASE-1") { id } }')
        assert [(await next_frame(operator))["type"] for _ in range(2)] == ["next", "complete"]
        await subscribe(operator, "invalid", "subscription Typo { caseUpdated(id: \"CASE-1\") { nope } }")
        assert [e["extensions"]["code"] for e in (await next_frame(operator))["payload"]] == ["BAD_USER_INPUT"]
        await subscribe(operator, "write", "mutation Claim { claimTask(taskId: \"T-404\") { id } }")
        assert [(await next_frame(operator))["type"] for _ in range(2)] == ["next", "complete"]  # NOT_FOUND
        await subscribe(operator, "broken", "subscription {")
        assert [e["extensions"]["code"] for e in (await next_frame(operator))["payload"]] == ["BAD_USER_INPUT"]

        await metrics_until(client, before, {
            socket_operations("WatchCase", "subscription", "FORBIDDEN"): 1.0,
            socket_operations("FindCase", "query", "ok"): 1.0,
            socket_operations("Typo", "subscription", "BAD_USER_INPUT"): 1.0,
            socket_operations("Claim", "mutation", "NOT_FOUND"): 1.0,
            socket_operations("other", "other", "BAD_USER_INPUT"): 1.0,
        })
        # none of them is still open
        assert grown(before, await scrape(client), socket_operations_open("WatchCase", "subscription"),
                     socket_operations_open("FindCase", "query"), socket_operations_open("Claim", "mutation")) == [
            0.0, 0.0, 0.0]
