"""Kit for the tests of real processes: app processes (`python server.py`) on the session's Tansu broker and a
MongoDB-wire store process, observed from outside as an operator would (the store through a driver, /metrics, the
logs, a WebSocket subscriber, `python audit_verify.py`)."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from auth.dev_tokens import mint_dev_token
from settings import Settings
from stores.database import Database, connect
from tests.child_process import ROOT, AppProcess, app_environment
from tests.kafka.kit import PARTITIONS, WAIT_SECONDS, Repository, Topics, wait_until
from tests.wire_store import WireStore

# Not the public default: dev tokens are accepted on a real store only with a secret of our own.
DEV_SECRET = f"process-test-{uuid.uuid4().hex}"
SUBSCRIPTION = "subscription ($id: ID!) { caseUpdated(id: $id) { id status stage version } }"
_PARTITION = re.compile(r"partition=(\d+)")
_PARTITIONER = DefaultPartitioner()


def app_env(store: WireStore, database: str, bootstrap: str, topics: Topics, **extra: str) -> dict[str, str]:
    """An app process on this store and broker, in dev with a dev secret of the test's own."""
    return app_environment({
        "MONGODB_URI": store.uri, "MONGODB_DATABASE": database,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_GROUP_ID": topics.group,
        "KAFKA_TOPIC_EVENTS": topics.events, "KAFKA_TOPIC_UPDATES": topics.updates,
        "KAFKA_TOPIC_DLQ": topics.dlq, "KAFKA_TOPIC_COMMANDS": f"{topics.updates}.commands",
        "DEMO_DATA": "0", "APP_ENV": "dev", "AUTH_DEV_SECRET": DEV_SECRET, "LOG_LEVEL": "INFO", **extra,
    })


def bearer(persona: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(Settings(auth_dev_secret=DEV_SECRET), persona)}"}


async def start_apps(http: aiohttp.ClientSession, apps: Sequence[AppProcess]) -> None:
    """Start them together (each takes seconds to import and connect) and wait until each is ready."""
    for app in apps:
        app.start()
    await asyncio.gather(*(app.wait_ready(http) for app in apps))


def partition_of(case_id: str) -> int:
    """The partition the producer's default partitioner (murmur2 of the key, as Java clients) sends a case to."""
    return _PARTITIONER(case_id.encode(), list(range(PARTITIONS)), list(range(PARTITIONS)))


def assigned_partitions(app: AppProcess) -> set[int]:
    """The partitions the app's ingest consumer holds now, read from its log (`partitions assigned` /
    `partitions revoked` lines): what an operator reads when asking which pod consumes what."""
    held: set[int] = set()
    for line in app.log_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = orjson.loads(line)
        if entry.get("message") == "partitions assigned":
            held = {int(m) for p in entry["partitions"] for m in _PARTITION.findall(p)}
        elif entry.get("message") == "partitions revoked":
            held = set()
    return held


async def wait_for_split(apps: Sequence[AppProcess], what: str) -> list[set[int]]:
    """Until every app holds at least one partition and together they hold each partition once."""
    async def split() -> list[set[int]]:
        return [assigned_partitions(app) for app in apps]

    def settled(held: list[set[int]]) -> bool:
        every = [p for partitions in held for p in partitions]
        return all(held) and sorted(every) == list(range(PARTITIONS))

    return await wait_until(split, settled, what)


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample of a /metrics text (0 when the series has not been written yet)."""
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def applied_by(http: aiohttp.ClientSession, app: AppProcess) -> tuple[int, int]:
    """How many events this process applied, and how many it found already applied (its /metrics)."""
    text = await app.metrics(http)
    return (int(metric(text, "case_repository_events_total", '{outcome="applied"}')),
            int(metric(text, "case_repository_events_total", '{outcome="duplicate"}')))


@asynccontextmanager
async def subscribed(http: aiohttp.ClientSession, app: AppProcess, case_id: str,
                     persona: str = "back-office") -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A `caseUpdated(id)` subscriber on `app` over graphql-transport-ws, registered before this yields."""
    before = metric(await app.metrics(http), "case_repository_live_subscribers")
    async with http.ws_connect(app.ws_url, protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": bearer(persona)})
        assert await next_message(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "live", "type": "subscribe",
                            "payload": {"query": SUBSCRIPTION, "variables": {"id": case_id}}})

        async def subscribers() -> float:
            return metric(await app.metrics(http), "case_repository_live_subscribers")

        await wait_until(subscribers, lambda now: now == before + 1, f"the subscription to register on {app.name}")
        yield ws


async def next_message(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await ws.receive(timeout=WAIT_SECONDS)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return message.json()


async def pushes_until(ws: aiohttp.ClientWebSocketResponse, version: int) -> list[tuple[str, str, int]]:
    """The pushes as (status, stage, version) up to the one of `version`. A writer sends one state per case
    per batch it applies, so a subscriber sees the newest state of each batch, not every version."""
    states: list[tuple[str, str, int]] = []
    while not states or states[-1][2] < version:
        message = await next_message(ws)
        assert message["type"] == "next", message
        case = message["payload"]["data"]["caseUpdated"]
        states.append((case["status"], case["stage"], case["version"]))
    return states


def stored_versions(store: WireStore, database: str, case_ids: Iterable[str]) -> dict[str, int]:
    """Each case's version as the store holds it, read by a driver of its own (absent cases are left out)."""
    with store.client() as mongo:
        return {doc["_id"]: doc["version"]
                for doc in mongo[database]["cases"].find({"_id": {"$in": list(case_ids)}}, {"version": 1})}


async def wait_for_stored_versions(store: WireStore, database: str, expected: dict[str, int],
                                   timeout: float = WAIT_SECONDS) -> None:
    async def seen() -> dict[str, int]:
        return await asyncio.to_thread(stored_versions, store, database, expected)

    await wait_until(seen, lambda versions: versions == expected, f"the store to hold case versions {expected}",
                     timeout)


def history_rows(store: WireStore, database: str, case_ids: Iterable[str]) -> dict[str, list[str]]:
    """Each case's history row ids, sorted (a row written twice would show twice)."""
    with store.client() as mongo:
        return {case_id: sorted(row["id"] for row in mongo[database]["history"].find({"caseId": case_id}, {"id": 1}))
                for case_id in case_ids}


def assert_each_event_once(store: WireStore, database: str, streams: dict[str, list[dict[str, Any]]],
                           other_rows: dict[str, list[str]] | None = None) -> None:
    """Read from the store as an operator would: per case, its version and status, one history row per event
    (plus `other_rows`, e.g. a note's; a duplicate would be a second row) and one journal record per event id."""
    assert history_rows(store, database, streams) == {
        case_id: sorted([event["id"] for event in stream] + (other_rows or {}).get(case_id, []))
        for case_id, stream in streams.items()}
    with store.client() as mongo:
        db = mongo[database]
        cases = {doc["_id"]: doc for doc in db["cases"].find({"_id": {"$in": list(streams)}})}
        assert {cid: (doc["version"], doc["status"]) for cid, doc in cases.items()} == {
            cid: (len(stream), stream[-1]["data"]["status"]) for cid, stream in streams.items()}
        for case_id, stream in streams.items():
            # A journal record is keyed by the event's (source, id), as CloudEvents identify an event.
            journal = [(record["source"], record["eventId"])
                       for record in db["events"].find({"caseId": case_id}, {"source": 1, "eventId": 1, "status": 1})
                       if record["status"] == "APPLIED"]
            assert sorted(journal) == sorted((event["source"], event["id"]) for event in stream), case_id


def audit_verify(store: WireStore, database: str) -> tuple[int, dict[str, Any]]:
    """`python audit_verify.py` as an operator runs it against the store: its exit code and its JSON line."""
    done = subprocess.run([sys.executable, "audit_verify.py"], cwd=ROOT, capture_output=True, timeout=120,
                          env=app_environment({"MONGODB_URI": store.uri, "MONGODB_DATABASE": database}))
    lines = done.stdout.decode().strip().splitlines()
    if not lines:
        pytest.fail(f"audit_verify.py printed nothing (exit {done.returncode}): {done.stderr.decode()[-2000:]}")
    return done.returncode, orjson.loads(lines[-1])


@pytest.fixture
async def store_connections(wire_store: WireStore, repository: Repository) -> AsyncIterator[Callable[[], Database]]:
    """Opens connections to one database on the test's wire store, one per in-process instance, as separate
    processes would have: what one instance wrote, another reads back from the store process, not from a shared
    object. Instances are stopped before the connections close."""
    opened: list[Database] = []
    name = f"case_repository_{uuid.uuid4().hex[:8]}"

    def open_connection() -> Database:
        opened.append(connect(wire_store.uri, name))
        return opened[-1]

    yield open_connection
    await repository.stop_all()
    for database in opened:
        database.close()
