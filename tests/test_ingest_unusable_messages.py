"""Issue 11, item 2, without the broker: no single message stops a partition. Whatever a `case-events` message
holds, reading it ends in a CaseEvent or an InvalidEvent (dead-lettered with its reason, the batch committed);
whatever a `case-updates` message holds, the listener skips it with a counted reason and delivers the next.
tests/kafka/test_kafka_fuzz.py replays the same shapes against a real broker."""
from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from consumers.cloudevents import InvalidEvent, parse_kafka_message
from consumers.kafka_ingest import IngestConsumer
from consumers.kafka_updates import UnusableUpdate, UpdatesListener, read_update
from consumers.updates import UpdatesBus
from stores.case_scope import EVERYTHING
from tests.factories import case_created_data, envelope
from tests.ingest_fakes import PARTITION, Consumer, Letters, Message

CASE = "CASE-U-1"


def _structured(**overrides: Any) -> bytes:
    return orjson.dumps({**envelope("case.status_changed", CASE, {"status": "X"}, event_id="bad"), **overrides})


def _binary(**headers: bytes | None) -> list[tuple[str, bytes | None]]:
    base: dict[str, bytes | None] = {"ce_specversion": b"1.0", "ce_id": b"bin-1", "ce_source": b"tests",
                                     "ce_type": b"case.status_changed", "ce_subject": CASE.encode(),
                                     "ce_time": b"2026-11-21T10:00:00Z", "content-type": b"application/json"}
    base.update(headers)
    return list(base.items())


def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


STATUS = orjson.dumps({"status": "X"})
# (what is wrong, value, headers, key, the start of the reason)
UNUSABLE_EVENTS: list[tuple[str, bytes | None, list[tuple[str, bytes | None]], bytes | None, str]] = [
    ("a time past year 9999 in UTC", _structured(time="9999-12-31T23:59:59-23:59"), [], CASE.encode(),
     "time: outside the years 1 to 9999 in UTC"),
    ("a time before year 1 in UTC", _structured(time="0001-01-01T00:00:00+23:59"), [], CASE.encode(),
     "time: outside the years 1 to 9999 in UTC"),
    ("a time in year 9999", _structured(time="9999-12-31T23:59:59Z"), [], CASE.encode(),
     "time: more than 1 day ahead"),
    ("a time that is a number", _structured(time=1700000000), [], CASE.encode(), "time: must be an RFC 3339 string"),
    ("a sequence that is an object", _structured(sequence={"n": 1}), [], CASE.encode(), "sequence: must be"),
    ("no value", None, [], CASE.encode(), "event: the message has no value"),
    ("a value that is not UTF-8", b"\xff\xfe{}", [], CASE.encode(), "event: not valid JSON"),
    ("a JSON list", b"[1, 2]", [], CASE.encode(), "event: a CloudEvent must be a JSON object"),
    ("a JSON string", b'"hello"', [], CASE.encode(), "event: a CloudEvent must be a JSON object"),
    ("JSON nested too deep for the parser", b"[" * 2000 + b"]" * 2000, [], CASE.encode(), "event: not valid JSON"),
    ("nested deeper than the store takes", orjson.dumps({**orjson.loads(_structured()), "x": _nest(40)}), [],
     CASE.encode(), "event.x"),
    ("a key that is not UTF-8", _structured(), [], b"\xff\xfe", "key: the Kafka key"),
    ("a binary header without a value", STATUS, _binary(ce_id=None), CASE.encode(), "header ce_id: has no value"),
    ("a binary header that is not UTF-8", STATUS, _binary(ce_source=b"\xff\xfe"), CASE.encode(),
     "header ce_source: not valid UTF-8"),
    ("a content-type without a value", STATUS, _binary(**{"content-type": None}), CASE.encode(),
     "header content-type: has no value"),
    ("a binary time past 9999", STATUS, _binary(ce_time=b"9999-12-31T23:59:59-23:59"), CASE.encode(),
     "time: outside the years 1 to 9999 in UTC"),
    ("binary data that is a list", b"[]", _binary(), CASE.encode(), "data: required, a JSON object"),
    ("a huge string", _structured(data={"status": "x" * 70_000}), [], CASE.encode(),
     "event.data.status: longer than 65536 bytes"),
]


@pytest.mark.parametrize(("value", "headers", "key", "reason"), [u[1:] for u in UNUSABLE_EVENTS],
                         ids=[u[0] for u in UNUSABLE_EVENTS])
def test_every_unusable_case_events_message_is_an_invalid_event_with_its_reason(
    value: bytes | None, headers: list[tuple[str, bytes | None]], key: bytes | None, reason: str,
) -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_kafka_message(value, headers, key)
    assert refused.value.reason.startswith(reason), refused.value.reason


async def test_a_batch_of_unusable_messages_is_dead_lettered_and_the_valid_event_behind_them_applied(
    settings, services,
) -> None:
    # Given a partition holding every unusable shape, then a valid case.created of the same case
    created = envelope("case.created", CASE, case_created_data(), event_id="valid-1", sequence=1)
    messages = [Message(n, value, key, headers) for n, (_, value, headers, key, _) in enumerate(UNUSABLE_EVENTS)]
    messages.append(Message(len(messages), orjson.dumps(created), CASE.encode()))
    letters, consumer = Letters(), Consumer(end=len(UNUSABLE_EVENTS) + 2)
    ingest_loop = IngestConsumer(settings, services.pipeline, letters)
    ingest_loop._consumer = consumer

    # When the loop applies the batch
    await ingest_loop._apply({PARTITION: messages})

    # Then each unusable message is a dead letter with its reason, the valid event is applied, all committed
    assert len(letters.sent) == len(UNUSABLE_EVENTS)
    for (_, reason), (what, *_, expected) in zip(letters.sent, UNUSABLE_EVENTS, strict=True):
        assert reason.startswith(expected), (what, reason)
    stored = await services.cases.get_many([CASE], scope=EVERYTHING)
    assert list(stored) == [CASE]
    assert consumer.committed == {PARTITION: len(messages)}


def _state(**data: Any) -> bytes:
    return orjson.dumps({"specversion": "1.0", "id": f"{CASE}:1", "type": "case.state_changed",
                         "data": {"id": CASE, "status": "NEW", **data}})


# (what is wrong, value, the reason counted)
UNUSABLE_UPDATES: list[tuple[str, bytes | None, str]] = [
    ("no value", None, "empty"),
    ("not JSON", b"{nope", "not_json"),
    ("not UTF-8", b"\xff\xfe\x00", "not_json"),
    ("a JSON list", b"[1, 2, 3]", "not_an_object"),
    ("a JSON number", b"42", "not_an_object"),
    ("JSON null", b"null", "not_an_object"),
    ("an unknown type", orjson.dumps({"type": "case.exploded", "data": {}}), "unknown_type"),
    ("a type that is not text", orjson.dumps({"type": ["x"], "data": {}}), "unknown_type"),
    ("no data", orjson.dumps({"type": "case.state_changed"}), "bad_shape"),
    ("data that is a list", orjson.dumps({"type": "case.state_changed", "data": [1]}), "bad_shape"),
    ("a state without a case id", orjson.dumps({"type": "case.state_changed", "data": {"status": "X"}}),
     "bad_shape"),
    ("a case id that is a number", _state(id=7), "bad_shape"),
    ("tasks that are not a list", _state(tasks={"a": 1}), "bad_shape"),
    ("a task that is not an object", _state(tasks=["T-1"]), "bad_shape"),
    ("a time that is not a timestamp", _state(updatedAt="yesterday"), "bad_shape"),
    ("a task time that is a number", _state(tasks=[{"id": "T-1", "dueAt": 5}]), "bad_shape"),
    ("restricted that is text", _state(restricted="yes"), "bad_shape"),
    ("a task change without a case id", orjson.dumps({"type": "case.task_changed", "id": "x", "data": {}}),
     "bad_shape"),
    ("a task change whose task is a list",
     orjson.dumps({"type": "case.task_changed", "id": "x", "data": {"caseId": CASE, "task": []}}), "bad_shape"),
    ("larger than the repository sends", _state(title="x" * (1024 * 1024)), "too_large"),
]


@pytest.mark.parametrize(("value", "reason"), [u[1:] for u in UNUSABLE_UPDATES], ids=[u[0] for u in UNUSABLE_UPDATES])
def test_every_unusable_case_updates_message_is_refused_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(UnusableUpdate) as refused:
        read_update(value)
    assert refused.value.reason == reason


def _skipped(text: str, reason: str) -> float:
    match = re.search(rf'^case_repository_updates_skipped_total{{reason="{reason}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_the_listener_skips_unusable_updates_counts_them_and_delivers_the_next(settings, client) -> None:
    # Given a listener feeding a bus with a subscriber, and the skip counters as /metrics shows them
    bus = UpdatesBus()
    listener = UpdatesListener(settings, bus)
    before = await (await client.get("/metrics")).text()

    with bus.subscribe(CASE) as updates:
        # When every unusable shape arrives, then a valid state
        for offset, (_, value, _) in enumerate(UNUSABLE_UPDATES):
            listener._deliver(value, 0, offset)
        listener._deliver(_state(), 0, len(UNUSABLE_UPDATES))

        # Then the subscriber hears the valid state only
        assert updates.qsize() == 1
        assert updates.get_nowait().case_id == CASE

    # And /metrics counts each skipped message by its reason
    after = await (await client.get("/metrics")).text()
    expected: dict[str, int] = {}
    for _, _, reason in UNUSABLE_UPDATES:
        expected[reason] = expected.get(reason, 0) + 1
    assert {r: _skipped(after, r) - _skipped(before, r) for r in expected} == expected


async def test_a_listener_that_fails_on_an_update_does_not_stop_the_others(settings, client) -> None:
    # Given a bus whose first listener fails on every update
    bus = UpdatesBus()
    heard: list[str] = []

    def failing(published: Any) -> None:
        raise RuntimeError("a cache bug")

    bus.add_listener(failing)
    bus.add_listener(lambda published: heard.append(published.case_id))
    before = _skipped(await (await client.get("/metrics")).text(), "listener_failed")

    # When an update is delivered, then the second listener still hears it, and the failure is counted
    UpdatesListener(settings, bus)._deliver(_state(), 0, 0)
    assert heard == [CASE]
    assert _skipped(await (await client.get("/metrics")).text(), "listener_failed") == before + 1
