"""When the broker goes away: /readyz says so (and recovers with it), and the app still shuts down cleanly."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from stores.database import Database
from tests.kafka.kit import Broker, Repository, Topics, create_topics, tansu_binary, wait_until

pytestmark = pytest.mark.kafka

READY = (200, {"status": "ready", "checks": {"store": True, "identity": True, "kafka": True}})
KAFKA_DOWN = (503, {"status": "unavailable", "checks": {"store": True, "identity": True, "kafka": False}})


@pytest.fixture
def own_broker() -> Iterator[Broker]:
    """A broker of this test alone, as it crashes (SIGKILL) and comes back on the same address."""
    broker = Broker(tansu_binary())
    broker.start()
    yield broker
    broker.kill()


@pytest.fixture
async def client(own_broker: Broker, topics: Topics, database: Database, repository: Repository) -> TestClient:
    await create_topics(own_broker.bootstrap, [topics.events, topics.updates, topics.dlq])
    return await repository.start_app(topics.settings(own_broker.bootstrap), database)


async def _readyz(client: TestClient) -> tuple[int, Any]:
    response = await client.get("/readyz")
    body = await response.json()
    body.pop("outbox", None)  # shown beside readiness, never part of it (tests/test_outbox.py)
    return response.status, body


async def test_readyz_reports_kafka_down_while_the_broker_is_gone_and_ready_when_it_is_back(
    own_broker: Broker, client: TestClient,
) -> None:
    assert await _readyz(client) == READY

    # when the broker dies, then the app reports Kafka unavailable at once
    own_broker.kill()
    assert await _readyz(client) == KAFKA_DOWN

    # when the broker is back, then the app is ready again without a restart
    own_broker.start()
    await wait_until(lambda: _readyz(client), lambda seen: seen == READY, "/readyz to report ready again")


async def test_the_app_shuts_down_cleanly_while_the_broker_is_gone(
    own_broker: Broker, client: TestClient, repository: Repository,
) -> None:
    assert await _readyz(client) == READY

    # when the broker dies and the app is stopped (a pod terminated during a Kafka outage)
    own_broker.kill()
    await wait_until(lambda: _readyz(client), lambda seen: seen == KAFKA_DOWN, "the app to notice the outage")

    # then the shutdown completes, promptly and without an error
    await asyncio.wait_for(repository.stop_app(client), timeout=30)
