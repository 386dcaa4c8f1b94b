"""CloudEvents 1.0 envelopes (structured JSON or binary `ce_*` headers) into validated case events."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from pydantic import ValidationError

from consumers.bounds import bounds_problem
from consumers.event_types import DATA_MODELS, INTERNAL_DATA_MODELS, Data
from consumers.storable import storage_problem
from stores.events import Identity, event_key

log = logging.getLogger(__name__)

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
# The `source` of every CloudEvent the repository writes (its own events, state changes, commands).
SOURCE = "case-repository"
_REQUIRED = ("specversion", "id", "source", "type", "subject")
MAX_SEQUENCE_DIGITS = 18
# A `time` later than this ahead of the repository's clock is refused: ordered by time, such an event would set
# its fields for good (every real later event would look older). A day covers any producer's clock skew.
MAX_TIME_AHEAD = timedelta(days=1)


class InvalidEvent(Exception):
    """An event that can never be applied; it goes to the DLQ (or back to the caller) with `reason`."""

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


# (source, id): what makes an event itself, as CloudEvents defines it.
EventIdentity = Identity


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
    def identity(self) -> EventIdentity:
        """What makes an event itself (CloudEvents: `source` + `id`): duplicates are detected by it."""
        return (self.source, self.id)

    @property
    def key(self) -> str:
        """The identity as one string, the `_id` of its journal record and history row."""
        return event_key(self.source, self.id)

    @property
    def order(self) -> list[Any]:
        """Newer events have a larger order; the event id breaks ties so every replica agrees."""
        if self.sequence is not None:
            return [self.sequence, self.id]
        assert self.time is not None
        return [int(self.time.timestamp() * 1_000_000), self.id]


def _parse_time(value: Any, *, received: bool) -> datetime:
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
    try:
        # 9999-12-31T23:59:59-23:59 is a valid timestamp whose UTC form is past year 9999.
        utc = moment.astimezone(timezone.utc)
    except (OverflowError, ValueError) as error:
        raise InvalidEvent(f"time: outside the years 1 to 9999 in UTC ({value!s:.64})") from error
    if received and utc > datetime.now(timezone.utc) + MAX_TIME_AHEAD:
        raise InvalidEvent(f"time: more than {MAX_TIME_AHEAD.days} day ahead of the repository's clock "
                           f"({utc.isoformat()})")
    return to_millisecond(utc)


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


def parse_envelope(envelope: Mapping[str, Any], *, internal: bool = False, received: bool = True) -> CaseEvent:
    """Validate a structured CloudEvent (already decoded from JSON). `internal`: also the repository's own event
    types (read back from its journal); producers' events never are. `received`: arriving now, so bounded in
    length and time; False for an event read back from the journal, checked when it arrived.

    Whatever the envelope holds, the outcome is a CaseEvent or an InvalidEvent: an error of any other kind
    would look like an outage to the ingest loop, which would then retry the same message for ever."""
    try:
        return _parse_envelope(envelope, internal=internal, received=received)
    except InvalidEvent:
        raise
    except Exception as error:  # noqa: BLE001 - one event's fault, never a reason to stop its partition
        log.exception("event could not be read")
        raise InvalidEvent(f"event: cannot be read ({type(error).__name__})") from error


def _parse_envelope(envelope: Mapping[str, Any], *, internal: bool, received: bool) -> CaseEvent:
    if not isinstance(envelope, Mapping):
        raise InvalidEvent("event: a CloudEvent must be a JSON object")
    event_id = envelope.get("id") if isinstance(envelope.get("id"), str) else None
    if (problem := storage_problem(dict(envelope))) is not None:
        raise InvalidEvent(problem, event_id if event_id is not None and storage_problem(event_id) is None else None)
    for name in _REQUIRED:
        value = envelope.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidEvent(f"{name}: required, a non-empty string", event_id)
    if received and (problem := bounds_problem(envelope)) is not None:
        raise InvalidEvent(problem, event_id if len(event_id or "") <= 256 else None)
    if envelope["specversion"] != "1.0":
        raise InvalidEvent(f"specversion: only 1.0 is supported, got {envelope['specversion']!r}", event_id)
    content_type = envelope.get("datacontenttype")
    if content_type not in (None, "application/json"):
        raise InvalidEvent(f"datacontenttype: must be application/json, got {content_type!r}", event_id)
    model = DATA_MODELS.get(envelope["type"]) or (INTERNAL_DATA_MODELS.get(envelope["type"]) if internal else None)
    if model is None:
        raise InvalidEvent(f"type: unknown event type {envelope['type']!r}", event_id)
    try:
        time = _parse_time(envelope["time"], received=received) if envelope.get("time") is not None else None
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


def _header_text(name: str, raw: Any) -> str:
    if raw is None:
        raise InvalidEvent(f"header {name}: has no value")
    if not isinstance(raw, bytes):
        raise InvalidEvent(f"header {name}: not bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvent(f"header {name}: not valid UTF-8 (byte {error.start})") from error


def parse_kafka_message(
    value: bytes | None, headers: Iterable[tuple[str, bytes | None]] | None, key: bytes | None = None
) -> CaseEvent:
    """Structured mode unless the message carries `ce_*` headers (binary mode). Anything unusable about the
    message — its value, headers or key — is an InvalidEvent, never another error."""
    try:
        return _parse_kafka_message(value, headers, key)
    except InvalidEvent:
        raise
    except Exception as error:  # noqa: BLE001 - see parse_envelope
        log.exception("message could not be read")
        raise InvalidEvent(f"message: cannot be read ({type(error).__name__})") from error


def _parse_kafka_message(
    value: bytes | None, headers: Iterable[tuple[str, bytes | None]] | None, key: bytes | None
) -> CaseEvent:
    header_map = {str(name).lower(): raw for name, raw in headers or ()}
    if "ce_specversion" in header_map:
        envelope: dict[str, Any] = {
            name[3:]: _header_text(name, raw) for name, raw in header_map.items() if name.startswith("ce_")
        }
        content_type = _header_text("content-type", header_map.get("content-type", b"application/json"))
        if content_type.split(";")[0].strip() != "application/json":
            raise InvalidEvent(f"content-type: binary mode data must be application/json, got {content_type!r}")
        envelope["data"] = _decode_json(value, "data")
    else:
        envelope = _decode_json(value, "event")
    event = parse_envelope(envelope)
    if key is not None and key.decode("utf-8", "replace") != event.case_id:
        raise InvalidEvent(f"key: the Kafka key {key[:128]!r} is not the case id {event.case_id!r}", event.id)
    return event
