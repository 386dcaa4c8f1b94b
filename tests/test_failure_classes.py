"""Which failures a retry can cure (the batch is rewound) and which fail every time (the event is dead-lettered),
with the real exception classes of aiokafka, PyMongo and BSON, as the ingest loop and the outbox relay see them."""
from __future__ import annotations

import asyncio

import pytest
from aiokafka import errors as kafka
from bson.errors import InvalidBSON, InvalidStringData
from pymongo.errors import (
    AutoReconnect, BulkWriteError, ConnectionFailure, CursorNotFound, DocumentTooLarge, DuplicateKeyError,
    ExecutionTimeout, InvalidDocument, InvalidOperation, NetworkTimeout, NotPrimaryError, OperationFailure,
    ServerSelectionTimeoutError, WriteConcernError, WriteError, WTimeoutError,
)

from consumers.failures import can_retry, failure_class, failure_reason
from errors import BadInput, Conflict, StoreUnavailable

SECRET = "85031207819"  # a PESEL in a driver message must never reach a reason


def _labelled(error: OperationFailure, label: str) -> OperationFailure:
    error._add_error_label(label)
    return error


def _bulk(*codes: int, write_concern: bool = False) -> BulkWriteError:
    details = {"writeErrors": [{"index": i, "code": code, "errmsg": f"doc {SECRET}", "op": {"pesel": SECRET}}
                               for i, code in enumerate(codes)],
               "writeConcernErrors": [{"code": 64, "errmsg": "waiting for replication timed out"}] if write_concern
               else []}
    return BulkWriteError(details)


RETRIABLE = {
    # aiokafka: by `retriable`, plus what describes the broker rather than the message
    "kafka connection lost": kafka.KafkaConnectionError("Connection at 127.0.0.1:9092 closed"),
    "not leader": kafka.NotLeaderForPartitionError(),
    "request timed out": kafka.RequestTimedOutError(),
    "no brokers": kafka.NoBrokersAvailable(),
    "unknown topic while it is created": kafka.UnknownTopicOrPartitionError(),
    "coordinator moving": kafka.NotCoordinatorForGroupError(),
    "batch expired while the broker was down": kafka.KafkaTimeoutError(),
    "producer closed at shutdown": kafka.ProducerClosed(),
    "topic ACL missing (an operator fixes it)": kafka.TopicAuthorizationFailedError(),
    # MongoDB outages
    "primary stepped down": AutoReconnect("primary stepped down"),
    "not primary": NotPrimaryError("not primary", {"code": 10107}),
    "network timeout": NetworkTimeout("timed out"),
    "no server selected": ServerSelectionTimeoutError("no servers"),
    "connection refused": ConnectionFailure("refused"),
    # server answers about the deployment, not the document
    "stepdown code": OperationFailure("Primary stepped down", 189),
    "shutdown code": OperationFailure("interrupted at shutdown", 11600),
    "write conflict": OperationFailure("WriteConflict", 112),
    "missing role": OperationFailure("not authorized on cases", 13),
    "max time": ExecutionTimeout("operation exceeded time limit", 50),
    "write concern timeout": WTimeoutError("waiting for replication timed out", 64),
    "write concern failure": WriteConcernError("write concern failed", 64),
    "cursor gone": CursorNotFound("cursor id not found", 43),
    "retryable-write label": _labelled(OperationFailure("something odd", 999_999), "RetryableWriteError"),
    "transient-transaction label": _labelled(WriteError("conflict", 999_999), "TransientTransactionError"),
    "bulk: only write-concern errors": _bulk(write_concern=True),
    "bulk: every write error transient": _bulk(112, 189),
    # our own domain errors and Python's
    "store unavailable": StoreUnavailable("store down"),
    "kept conflicting": Conflict("cases ['C-1'] kept changing under the pipeline"),
    "socket reset": ConnectionResetError(),
    "asyncio timeout": asyncio.TimeoutError(),
    # never a poison event: it propagates
    "cancelled": asyncio.CancelledError(),
    "interrupted": KeyboardInterrupt(),
    "a group with an outage in it": ExceptionGroup("publish", [ValueError("bug"), AutoReconnect("down")]),
}

NEVER_HEALS = {
    # aiokafka
    "state event over 1 MiB": kafka.MessageSizeTooLargeError(
        "The message is 1200000 bytes when serialized which is larger than the maximum request size"),
    "broker refuses the batch size": kafka.RecordListTooLargeError(),
    "corrupt record": kafka.CorruptRecordException(),
    "invalid timestamp": kafka.InvalidTimestampError(),
    # BSON: the bytes can never be built
    "document over 16 MiB": DocumentTooLarge(f"BSON document too large (17000000 bytes) {SECRET}"),
    "not encodable": InvalidDocument(f"cannot encode object: {SECRET}, of type: <class 'set'>"),
    "bad string": InvalidStringData(f"strings in documents must be valid UTF-8: {SECRET!r}"),
    "bad bson": InvalidBSON("bad eoo"),
    # server codes meaning the document can never be written
    "BSONObjectTooLarge": OperationFailure(f"object to insert too large {SECRET}", 10334),
    "update makes it too large": WriteError("Resulting document after update is larger than 16777216", 17419),
    "insert too large": WriteError("document to insert is larger than the maximum", 17420),
    "BadValue": OperationFailure(f"bad value {SECRET}", 2),
    "$-prefixed field": WriteError("The dollar ($) prefixed field '$x' is not valid for storage", 52),
    "InvalidDBRef": WriteError("The DBRef $ref field must be followed by a $id field", 55),
    "validation failed": WriteError("Document failed validation", 121),
    "unique index elsewhere": DuplicateKeyError(f"E11000 duplicate key pesel: {SECRET}", 11000),
    "an unlisted server code": OperationFailure("something new", 424242),
    "bulk: one document too large": _bulk(112, 17419),
    "bulk: one bad value": _bulk(2),
    "driver misuse": InvalidOperation("cannot use a cursor after close"),
    # a bug, or anything we do not know: isolate and dead-letter rather than loop
    "bug": ValueError("a bug that fails this event every time"),
    "key error": KeyError("history"),
    "domain rule": BadInput("status is required"),
    "year 9999 with a negative offset": OverflowError("date value out of range"),
    "a group of poisons": ExceptionGroup("publish", [ValueError("bug"), kafka.MessageSizeTooLargeError("big")]),
}


@pytest.mark.parametrize("error", RETRIABLE.values(), ids=RETRIABLE.keys())
def test_a_failure_that_a_retry_can_cure_is_retried(error: BaseException) -> None:
    assert can_retry(error) is True


@pytest.mark.parametrize("error", NEVER_HEALS.values(), ids=NEVER_HEALS.keys())
def test_a_failure_that_fails_every_time_is_not_retried(error: BaseException) -> None:
    assert can_retry(error) is False


@pytest.mark.parametrize("error", [*RETRIABLE.values(), *NEVER_HEALS.values()],
                         ids=[*RETRIABLE.keys(), *NEVER_HEALS.keys()])
def test_a_reason_is_short_names_the_class_and_carries_no_payload_data(error: BaseException) -> None:
    reason = failure_reason(error)

    assert reason.startswith(f"{failure_class(error)}: ")
    assert SECRET not in reason
    assert len(reason) <= 120
    assert reason.isascii() and "\n" not in reason


@pytest.mark.parametrize(("error", "reason"), [
    (NEVER_HEALS["state event over 1 MiB"], "MessageSizeTooLargeError: message larger than max_request_size"),
    (NEVER_HEALS["document over 16 MiB"], "DocumentTooLarge: document larger than MongoDB's BSON size limit"),
    (NEVER_HEALS["not encodable"], "InvalidDocument: document cannot be encoded as BSON"),
    (NEVER_HEALS["BSONObjectTooLarge"], "OperationFailure: server code 10334 (BSONObjectTooLarge)"),
    (NEVER_HEALS["update makes it too large"], "WriteError: server code 17419 (DocumentTooLarge (update result))"),
    (NEVER_HEALS["$-prefixed field"], "WriteError: server code 52 (DollarPrefixedFieldName)"),
    (NEVER_HEALS["an unlisted server code"], "OperationFailure: server code 424242 (unlisted code)"),
    (NEVER_HEALS["bulk: one document too large"], "BulkWriteError: server code 17419 (DocumentTooLarge (update result))"),
    (NEVER_HEALS["corrupt record"], "CorruptRecordException: CORRUPT_MESSAGE, not retriable"),
    (NEVER_HEALS["bug"], "ValueError: could not be applied; see the log"),
    (NEVER_HEALS["a group of poisons"], "ValueError: could not be applied; see the log"),
    (RETRIABLE["request timed out"], "RequestTimedOutError: REQUEST_TIMED_OUT, retriable"),
    (RETRIABLE["primary stepped down"], "AutoReconnect: transient; retried"),
])
def test_the_reason_says_what_an_operator_needs(error: BaseException, reason: str) -> None:
    assert failure_reason(error) == reason

