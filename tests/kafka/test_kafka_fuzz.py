"""Issue 11, item 2, against the real broker: no single message stops a partition, of `case-events` or of
`case-updates`. Many malformed envelopes, headers, times, sizes and encodings (the shapes of
tests/test_ingest_unusable_messages.py, and seeded random ones) sit on one partition of each topic ahead of a valid
event; that event is applied and its update delivered, the DLQ holds every bad event with its reason, the skipped
updates are counted by reason, and /readyz stays 200 throughout."""
from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from settings import Settings
from stores.database import Database
from tests.factories import case_created_data, envelope
from tests.kafka.kit import KafkaProbe, Repository, Topics, kafka_of, services_of, wait_for, wait_for_versions
from tests.test_ingest_unusable_messages import UNUSABLE_EVENTS, UNUSABLE_UPDATES

pytestmark = pytest.mark.kafka

CASE = "CASE-U-1"  # the case of the shapes imported from the unit tests
SEED = 20261201
RANDOM_EVENTS = 60
RANDOM_UPDATES = 30
_WRONG_TYPES: list[Any] = [None, 7, -1, 1.5, True, [], ["x"], {}, {"a": 1}, ""]


def _valid() -> dict[str, Any]:
    return envelope("case.status_changed", CASE, {"status": "IN_REVIEW", "stage": "ANALYSIS"}, event_id="fuzz",
                    sequence=2)


def _random_event(rng: random.Random, n: int) -> tuple[bytes | None, list[tuple[str, bytes | None]]]:
    """One message that can never be a valid event, by one of several kinds of damage."""
    raw = {**_valid(), "id": f"fuzz-{n}"}
    kind = n % 8
    if kind == 0:  # truncated JSON
        value = orjson.dumps(raw)
        return value[: rng.randrange(1, len(value) - 1)], []
    if kind == 1:  # a required attribute of the wrong type
        raw[rng.choice(["id", "source", "type", "subject", "specversion"])] = rng.choice(_WRONG_TYPES)
        return orjson.dumps(raw), []
    if kind == 2:  # a time whose UTC form is past year 9999, or years ahead
        raw["time"] = rng.choice([
            f"9999-12-31T{rng.randrange(12, 24):02d}:{rng.randrange(60):02d}:00-{rng.randrange(13, 24):02d}:59",
            f"{rng.randrange(2100, 9999)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T00:00:00Z",
            (datetime.now(timezone.utc) + timedelta(days=rng.randrange(2, 9000))).isoformat()])
        raw.pop("sequence")
        return orjson.dumps(raw), []
    if kind == 3:  # bytes that are not UTF-8
        return b"\xff" + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))), []
    if kind == 4:  # binary mode, one header without a value or not UTF-8
        headers: dict[str, bytes | None] = {f"ce_{k}": str(v).encode() for k, v in raw.items()
                                            if k not in ("data", "datacontenttype")}
        headers[rng.choice([*headers])] = rng.choice([None, b"\xc3\x28", b"\xff\xfe\xfd"])
        return orjson.dumps(raw["data"]), [*headers.items(), ("content-type", b"application/json")]
    if kind == 5:  # a string past the store's 64 KiB
        raw["data"] = {"status": "x" * rng.randrange(65_537, 200_000)}
        return orjson.dumps(raw), []
    if kind == 6:  # an id, case id or free text past its bound
        name, limit = rng.choice([("id", 256), ("source", 256), ("subject", 128)])
        raw[name] = "y" * rng.randrange(limit + 1, limit * 20)
        return orjson.dumps(raw), []
    raw["data"] = rng.choice([[], "IN_REVIEW", 5, None, {"status": 5}, {"status": "X", "colour": "red"}])
    return orjson.dumps(raw), []


def _random_update(rng: random.Random, n: int) -> bytes:
    state = {"specversion": "1.0", "id": f"{CASE}:{n}", "type": "case.state_changed",
             "data": {"id": CASE, "status": "NEW", "tasks": [{"id": "T-1", "dueAt": None}]}}
    value = orjson.dumps(state)
    kind = n % 4
    if kind == 0:
        return value[: rng.randrange(1, len(value) - 1)]
    if kind == 1:
        state["data"][rng.choice(["id", "tasks", "updatedAt", "restricted", "customerId"])] = rng.choice(
            [7, ["x"], {"a": 1}, 1.5, "not-a-time" * 3])
        return orjson.dumps(state)
    if kind == 2:
        return b"\xfe" + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 100)))
    state["type"] = rng.choice([["case.state_changed"], 42, "case.imploded", {"t": 1}])
    return orjson.dumps(state)


async def _readyz(client: Any) -> int:
    return (await client.get("/readyz")).status


def _skipped_total(text: str) -> float:
    return sum(float(v) for v in re.findall(r"^case_repository_updates_skipped_total\{[^}]*\} (\S+)$", text,
                                            re.MULTILINE))


async def test_no_message_stops_a_partition_of_case_events_or_case_updates(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
) -> None:
    rng = random.Random(SEED)
    client = await repository.start_app(kafka_settings, database)
    services = services_of(client)
    assert await _readyz(client) == 200
    skipped_before = _skipped_total(await (await client.get("/metrics")).text())
    # A producer allowed to send what the repository's own never would (more than 1 MiB).
    big = AIOKafkaProducer(bootstrap_servers=probe.bootstrap, acks="all", max_request_size=4 * 1024 * 1024)
    await big.start()
    try:
        # given case-updates: every unusable shape on the case's partition (key = case id)
        bad_updates = [value for _, value, _ in UNUSABLE_UPDATES]
        bad_updates += [_random_update(rng, n) for n in range(RANDOM_UPDATES)]
        for value in bad_updates:
            await big.send_and_wait(topics.updates, value=value, key=CASE.encode())

        # and case-events: every unusable shape on the case's partition, then the case's valid creation
        bad_events: list[tuple[bytes | None, list[tuple[str, bytes | None]], str | None]] = [
            (value, headers, reason) for _, value, headers, key, reason in UNUSABLE_EVENTS if key == CASE.encode()]
        bad_events += [(*_random_event(rng, n), None) for n in range(RANDOM_EVENTS)]
        partitions = {await probe.produce(topics.events, value, CASE, headers) for value, headers, _ in bad_events}
        with services.bus.subscribe(CASE) as heard:
            created = envelope("case.created", CASE, case_created_data(), event_id="valid-1", sequence=1)
            partitions |= await probe.produce_events(topics.events, [created])
            assert len(partitions) == 1

            # then the valid event behind them is applied, and its update reaches this instance's subscribers
            await wait_for_versions(services, {CASE: 1})
            update = await wait_for(lambda: _next(heard), "the case's update delivered by the listener")
            assert (update.case_id, update.state["version"]) == (CASE, 1)
    finally:
        await big.stop()

    # and the DLQ holds every bad event, in order, with its reason
    letters = await probe.read(topics.dlq, len(bad_events))
    assert len(letters) == len(bad_events)
    for letter, (value, _, reason) in zip(sorted(letters, key=_origin_offset), bad_events, strict=True):
        headers = dict(letter.headers)
        assert letter.value == value
        assert headers["dlq_reason"], letter
        if reason is not None:
            assert headers["dlq_reason"].decode().startswith(reason), (reason, headers["dlq_reason"])

    # and every skipped update is counted, the whole partition committed, both loops alive, /readyz 200
    skipped_after = _skipped_total(await (await client.get("/metrics")).text())
    assert skipped_after - skipped_before == len(bad_updates)
    await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed to the end")
    kafka = kafka_of(client)
    assert (kafka._ingest.running, kafka._listener.running) == (True, True)
    assert await _readyz(client) == 200


async def _next(queue: Any) -> Any:
    return None if queue.empty() else queue.get_nowait()


def _origin_offset(letter: Any) -> int:
    return int(dict(letter.headers)["dlq_offset"])
