"""Shared fixtures: an app on the store of the lane, a GraphQL client over real HTTP, the services.

Two store lanes run the same tests (`make test` runs both): `memory` (mongomock in the test's process, the default)
and `wire` (`--store=wire` or STORE_LANE=wire: one MongoDB-wire server process for the session, tests/wire_store.py,
and a fresh database per test). Tests that only make sense on one lane say so with a marker (pyproject.toml).
"""
from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web_app
from aiohttp.test_utils import TestClient, TestServer

from context import Services
from schema.document_caches import forget_documents
from server import SERVICES, create_app
from settings import Settings
from stores.database import Database, connect
from tests.factories import bearer
from tests.identity_provider import serving_jwks
from tests.live import BusWatch
from tests.wire_store import WireStore, wire_server_binary

LANES = ("memory", "wire")
# The wire lane's subset (`make test` runs it with `-m wire_lane`): the tests of what mongomock hides or fakes —
# writes and their guards, unique keys, ingest and the outbox, claims, notes, terms, appointments, panel sessions
# and the customers' own cases, encryption at rest, row scopes in store queries, round trips, the audit chain and
# index use. The whole non-Kafka suite passes on the wire server too (`--store=wire` without `-m`), but takes
# about 11 minutes on 2 cores, most of it tests of the API edge (tokens, field policy, limits, SDL) that never
# depend on the store.
WIRE_LANE_MODULES = frozenset({
    "test_appointments", "test_audit_store", "test_calendar", "test_case_lifecycle", "test_customer_360",
    "test_customer_coapplicant", "test_dead_letters", "test_demo_data_once", "test_incident_retry", "test_indexes_used",
    "test_ingest_canonical_codes", "test_ingest_concurrency", "test_ingest_idempotency", "test_ingest_ordering",
    "test_ingest_parking", "test_ingest_poison_events", "test_my_cases", "test_negotiated_terms", "test_notes",
    "test_outbox", "test_panel_case", "test_panel_signin", "test_publication",
    "test_queries_cases", "test_round_trips", "test_security_at_rest", "test_security_audit", "test_security_idor",
    "test_storage_migration", "test_stored_order_values", "test_task_claim_mutations", "test_task_claims",
    "test_tasks_list", "test_audit_recipients",
})
_DATABASE_NUMBERS = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--store", choices=LANES, default=os.environ.get("STORE_LANE") or "memory",
                     help="the store lane: memory (mongomock, in process) or wire (a MongoDB-wire server process)")


def store_lane(config: pytest.Config) -> str:
    return config.getoption("--store")


def pytest_report_header(config: pytest.Config) -> str:
    return f"store lane: {store_lane(config)}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lane = store_lane(config)
    for item in items:
        if item.path.stem in WIRE_LANE_MODULES:
            item.add_marker(pytest.mark.wire_lane)
        for marker in item.iter_markers():
            if marker.name == "mongomock_only" and lane != "memory":
                item.add_marker(pytest.mark.skip(reason=f"mongomock only: {marker.kwargs.get('reason', '')}"))
            if marker.name == "wire_only" and lane != "wire":
                item.add_marker(pytest.mark.skip(reason=f"wire lane only: {marker.kwargs.get('reason', '')}"))


@pytest.fixture(scope="session")
def wire_server(request: pytest.FixtureRequest) -> Iterator[WireStore | None]:
    """The session's MongoDB-wire server on the wire lane (None on the memory lane)."""
    if store_lane(request.config) != "wire":
        yield None
        return
    server = WireStore(wire_server_binary())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _forget_finished_apps() -> Iterator[None]:
    """Module-level LRU caches outlive what a test builds: aiohttp's middleware chains keyed by application (1,024
    entries), the validation verdicts kept with their schema, and the parsed documents (schema/document_caches.py),
    to which the fast executor's per-operation plans, naming each schema's types, are tied. In one process that
    builds an app per test they kept hundreds of apps and schemas alive, each with its stores and data: the heap
    grew through the run and full collections reached 1.7 s by a quarter of the suite, long enough to fail a test
    that asks `/healthz` to answer within a second. A server builds one app and one schema, so the caches are right
    there; a test run forgets each test's when the test ends."""
    yield
    web_app._cached_build_middleware.cache_clear()
    forget_documents()


@pytest.fixture
def settings() -> Settings:
    # The relay's periodic pass stays out of the way (and out of round-trip counts); tests of recovery call
    # `services.relay.relay_due()` themselves. Writers still send what they stage at once.
    return Settings(demo_data=False, outbox_relay_seconds=3600.0)


@pytest.fixture
def database_name() -> str:
    """This test's own database name (the wire server holds one database per test)."""
    return f"case_repository_test_{next(_DATABASE_NUMBERS)}"


@pytest.fixture
def database(wire_server: WireStore | None, database_name: str) -> Iterator[Database]:
    """A fresh, empty database for this test: a new mongomock client, or a new database on the wire server (its
    motor client binds to this test's event loop at first use; the database is dropped afterwards)."""
    if wire_server is None:
        yield connect(None, database_name)
        return
    database = connect(wire_server.uri, database_name)
    try:
        yield database
    finally:
        database.close()
        with wire_server.client() as admin:
            admin.drop_database(database_name)


@pytest.fixture
def reconnect(database: Database, database_name: str, wire_server: WireStore | None) -> Callable[[], Database]:
    """A second connection to this test's database, as another process (an operator's tool) opens, usable on
    another event loop; on the memory lane the in-process store itself, which has no connection to open."""
    if wire_server is None:
        return lambda: database
    return lambda: connect(wire_server.uri, database_name)


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
