"""Live updates cross processes: app A applies an event, a subscriber connected to app B is told, because B
reads `case-updates`. A and B share one Database object (standing in for one MongoDB) and nothing else."""
from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from auth.dev_tokens import mint_dev_token
from settings import Settings
from stores.database import Database
from tests.factories import case_created_data, envelope
from tests.kafka.kit import (
    WAIT_SECONDS, Broker, KafkaProbe, Repository, Topics, create_topics, services_of, wait_until,
)

pytestmark = pytest.mark.kafka

CASE = "CASE-LIVE-1"
SUBSCRIPTION = "subscription ($id: ID!) { caseUpdated(id: $id) { id status stage version } }"


async def _live_subscribers(client: TestClient) -> float:
    """What an operator sees on /metrics: the number of live update queues (one process-wide registry)."""
    text = await (await client.get("/metrics")).text()
    match = re.search(r"^case_repository_live_subscribers (\S+)$", text, re.MULTILINE)
    assert match, "case_repository_live_subscribers missing from /metrics"
    return float(match.group(1))


async def _next_message(ws: Any) -> dict[str, Any]:
    message = await ws.receive(timeout=WAIT_SECONDS)
    # graphql-transport-ws travels in text frames (a browser's graphql-ws client cannot parse binary ones).
    assert message.type == WSMsgType.TEXT, message
    return message.json()


async def test_a_subscriber_on_one_instance_sees_a_change_applied_by_another(
    kafka_broker: Broker, kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe,
    repository: Repository,
) -> None:
    # given app A ingesting case-events, and app B that ingests nothing (its own idle topic and group)
    # but reads the same case-updates topic
    idle_events = f"{topics.events}-idle"
    await create_topics(kafka_broker.bootstrap, [idle_events])
    settings_b = kafka_settings.with_overrides(kafka_topic_events=idle_events, kafka_group_id=f"{topics.group}-b")
    app_a, app_b = await asyncio.gather(repository.start_app(kafka_settings, database),
                                        repository.start_app(settings_b, database))
    assert services_of(app_a).bus is not services_of(app_b).bus

    # and a subscriber of the case connected to B over graphql-transport-ws
    before = await _live_subscribers(app_b)
    token = mint_dev_token(kafka_settings, "back-office")
    async with app_b.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert await _next_message(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "live-1", "type": "subscribe",
                            "payload": {"query": SUBSCRIPTION, "variables": {"id": CASE}}})
        await wait_until(lambda: _live_subscribers(app_b), lambda now: now == before + 1,
                         "the subscription to be registered on B")

        # when A applies the case's creation and then a status change
        await probe.produce_events(topics.events, [envelope("case.created", CASE, case_created_data(), sequence=1)])
        first = await _next_message(ws)
        await probe.produce_events(topics.events, [
            envelope("case.status_changed", CASE, {"status": "IN_REVIEW", "stage": "ANALYSIS"}, sequence=2)])
        second = await _next_message(ws)

    # then B's subscriber received both states, in order
    assert [first, second] == [
        {"id": "live-1", "type": "next",
         "payload": {"data": {"caseUpdated": {"id": CASE, "status": status, "stage": stage, "version": version}}}}
        for status, stage, version in [("NEW", "APPLICATION", 1), ("IN_REVIEW", "ANALYSIS", 2)]
    ]
