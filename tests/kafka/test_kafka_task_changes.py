"""A claim on one instance reaches the others through `case-updates` (`case.task_changed`): instance B forgets the
case answer it had cached, and B's `myNotifications` subscriber hears of a task assigned to them on A. A and B
share one Database object (standing in for one MongoDB) and nothing else."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from consumers.publication import PublishedRecordChange, PublishedState
from settings import Settings
from stores.database import Database
from tests.factories import CaseStory, bearer, case_created_data, task_data
from tests.kafka.kit import WAIT_SECONDS, Broker, Repository, Topics, create_topics, services_of, wait_until
from tests.live import BusWatch

pytestmark = pytest.mark.kafka

CASE_TASKS = 'query { case(id: "CASE-K1") { version tasks { id assignee } } }'
ASSIGN = 'mutation { assignTask(taskId: "T-1", assignee: "olga.nowak") { id assignee } }'
NOTIFICATIONS = "subscription { myNotifications { kind caseId taskId summary } }"
MARIA = bearer(username="maria.wojcik", roles=("team-manager", "case-reader"), branch="KRK-01")
OLGA = bearer(username="olga.nowak", roles=("back-office", "case-reader"), groups=("back-office",))


async def _case(client: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": CASE_TASKS}, headers=OLGA)
    return (await response.json())["data"]["case"]


async def test_an_assignment_on_one_instance_evicts_and_notifies_on_another(
    kafka_broker: Broker, kafka_settings: Settings, topics: Topics, database: Database, repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given A and B (B ingests nothing), both caching case answers far longer than this test takes
    idle_events = f"{topics.events}-idle"
    await create_topics(kafka_broker.bootstrap, [idle_events])
    settings_a = kafka_settings.with_overrides(response_cache_seconds=600.0)
    settings_b = settings_a.with_overrides(kafka_topic_events=idle_events, kafka_group_id=f"{topics.group}-b")
    app_a, app_b = await asyncio.gather(repository.start_app(settings_a, database),
                                        repository.start_app(settings_b, database))
    heard_on_b: list[Any] = []
    services_of(app_b).bus.add_listener(heard_on_b.append)
    subscriptions_on_b = BusWatch(services_of(app_b).bus, monkeypatch)

    async def heard() -> list[Any]:
        return heard_on_b

    # and a case with an open task, applied on A and heard on B, whose answer B has cached for Olga
    opened = CaseStory("CASE-K1").add("case.created", case_created_data()).add("case.task_created", task_data("T-1"))
    await services_of(app_a).pipeline.ingest(opened.events)
    await wait_until(heard, lambda seen: any(isinstance(p, PublishedState) and p.state["version"] == 2 for p in seen),
                     "B to hear of the case")
    assert await _case(app_b) == {"version": 2, "tasks": [{"id": "T-1", "assignee": None}]}
    assert len(services_of(app_b).responses) == 1

    async with app_b.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": OLGA})
        assert (await ws.receive_json(timeout=WAIT_SECONDS)) == {"type": "connection_ack"}
        await ws.send_json({"id": "n", "type": "subscribe", "payload": {"query": NOTIFICATIONS}})
        await subscriptions_on_b.until_active(1)

        # When Maria gives the task to Olga on A
        response = await app_a.post("/graphql", json={"query": ASSIGN}, headers=MARIA)
        assert await response.json() == {"data": {"assignTask": {"id": "T-1", "assignee": "olga.nowak"}}}

        # Then Olga, connected to B, is told
        assert await ws.receive_json(timeout=WAIT_SECONDS) == {"id": "n", "type": "next", "payload": {"data": {
            "myNotifications": {"kind": "TASK_ASSIGNED", "caseId": "CASE-K1", "taskId": "T-1",
                                "summary": "Task assigned to you: Verify income documents by maria.wojcik"}}}}

    # And B forgot its cached answer when it heard the change: it answers with the task's holder
    assert any(isinstance(p, PublishedRecordChange) for p in heard_on_b)
    assert await _case(app_b) == {"version": 2, "tasks": [{"id": "T-1", "assignee": "olga.nowak"}]}
