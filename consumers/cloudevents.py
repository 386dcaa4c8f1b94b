"""CloudEvents 1.0 envelopes (structured JSON or binary `ce_*` headers) into validated case events."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
from pydantic import ValidationError

from consumers.event_types import DATA_MODELS, INTERNAL_DATA_MODELS, Data
from consumers.storable import storage_problem

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
# The `source` of every CloudEvent the repository writes (its own events, state changes, commands).
SOURCE = "case-repository"
_REQUIRED = ("specversion", "id", "source", "type", "subject")
MAX_SEQUENCE_DIGITS = 18


class InvalidEvent(Exception):
    """An event that can never be applied; it goes to the DLQ (or back to the caller) with `reason`."""

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class CaseEvent:
    id: str
    source: str
    type: str
    case_id: str
    time: datetime | None
    sequence: int | None
    data: Data
    envelope: dict[str, Any]

    @property
    def order(self) -> list[Any]:
        """Newer events have a larger order; the event id breaks ties so every replica agrees."""
        if self.sequence is not None:
            return [self.sequence, self.id]
        assert self.time is not None
        return [int(self.time.timestamp() * 1_000_000), self.id]


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise InvalidEvent(f"time: not an RFC 3339 timestamp ({value!r})") from error
    else:
        raise InvalidEvent("time: must be an RFC 3339 string")
    if moment.tzinfo is None:
        raise InvalidEvent("time: must carry a UTC offset")
    return to_millisecond(moment.astimezone(timezone.utc))


def to_millisecond(moment: datetime) -> datetime:
    """MongoDB keeps milliseconds: cut finer digits on the way in, so order and history read back the same."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _parse_sequence(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value)
    # ASCII digits only (str.isdigit also accepts '²', which int() refuses), and few enough to fit MongoDB's int64.
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_SEQUENCE_DIGITS:
        raise InvalidEvent(f"sequence: must be a non-negative integer as a string of at most "
                           f"{MAX_SEQUENCE_DIGITS} digits ({value!r})")
    return int(text)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        location = ".".join(str(p) for p in item["loc"]) or "data"
        parts.append(f"data.{location}: {item['msg']}")
    return "; ".join(parts)


def parse_envelope(envelope: Mapping[str, Any], *, internal: bool = False) -> CaseEvent:
    """Validate a structured CloudEvent (already decoded from JSON). `internal`: also the repository's own event
    types (read back from its journal); producers' events never are."""
    if not isinstance(envelope, Mapping):
        raise InvalidEvent("event: a CloudEvent must be a JSON object")
    event_id = envelope.get("id") if isinstance(envelope.get("id"), str) else None
    if (problem := storage_problem(dict(envelope))) is not None:
        raise InvalidEvent(problem, event_id if event_id is not None and storage_problem(event_id) is None else None)
    for name in _REQUIRED:
        value = envelope.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidEvent(f"{name}: required, a non-empty string", event_id)
    if envelope["specversion"] != "1.0":
        raise InvalidEvent(f"specversion: only 1.0 is supported, got {envelope['specversion']!r}", event_id)
    content_type = envelope.get("datacontenttype")
    if content_type not in (None, "application/json"):
        raise InvalidEvent(f"datacontenttype: must be application/json, got {content_type!r}", event_id)
    model = DATA_MODELS.get(envelope["type"]) or (INTERNAL_DATA_MODELS.get(envelope["type"]) if internal else None)
    if model is None:
        raise InvalidEvent(f"type: unknown event type {envelope['type']!r}", event_id)
    try:
        time = _parse_time(envelope["time"]) if envelope.get("time") is not None else None
        sequence = _parse_sequence(envelope.get("sequence"))
    except InvalidEvent as error:
        raise InvalidEvent(error.reason, event_id) from error
    if time is None and sequence is None:
        raise InvalidEvent("time: required when the event carries no sequence", event_id)
    data = envelope.get("data")
    if not isinstance(data, Mapping):
        raise InvalidEvent("data: required, a JSON object", event_id)
    try:
        validated = model.model_validate(data)
    except ValidationError as error:
        raise InvalidEvent(_describe(error), event_id) from error
    return CaseEvent(
        id=envelope["id"], source=envelope["source"], type=envelope["type"],
        case_id=envelope["subject"], time=time, sequence=sequence, data=validated,
        envelope=dict(envelope),
    )


def _decode_json(value: bytes | None, what: str) -> Any:
    if value is None:
        raise InvalidEvent(f"{what}: the message has no value")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent(f"{what}: not valid JSON ({error})") from error


def parse_kafka_message(
    value: bytes | None, headers: Iterable[tuple[str, bytes]], key: bytes | None = None
) -> CaseEvent:
    """Structured mode unless the message carries `ce_*` headers (binary mode)."""
    header_map = {name.lower(): raw for name, raw in headers or ()}
    if "ce_specversion" in header_map:
        envelope: dict[str, Any] = {
            name[3:]: raw.decode("utf-8", "replace") for name, raw in header_map.items()
            if name.startswith("ce_")
        }
        content_type = header_map.get("content-type", b"application/json").decode("utf-8", "replace")
        if content_type.split(";")[0].strip() != "application/json":
            raise InvalidEvent(f"content-type: binary mode data must be application/json, got {content_type!r}")
        envelope["data"] = _decode_json(value, "data")
    else:
        envelope = _decode_json(value, "event")
    event = parse_envelope(envelope)
    if key is not None and key.decode("utf-8", "replace") != event.case_id:
        raise InvalidEvent(f"key: the Kafka key {key!r} is not the case id {event.case_id!r}", event.id)
    return event
