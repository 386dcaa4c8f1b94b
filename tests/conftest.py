"""Shared fixtures: an app on the in-memory store, a GraphQL client over real HTTP, the services."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from context import Services
from server import SERVICES, create_app
from settings import Settings
from stores.database import Database, connect
from tests.factories import bearer
from tests.identity_provider import serving_jwks
from tests.live import BusWatch


@pytest.fixture
def settings() -> Settings:
    # The relay's periodic pass stays out of the way (and out of round-trip counts); tests of recovery call
    # `services.relay.relay_due()` themselves. Writers still send what they stage at once.
    return Settings(demo_data=False, outbox_relay_seconds=3600.0)


@pytest.fixture
def database() -> Database:
    return connect(None, "case_repository_test")


@pytest.fixture
async def client(settings: Settings, database: Database) -> AsyncIterator[TestClient]:
    app = create_app(settings, database)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture
def services(client: TestClient) -> Services:
    return client.app[SERVICES]


class GraphQL:
    """Posts GraphQL over HTTP, as a client of the API would: by default as the test operator
    (tests.factories.OPERATOR_ROLES); pass `headers` to call as someone else ({} = anonymous)."""

    def __init__(self, client: TestClient) -> None:
        self._client = client
        self._operator = bearer()

    async def __call__(self, query: str, variables: dict[str, Any] | None = None,
                       headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self._client.post("/graphql", json={"query": query, "variables": variables or {}},
                                           headers=self._operator if headers is None else headers)
        return await response.json()


@pytest.fixture
def gql(client: TestClient) -> GraphQL:
    return GraphQL(client)


@pytest.fixture
def bus_watch(services: Services, monkeypatch: pytest.MonkeyPatch) -> BusWatch:
    """Counts the live subscriptions attached to the app's updates bus (tests.live.BusWatch)."""
    return BusWatch(services.bus, monkeypatch)


@pytest.fixture
async def jwks_url() -> AsyncIterator[str]:
    """The URL of the local identity provider's key set (tests.identity_provider), for `auth_jwks_url`."""
    async with serving_jwks() as url:
        yield url
