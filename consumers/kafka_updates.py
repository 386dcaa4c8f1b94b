"""Each server process reads `case-updates` (no group, from the end) to feed its own live subscriptions and
evict its own cached responses: `case.state_changed`, `case.task_changed` and `case.terms_changed` alike
(`published_from_event` tells them apart; an unknown type is skipped like an unreadable message).

Every instance must see every update (a subscriber may be connected to any of them), so this consumer
has no group: it takes all partitions and starts at their current end when the app starts.

No message can end the loop: one this version cannot use (not JSON, not an object, an unknown type, a field of
the wrong shape, larger than the repository ever sends) is skipped with its reason logged and counted in
`case_repository_updates_skipped_total{reason}`; so is any error reading one. Only a broker error pauses it.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from consumers.publication import (
    _CASE_TIMES, _ITEM_TIMES, CASE_VISIBILITY, NOTE_CHANGED, RECORD_CHANGE_TYPES, Published, published_from_event,
)
from consumers.updates import UPDATES_SKIPPED, UpdatesBus
from settings import Settings

log = logging.getLogger(__name__)
POLL_TIMEOUT_MS = 500
RETRY_SECONDS = 1.0
# The repository's own producer sends at most aiokafka's default max_request_size (1 MiB): anything larger on
# the topic is not an update of ours, and parsing it would hold the event loop.
MAX_UPDATE_BYTES = 1024 * 1024
MAX_ID_CHARS = 256
STATE_CHANGED = "case.state_changed"


class UnusableUpdate(Exception):
    """A `case-updates` message this version cannot use; `reason` is the metric label, `detail` the log's."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _text_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _time_or_none(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _check_visibility(data: Mapping[str, Any]) -> None:
    """The fields a subscriber's row scope and the cache's eviction read must have their types."""
    for name in CASE_VISIBILITY:
        value = data.get(name)
        fits = (value is None or isinstance(value, bool)) if name == "restricted" else _text_or_none(value)
        if not fits:
            raise UnusableUpdate("bad_shape", f"data.{name} has the wrong type")


def _check_state(event: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    if not isinstance(data.get("id"), str) or not data["id"] or len(data["id"]) > MAX_ID_CHARS:
        raise UnusableUpdate("bad_shape", "data.id: a case id is required")
    if not _text_or_none(event.get("previousstatus")) or not _text_or_none(data.get("status")):
        raise UnusableUpdate("bad_shape", "status or previousstatus is not text")
    for name in _CASE_TIMES:
        if not _time_or_none(data.get(name)):
            raise UnusableUpdate("bad_shape", f"data.{name} is not a timestamp")
    for list_name, fields in _ITEM_TIMES.items():
        items = data.get(list_name, [])
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise UnusableUpdate("bad_shape", f"data.{list_name} is not a list of objects")
        if not all(_time_or_none(item.get(name)) for item in items for name in fields):
            raise UnusableUpdate("bad_shape", f"data.{list_name}: a time is not a timestamp")


def _check_record_change(event: Mapping[str, Any], event_type: str, data: Mapping[str, Any]) -> None:
    case_id = data.get("caseId")
    if not isinstance(event.get("id"), str) or not _time_or_none(event.get("time")):
        raise UnusableUpdate("bad_shape", f"{event_type}: id or time missing or of the wrong type")
    if not (isinstance(case_id, str) and case_id and len(case_id) <= MAX_ID_CHARS) and not (
            event_type == NOTE_CHANGED and case_id is None and isinstance(data.get("customerId"), str)):
        raise UnusableUpdate("bad_shape", f"{event_type} without data.caseId")
    task = data.get("task")
    if task is not None and not isinstance(task, dict):
        raise UnusableUpdate("bad_shape", f"{event_type}: data.task is not an object")
    if isinstance(task, dict) and not all(_time_or_none(task.get(name)) for name in _ITEM_TIMES["tasks"]):
        raise UnusableUpdate("bad_shape", f"{event_type}: a task time is not a timestamp")


def read_update(value: bytes | None) -> Published:
    """What one `case-updates` message says, or UnusableUpdate saying why it cannot be used; never another error."""
    if value is None:
        raise UnusableUpdate("empty", "the message has no value")
    if len(value) > MAX_UPDATE_BYTES:
        raise UnusableUpdate("too_large", f"{len(value)} bytes, more than {MAX_UPDATE_BYTES}")
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise UnusableUpdate("not_json", str(error)) from error
    if not isinstance(event, dict):
        raise UnusableUpdate("not_an_object", f"a JSON {type(event).__name__}")
    event_type = event.get("type", STATE_CHANGED)
    if not isinstance(event_type, str):
        raise UnusableUpdate("unknown_type", f"type is a JSON {type(event_type).__name__}")
    if event_type != STATE_CHANGED and event_type not in RECORD_CHANGE_TYPES:
        raise UnusableUpdate("unknown_type", f"type {event_type[:64]!r}")
    data = event.get("data")
    if not isinstance(data, dict):
        raise UnusableUpdate("bad_shape", "data is not an object")
    _check_visibility(data)
    if event_type == STATE_CHANGED:
        _check_state(event, data)
    else:
        _check_record_change(event, event_type, data)
    try:
        return published_from_event(value)
    except Exception as error:  # noqa: BLE001 - a shape the checks above did not foresee is still the message's
        raise UnusableUpdate("bad_shape", f"{type(error).__name__}") from error


class UpdatesListener:
    def __init__(self, settings: Settings, bus: UpdatesBus) -> None:
        self._settings = settings
        self._bus = bus
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self._settings.kafka_topic_updates, bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=None, enable_auto_commit=False, auto_offset_reset="latest",
        )
        try:
            await self._consumer.start()
            # Fix the start positions now, so that nothing published after start() is missed.
            for partition in self._consumer.assignment():
                await self._consumer.position(partition)
        except BaseException:
            await self._consumer.stop()
            raise
        self._task = asyncio.create_task(self._run(), name="case-updates listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            except Exception:  # noqa: BLE001 - live updates are best effort; the loop must outlive a broker
                # hiccup (KafkaError) and a record the client cannot decode alike.
                log.exception("reading case-updates failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for messages in batch.values():
                for message in messages:
                    self._deliver(message.value, message.partition, message.offset)

    def _deliver(self, value: bytes | None, partition: int | None = None, offset: int | None = None) -> None:
        where = {"partition": partition, "offset": offset}
        try:
            published = read_update(value)
        except UnusableUpdate as error:
            UPDATES_SKIPPED.labels(error.reason).inc()
            log.warning("case-updates message skipped", extra={**where, "reason": error.reason, "detail": error.detail})
            return
        # The bus isolates its listeners; this guards the rest of the loop from a subscriber queue's surprise.
        try:
            self._bus.deliver(published)
        except Exception:  # noqa: BLE001 - one update must not end the listener on every instance
            UPDATES_SKIPPED.labels("delivery_failed").inc()
            log.exception("case-updates message not delivered", extra=where)
