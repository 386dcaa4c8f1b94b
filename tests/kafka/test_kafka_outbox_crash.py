"""A writer killed (kill -9) after its case write landed and before the broker acknowledged the send loses nothing,
and the restarted instance sends `case.state_changed` once per id (the broker may still append the dead one's copy).

Everything runs as a real process: the broker (Tansu), the store (a MongoDB-wire server, tests/wire_store.py) and
the app (`python server.py`). The broker stops acknowledging first, so the send hangs; the app is killed in that send;
the broker comes back; a new app process on the same store finds what the dead one staged and relays it.

Two ways a broker stops acknowledging, and what reaches the topic in each:
- `down` (the broker process is gone): the dead writer's produce request never left it, so the topic gets the state
  exactly once, from the restarted instance.
- `frozen` (SIGSTOP: connections stay open, nothing answers): the dead writer's produce request already sits in the
  broker's socket buffer, and the broker appends it when it resumes, after the writer died. No relay can know that:
  the restarted one sends once more when the lease runs out. So the topic may hold the same CloudEvent twice, byte for
  byte; consumers deduplicate by id (README, "Outbound"), and this test checks every copy is the same one.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from auth.dev_tokens import mint_dev_token
from settings import Settings
from tests.factories import PUBLISH_CASE_EVENT, case_created_data, envelope, publish_input
from tests.kafka.kit import Broker, KafkaProbe, Topics, create_topics, tansu_binary, wait_for, wait_until
from tests.child_process import AppProcess, app_environment
from tests.wire_store import WireStore

pytestmark = pytest.mark.kafka

DATABASE = "case_repository_crash"
# Not the public default: dev tokens are accepted on a real store only with a secret of our own.
DEV_SECRET = f"crash-test-{uuid.uuid4().hex}"
RELAY_SECONDS = 0.5
# The dead writer's lease on its message must run out before another sends it. Shorter than the default 30 s, so the
# test does not wait for it, and longer than the ~1 s from its write to the kill, so the dying writer cannot take
# its own message again (its send would count as a second attempt).
LEASE_SECONDS = 5.0
RESEND_SECONDS = 60.0
CASE_QUERY = "query ($id: ID!) { case(id: $id) { id status history { totalCount } } }"
TRAIL_QUERY = """query ($caseId: ID) { auditTrail(caseId: $caseId, first: 50) {
  edges { node { operation eventIds caseIds outcome } } } }"""


def _bearer(persona: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(Settings(auth_dev_secret=DEV_SECRET), persona)}"}


DOWN, FROZEN = "down", "frozen"


@pytest.fixture
def own_broker() -> Iterator[Broker]:
    """A broker of this test alone: it is frozen or killed, and must not hold up the session's broker tests."""
    broker = Broker(tansu_binary())
    broker.start()
    try:
        yield broker
    finally:
        broker.resume()
        broker.kill()


@pytest.fixture
async def own_topics(own_broker: Broker) -> Topics:
    unique = uuid.uuid4().hex[:8]
    names = Topics(events=f"case-events-crash-{unique}", updates=f"case-updates-crash-{unique}",
                   dlq=f"case-events-crash-{unique}.dlq", group=f"case-repository-crash-{unique}")
    await create_topics(own_broker.bootstrap, [names.events, names.updates, names.dlq])
    return names


@pytest.fixture
async def own_probe(own_broker: Broker) -> AsyncIterator[KafkaProbe]:
    kafka_probe = KafkaProbe(own_broker.bootstrap)
    await kafka_probe.start()
    yield kafka_probe
    await kafka_probe.stop()


@pytest.fixture
def app_env(own_broker: Broker, own_topics: Topics, wire_store: WireStore) -> dict[str, str]:
    return app_environment({
        "MONGODB_URI": wire_store.uri, "MONGODB_DATABASE": DATABASE,
        "KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap, "KAFKA_GROUP_ID": own_topics.group,
        "KAFKA_TOPIC_EVENTS": own_topics.events, "KAFKA_TOPIC_UPDATES": own_topics.updates,
        "KAFKA_TOPIC_DLQ": own_topics.dlq, "KAFKA_TOPIC_COMMANDS": f"{own_topics.updates}.commands",
        "DEMO_DATA": "0", "APP_ENV": "dev", "AUTH_DEV_SECRET": DEV_SECRET,
        "OUTBOX_RELAY_SECONDS": str(RELAY_SECONDS), "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS), "LOG_LEVEL": "INFO",
    })


async def _graphql(http: aiohttp.ClientSession, app: AppProcess, query: str, variables: dict[str, Any],
                   headers: dict[str, str]) -> dict[str, Any]:
    async with http.post(f"{app.url}/graphql", json={"query": query, "variables": variables},
                         headers=headers) as response:
        return await response.json()


async def _stop_acknowledging(broker: Broker, outage: str) -> None:
    if outage == FROZEN:
        broker.pause()
    else:
        broker.kill()


async def _come_back(broker: Broker, outage: str, topics: Topics) -> None:
    if outage == FROZEN:
        broker.resume()
    else:
        broker.start()  # same address, empty storage: the topics are made again
        await create_topics(broker.bootstrap, [topics.events, topics.updates, topics.dlq])


@pytest.mark.parametrize("outage", [DOWN, FROZEN])
async def test_a_writer_killed_between_the_store_write_and_the_send_loses_nothing_and_sends_once(
    outage: str, own_broker: Broker, own_topics: Topics, own_probe: KafkaProbe, wire_store: WireStore,
    app_env: dict[str, str],
) -> None:
    case_id = f"CASE-CRASH-{uuid.uuid4().hex[:8].upper()}"
    created = envelope("case.created", case_id, case_created_data(), sequence=1)
    message_id = f"{case_id}:1"
    mongo = wire_store.client()
    store = mongo[DATABASE]
    first, second = AppProcess(app_env), AppProcess(app_env)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        publish: asyncio.Task[dict[str, Any]] | None = None
        try:
            # given an instance that is ready, and then a broker that stops acknowledging
            first.start()
            await first.wait_ready(http)
            await _stop_acknowledging(own_broker, outage)

            # when a case.created is posted, its case write lands and the send of its state hangs
            async with aiohttp.ClientSession() as hanging:  # no client timeout: the server decides
                publish = asyncio.create_task(_graphql(
                    hanging, first, PUBLISH_CASE_EVENT, {"event": publish_input(created)}, _bearer("system-publisher")))

                async def in_flight() -> dict[str, Any] | None:
                    return store["outbox"].find_one({"_id": message_id})

                pending = await wait_for(in_flight, f"the outbox to hold {message_id}")
                assert (pending["status"], pending["attempts"]) == ("PENDING", 0)
                doc = store["cases"].find_one({"_id": case_id})
                assert doc is not None and doc["version"] == 1
                # The staged effects are still in the case: the writer has not finished relaying them.
                assert {e["kind"] for e in doc["outbox"]} >= {"event", "message", "audit"}
                await asyncio.sleep(1.0)  # the send hangs (aiokafka gives up after request_timeout_ms, 40 s)
                assert not publish.done()

                # and the process is killed in that send
                first.kill()
                with pytest.raises(aiohttp.ClientError):
                    await publish
            assert store["outbox"].find_one({"_id": message_id})["status"] == "PENDING"
            await _come_back(own_broker, outage, own_topics)

            # then a new process on the same store sends the state, once
            second.start()
            await second.wait_ready(http)
            await wait_until(lambda: own_probe.end_offsets(own_topics.updates),
                             lambda seen: sum(seen.values()) >= 1,
                             f"{message_id} on {own_topics.updates}", RESEND_SECONDS)
            await wait_until(lambda: _sent_record(store, message_id), lambda record: record is not None,
                             f"the restarted relay to mark {message_id} sent", RESEND_SECONDS)
            await wait_until(lambda: _backlog_metric(http, second),
                             lambda line: line == "case_repository_outbox_backlog 0.0",
                             "the restarted app's /metrics to show an empty outbox")
            await wait_for(lambda: _no_staged_effects(store, case_id), "the staged effects to be cleared")
            await asyncio.sleep(10 * RELAY_SECONDS)  # a few more relay passes: nothing else goes out
            # The relay sent it once: one attempt, by the restarted instance (the dead one never finished one).
            assert (await _sent_record(store, message_id))["attempts"] == 1
            copies = sum((await own_probe.end_offsets(own_topics.updates)).values())
            records = await own_probe.read(own_topics.updates, copies)
            assert len(records) == copies
            assert copies == 1 if outage == DOWN else copies in (1, 2), copies
            # Every copy is the same CloudEvent, byte for byte: a consumer deduplicating by id sees one state.
            assert len({(r.partition, r.key, r.value, tuple(r.headers)) for r in records}) == 1
            state = orjson.loads(records[0].value)
            assert (records[0].key.decode(), state["id"], state["type"], state["subject"], state["sequence"]) == (
                case_id, message_id, "case.state_changed", case_id, "1")

            # and the history row and the audit record exist once
            found = await _graphql(http, second, CASE_QUERY, {"id": case_id}, _bearer("auditor"))
            assert found == {"data": {"case": {"id": case_id, "status": "NEW", "history": {"totalCount": 1}}}}
            trail = await _graphql(http, second, TRAIL_QUERY, {"caseId": case_id}, _bearer("auditor"))
            assert "errors" not in trail, trail
            writes = [e["node"] for e in trail["data"]["auditTrail"]["edges"]
                      if e["node"]["operation"] == "applyEvents"]
            record = {"operation": "applyEvents", "eventIds": [created["id"]], "caseIds": [case_id], "outcome": "ok"}
            assert writes == [record]
        finally:
            own_broker.resume()
            if publish is not None and not publish.done():
                publish.cancel()
            first.kill()
            second.stop()
            mongo.close()


async def _sent_record(store: Any, message_id: str) -> dict[str, Any] | None:
    return store["outbox"].find_one({"_id": message_id, "status": "SENT"})


async def _backlog_metric(http: aiohttp.ClientSession, app: AppProcess) -> str | None:
    async with http.get(f"{app.url}/metrics") as response:
        text = await response.text()
    return next((line for line in text.splitlines() if line.startswith("case_repository_outbox_backlog ")), None)


async def _no_staged_effects(store: Any, case_id: str) -> bool:
    doc = store["cases"].find_one({"_id": case_id}, {"outbox": 1, "stagedAt": 1})
    return doc is not None and not doc.get("outbox") and "stagedAt" not in doc
