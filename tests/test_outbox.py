"""One durable outbox: what a write decides is staged in the same store write and sent until acknowledged.

In the embedded mode the relay's broker is the in-process bus; the real-broker side is tests/kafka/.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from consumers import relay as relay_module
from consumers import staging as staging_module
from consumers.publication import PublishedState
from server import create_app
from settings import Settings
from stores.database import connect
from stores.outbox import Message
from tests.factories import CaseStory, case_created_data, event, stored_case, task_data
from tests.test_health_metrics import scrape

BACKLOG = ("case_repository_outbox_backlog", ())
UNSENDABLE = ("case_repository_outbox_unsendable_total", (("topic", "updates"),))


def _drain(queue: asyncio.Queue[PublishedState]) -> list[PublishedState]:
    published = []
    while not queue.empty():
        published.append(queue.get_nowait())
    return published


def _story() -> CaseStory:
    return CaseStory("CASE-1").add("case.created", case_created_data()).add("case.task_created", task_data("T-1"))


class BrokerDown:
    """The relay's broker refusing every send, as a broker that is unreachable would."""

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        return [KafkaConnectionError("broker unreachable") for _ in messages]


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries and take-overs are due at once, so a test need not sleep through their delays."""
    from datetime import timedelta

    monkeypatch.setattr(relay_module, "RETRY_AFTER", timedelta(0))
    # Negative: effects staged within this very millisecond count as abandoned too.
    monkeypatch.setattr(staging_module, "ABANDONED_AFTER", timedelta(seconds=-1))


async def test_a_backlog_is_shown_to_the_operator_and_readiness_stays(
    client: TestClient, services: Any, monkeypatch: pytest.MonkeyPatch, no_waiting: None,
) -> None:
    # Given a broker that refuses every send
    working = services.relay._sender
    monkeypatch.setattr(services.relay, "_sender", BrokerDown())
    with services.bus.subscribe("CASE-1") as updates:
        # When a case is created
        await services.pipeline.ingest(_story().events[:1])

        # Then the case is stored, nothing reached subscribers, and the operator sees one message waiting
        ready = await client.get("/readyz")
        body = await ready.json()
        assert (ready.status, body["outbox"]["pending"]) == (200, 1)
        assert (await scrape(client))[BACKLOG] == 1.0
        assert _drain(updates) == []

        # When the broker is back and the relay makes its next pass
        monkeypatch.setattr(services.relay, "_sender", working)
        await services.relay.relay_due()

        # Then the update arrives once and the backlog is empty
        assert [p.state["version"] for p in _drain(updates)] == [1]
    assert (await scrape(client))[BACKLOG] == 0.0
    assert [e["id"] for e in await services.outbox.sent("updates")] == ["CASE-1:1"]


async def test_a_message_no_retry_can_send_is_kept_as_failed_and_the_relay_moves_on(
    client: TestClient, services: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a broker that refuses CASE-1's update as too large and takes the rest
    class TooLargeForCase1:
        sent: list[str] = []

        async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
            self.sent += [m.id for m in messages if m.key != "CASE-1"]
            return [MessageSizeTooLargeError() if m.key == "CASE-1" else None for m in messages]

    broker = TooLargeForCase1()
    monkeypatch.setattr(services.relay, "_sender", broker)
    before = (await scrape(client)).get(UNSENDABLE, 0.0)

    # When two cases are created in one batch, and the relay makes passes afterwards
    other = CaseStory("CASE-2").add("case.created", case_created_data(title="Card")).events
    await services.pipeline.ingest([*_story().events[:1], *other])
    await services.relay.relay_due()
    await services.relay.relay_due()

    # Then CASE-2's update went out, CASE-1's is kept as FAILED (counted, never retried), nothing is pending
    assert broker.sent == ["CASE-2:1"]
    assert (await scrape(client))[UNSENDABLE] == before + 1
    body = await (await client.get("/readyz")).json()
    assert body["outbox"] == {"pending": 0, "oldestPendingSeconds": 0.0, "failed": 1}


async def _stop_after_the_case_write(services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that stops right after its case write, before it relays anything."""
    async def stop_here(docs: Any, **kwargs: Any) -> None:
        raise ConnectionError("the process stopped here")

    relay_cases = services.staging.relay_cases
    monkeypatch.setattr(services.staging, "relay_cases", stop_here)
    with pytest.raises(ConnectionError):
        await services.pipeline.ingest(_story().events)
    monkeypatch.setattr(services.staging, "relay_cases", relay_cases)


async def _relayed_once(services: Any) -> None:
    case = await stored_case(services, "CASE-1")
    assert [e["kind"] for e in case["history"]] == ["CASE_CREATED", "TASK_CREATED"]
    assert [t["id"] for t in case["tasks"]] == ["T-1"]
    assert (case["outbox"], "stagedAt" in case) == ([], False)
    assert [r["eventIds"] for r in (await services.audit.trail(case_id="CASE-1")).records] == [
        ["CASE-1-e001", "CASE-1-e002"]]
    assert [e["id"] for e in await services.outbox.sent("updates")] == ["CASE-1:2"]


async def test_what_a_stopped_writer_staged_is_relayed_once_by_the_relay_loop(
    services: Any, monkeypatch: pytest.MonkeyPatch, no_waiting: None,
) -> None:
    # Given a writer that stopped between its case write and relaying what it staged
    await _stop_after_the_case_write(services, monkeypatch)

    with services.bus.subscribe("CASE-1") as updates:
        # When the relay loop makes two passes
        await services.relay.relay_due()
        await services.relay.relay_due()

        # Then the update, the history rows, the task row and the audit record exist, each once
        assert [p.state["version"] for p in _drain(updates)] == [2]
    await _relayed_once(services)


async def test_a_redelivery_of_what_a_stopped_writer_staged_is_a_duplicate_that_relays_it(
    services: Any, monkeypatch: pytest.MonkeyPatch, no_waiting: None,
) -> None:
    # Given a writer that stopped between its case write and relaying what it staged
    await _stop_after_the_case_write(services, monkeypatch)

    with services.bus.subscribe("CASE-1") as updates:
        # When Kafka delivers the batch again (its offsets were never committed), then the relay loop passes
        results = await services.pipeline.ingest(_story().events)
        await services.relay.relay_due()

        # Then both events are duplicates (the staged effects name them), and what was staged went out once
        assert [r.status.value for r in results] == ["DUPLICATE", "DUPLICATE"]
        assert [p.state["version"] for p in _drain(updates)] == [2]
    await _relayed_once(services)


async def test_the_dev_outbox_lists_what_was_sent_on_case_commands(client: TestClient, services: Any) -> None:
    # Given two commands sent through the outbox
    commands = [Message(id=f"cmd-{n}", topic="commands", key="CASE-1", event={
        "specversion": "1.0", "id": f"cmd-{n}", "source": "case-repository", "type": kind, "subject": "CASE-1",
        "data": {"caseId": "CASE-1"}}) for n, kind in enumerate(("notification.requested", "task.assignment_changed"))]
    await services.relay.add_and_send(commands)

    # When a developer asks for them, all and by type
    everything = await (await client.get("/dev/commands")).json()
    notifications = await (await client.get("/dev/commands?type=notification.requested")).json()

    # Then they come oldest first, as CloudEvents
    assert [(e["id"], e["type"]) for e in everything] == [
        ("cmd-0", "notification.requested"), ("cmd-1", "task.assignment_changed")]
    assert [e["id"] for e in notifications] == ["cmd-0"]


async def test_the_next_write_after_a_stopped_writer_builds_on_what_it_staged(
    services: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a writer that stopped after creating the case and its task T-1, before relaying the task row
    await _stop_after_the_case_write(services, monkeypatch)

    with services.bus.subscribe("CASE-1") as updates:
        # When the next event completes T-1
        completed = event("case.task_completed", "CASE-1", {"task": {"id": "T-1"}}, sequence=3)
        await services.pipeline.ingest([completed])

        # Then the published state shows the whole task, as created and now completed
        states = [p.state for p in _drain(updates)]
    assert [(s["version"], [(t["id"], t["name"], t["state"]) for t in s["tasks"]]) for s in states] == [
        (2, [("T-1", "Verify income documents", "CREATED")]),
        (3, [("T-1", "Verify income documents", "COMPLETED")]),
    ]
    assert [(t["id"], t["state"], t["name"]) for t in (await stored_case(services, "CASE-1"))["tasks"]] == [
        ("T-1", "COMPLETED", "Verify income documents")]


async def _audited_event_ids(services: Any) -> list[list[str]]:
    return [r["eventIds"] for r in (await services.audit.trail(case_id="CASE-1")).records]


async def test_a_writer_whose_staged_effects_another_relayed_first_records_no_second_audit(
    services: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a writer that, right after its case write, is overtaken by another relay of what it staged (a pipeline
    # that read the case meanwhile and had nothing new to write relays and clears it)
    relay_cases = services.staging.relay_cases

    async def overtaken(docs: Any, **kwargs: Any) -> None:
        await relay_cases(list((await services.cases.get_for_update([d["_id"] for d in docs])).values()))
        await relay_cases(docs, **kwargs)

    monkeypatch.setattr(services.staging, "relay_cases", overtaken)

    # When the writer relays its effects after all
    results = await services.pipeline.ingest(_story().events)

    # Then the write has one audit record, and everything else went out once as well
    assert [r.status.value for r in results] == ["APPLIED", "APPLIED"]
    await _relayed_once(services)


async def test_a_writer_whose_staged_effects_a_newer_write_took_over_leaves_their_audit_to_it(
    services: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a writer that, right after its case write, is overtaken by a newer write of the case (which carries
    # the first write's staged effects and relays them with its own)
    relay_cases = services.staging.relay_cases
    calls = 0

    async def overtaken(docs: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            completed = event("case.task_completed", "CASE-1", {"task": {"id": "T-1"}}, sequence=3,
                              event_id="CASE-1-e003")
            assert [r.status.value for r in await services.pipeline.ingest([completed])] == ["APPLIED"]
        await relay_cases(docs, **kwargs)

    monkeypatch.setattr(services.staging, "relay_cases", overtaken)

    # When the first writer relays its effects after all
    await services.pipeline.ingest(_story().events)

    # Then each write has its one audit record (the newer writer recorded both), nothing is left staged
    assert sorted(await _audited_event_ids(services)) == [["CASE-1-e001", "CASE-1-e002"], ["CASE-1-e003"]]
    case = await stored_case(services, "CASE-1")
    assert (case["version"], case["outbox"], "stagedAt" in case) == (3, [], False)
    assert [e["id"] for e in await services.outbox.sent("updates")] == ["CASE-1:2", "CASE-1:3"]


def test_the_outbox_lease_is_a_setting_and_a_lease_of_nothing_is_refused_at_startup() -> None:
    assert Settings.from_env({"OUTBOX_LEASE_SECONDS": "7.5"}).outbox_lease_seconds == 7.5
    assert Settings.from_env({}).outbox_lease_seconds == 30.0
    with pytest.raises(ValueError, match="OUTBOX_LEASE_SECONDS must be more than 0, not 0"):
        create_app(Settings(demo_data=False, outbox_lease_seconds=0.0), connect(None, "lease"))
