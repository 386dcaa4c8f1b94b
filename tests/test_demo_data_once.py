"""Demo data goes only into an empty store: a persistent local store (`make run STORE=local`) keeps what a demo
changed across restarts instead of getting the demo cases again."""
from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from server import SERVICES, create_app
from settings import Settings
from stores.database import Database
from tests.factories import bearer, created

CASE_IDS = "{ cases(first: 50) { totalCount edges { node { id } } } }"


async def _case_ids(database: Database) -> list[str]:
    """Start the app with demo data on, as `make run` does, and list the cases an operator sees."""
    async with TestClient(TestServer(create_app(Settings(demo_data=True), database))) as client:
        response = await client.post("/graphql", json={"query": CASE_IDS}, headers=bearer())
        body = await response.json()
    return sorted(edge["node"]["id"] for edge in body["data"]["cases"]["edges"])


async def test_the_demo_cases_load_into_an_empty_store(database: Database) -> None:
    assert await _case_ids(database) == [
        "CASE-2025-004410", "CASE-2026-000098", "CASE-2026-000123", "CASE-2026-000124", "CASE-2026-000131",
        "CASE-2026-000140", "CASE-2026-000150"]


async def test_a_store_that_holds_cases_gets_no_demo_cases(database: Database) -> None:
    async with TestClient(TestServer(create_app(Settings(demo_data=False), database))) as client:
        await client.app[SERVICES].pipeline.ingest([created("CASE-KEPT")])

    assert await _case_ids(database) == ["CASE-KEPT"]
