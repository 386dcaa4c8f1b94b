"""Bench R7's baseline is a fair one: its plain handler answers the myTasks page byte for byte as /graphql does,
over a store seeded as the bench seeds it (at a toy size), and the page is the bench user's inbox."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from access.scope import case_scope
from auth.dev_tokens import mint_dev_token
from bench.r7_my_tasks import BENCH_USER, QUERY, bench_principal, read_page, seed
from context import Services
from stores.database import Database

MY_GROUPS = {"mortgage-advisors", "kyc-reviewers", "document-checkers", "credit-analysts", "income-verification"}


async def _post(client: TestClient, services: Services, first: int) -> bytes:
    token = mint_dev_token(services.settings, BENCH_USER)
    response = await client.post("/graphql", json={"query": QUERY, "operationName": "MyTasks",
                                                   "variables": {"first": first}},
                                 headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    return await response.read()


async def test_the_plain_handler_returns_the_graphql_page_byte_for_byte(
        client: TestClient, services: Services, database: Database) -> None:
    await seed(services, database, tasks=500, cases=100)

    graphql_body = await _post(client, services, 50)
    principal = bench_principal(services.settings)
    plain_body = await read_page(services, principal, case_scope(principal), 50)

    assert plain_body == graphql_body
    page = orjson.loads(graphql_body)["data"]["myTasks"]
    assert len(page["edges"]) == 50 and page["pageInfo"]["hasNextPage"] is True
    nodes: list[dict[str, Any]] = [edge["node"] for edge in page["edges"]]
    for node in nodes:
        assert node["assignee"] == "ola.mazur" or (
            node["assignee"] is None and node["state"] == "CREATED" and MY_GROUPS & set(node["candidateGroups"]))
        assert node["case"] is not None and not node["case"]["title"].startswith("Leasing")


async def test_my_tasks_makes_four_store_round_trips_whatever_the_page_size(
        client: TestClient, services: Services, database: Database) -> None:
    await seed(services, database, tasks=500, cases=100)

    counts = []
    for first in (1, 10, 50):
        database.round_trips.reset()
        await _post(client, services, first)
        counts.append(dict(database.round_trips.by_operation))

    assert counts == [{"tasks.aggregate": 1, "tasks.count_documents": 1, "cases.aggregate": 1,
                       "audit.insert_one": 1}] * 3
