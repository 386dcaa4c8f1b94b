"""What an operator sees: liveness, readiness, Prometheus metrics, and GraphiQL for a browser."""
from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import created, status_changed


async def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics, keyed by name and labels."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }


async def test_healthz_says_the_process_is_alive(client: TestClient) -> None:
    response = await client.get("/healthz")

    assert (response.status, await response.json()) == (200, {"status": "ok"})


async def test_readyz_checks_the_store_and_the_identity_provider(client: TestClient) -> None:
    response = await client.get("/readyz")

    assert (response.status, await response.json()) == (
        200, {"status": "ready", "checks": {"store": True, "identity": True},
              "outbox": {"pending": 0, "oldestPendingSeconds": 0.0, "failed": 0}})


async def test_metrics_count_http_requests_by_path_and_status(client: TestClient) -> None:
    healthz_ok = ("case_repository_http_requests_total", (("path", "/healthz"), ("status", "200")))
    before = (await scrape(client)).get(healthz_ok, 0.0)

    await client.get("/healthz")
    await client.get("/healthz")

    assert (await scrape(client))[healthz_ok] == before + 2


async def test_metrics_count_ingested_events_by_outcome(client: TestClient, services: Any) -> None:
    applied = ("case_repository_events_total", (("outcome", "applied"),))
    duplicate = ("case_repository_events_total", (("outcome", "duplicate"),))
    before = await scrape(client)

    again = status_changed("CASE-1", "IN_PROGRESS", event_id="evt-status")
    await services.pipeline.ingest([created("CASE-1"), again])
    await services.pipeline.ingest([again])

    after = await scrape(client)
    assert after[applied] == before.get(applied, 0.0) + 2
    assert after[duplicate] == before.get(duplicate, 0.0) + 1


async def test_metrics_count_graphql_requests(client: TestClient, gql: Any) -> None:
    graphql_ok = ("case_repository_http_requests_total", (("path", "/graphql"), ("status", "200")))
    before = (await scrape(client)).get(graphql_ok, 0.0)

    assert await gql('{ case(id: "CASE-404") { id } }') == {"data": {"case": None}}

    assert (await scrape(client))[graphql_ok] == before + 1


async def test_a_browser_gets_graphiql(client: TestClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = await response.text()
    assert '<main id="graphiql">' in page
    assert '<script src="/graphiql/graphiql-page.js"' in page  # ours (edge.graphiql_page), not Strawberry's
