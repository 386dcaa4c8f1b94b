"""Whether a retry can cure a failure: the ingest loop rewinds on those and dead-letters the others.

A failure a retry cannot cure (a document MongoDB will never take, a message the broker will never take, a
bug that fails the same event every time) must not stop its partition: the event is isolated, dead-lettered
with `failure_reason` and committed. Everything about the environment rather than the event (outages,
timeouts, not-primary, missing permissions) is retried, or an outage would empty the topic into the DLQ.

Reasons are built from the exception's class and codes only, never from its message: driver messages quote
keys and values, and the reason travels in logs, DLQ headers and metrics.
"""
from __future__ import annotations

import asyncio

from aiokafka import errors as kafka
from bson.errors import BSONError
from pymongo.errors import BulkWriteError, DocumentTooLarge, InvalidDocument, OperationFailure, PyMongoError

from errors import Conflict, StoreUnavailable
from stores.database import OUTAGE_ERRORS

# Server codes meaning "this document (or this update of it) can never be written", whatever the retries.
NEVER_WRITABLE_CODES: dict[int, str] = {
    2: "BadValue", 9: "FailedToParse", 14: "TypeMismatch", 28: "PathNotViable",
    40: "ConflictingUpdateOperators", 52: "DollarPrefixedFieldName", 55: "InvalidDBRef", 56: "EmptyFieldName",
    57: "DottedFieldName", 66: "ImmutableField", 121: "DocumentValidationFailure", 10334: "BSONObjectTooLarge",
    16837: "UpdateOperatorPathConflict", 17280: "KeyTooLong", 17419: "DocumentTooLarge (update result)",
    17420: "DocumentTooLarge (insert)",
}
# Server codes about the deployment, not the document: a retry (or an operator's fix) heals them.
TRANSIENT_CODES: dict[int, str] = {
    6: "HostUnreachable", 7: "HostNotFound", 13: "Unauthorized", 18: "AuthenticationFailed", 24: "LockTimeout",
    43: "CursorNotFound", 46: "LockBusy", 50: "MaxTimeMSExpired", 64: "WriteConcernFailed", 89: "NetworkTimeout", 91: "ShutdownInProgress",
    112: "WriteConflict", 134: "ReadConcernMajorityNotAvailableYet", 189: "PrimarySteppedDown",
    251: "NoSuchTransaction", 262: "ExceededTimeLimit", 391: "ReauthenticationRequired",
    462: "IngressRequestRateLimitExceeded", 9001: "SocketException", 10058: "LegacyNotPrimary",
    10107: "NotWritablePrimary", 11600: "InterruptedAtShutdown", 11602: "InterruptedDueToReplStateChange",
    13435: "NotPrimaryNoSecondaryOk", 13436: "NotPrimaryOrSecondary", 14031: "OutOfDiskSpace",
}
TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError", "ResumableChangeStreamError")
# aiokafka marks these `retriable = False` because aiokafka itself will not resend, yet they describe the
# broker or the client's state, not the message: redelivering the batch later cures them.
_KAFKA_ENVIRONMENT: tuple[type[kafka.KafkaError], ...] = (
    kafka.KafkaTimeoutError, kafka.ProducerClosed, kafka.KafkaUnavailableError,
    kafka.TopicAuthorizationFailedError, kafka.ClusterAuthorizationFailedError,
    kafka.TransactionalIdAuthorizationFailed, kafka.SaslAuthenticationFailed, kafka.AuthenticationFailedError,
)
_RETRIABLE: tuple[type[BaseException], ...] = (
    *OUTAGE_ERRORS, StoreUnavailable, Conflict, ConnectionError, TimeoutError,
)
_KAFKA_REASONS = {
    kafka.MessageSizeTooLargeError: "message larger than max_request_size",
    kafka.RecordTooLargeError: "record larger than the fetch size",
}


def can_retry(error: BaseException) -> bool:
    """True when retrying later may succeed; False when the same input fails every time (a poison event).

    Not an `Exception` (`asyncio.CancelledError`, `KeyboardInterrupt`): True, as it is never the event's
    fault; the caller lets it propagate.
    """
    if not isinstance(error, Exception) or isinstance(error, asyncio.CancelledError):
        return True
    if isinstance(error, BaseExceptionGroup):
        return any(can_retry(inner) for inner in error.exceptions)
    if isinstance(error, _RETRIABLE):
        return True
    if isinstance(error, kafka.KafkaError):
        return bool(error.retriable) or isinstance(error, _KAFKA_ENVIRONMENT)
    if isinstance(error, BSONError):  # DocumentTooLarge, InvalidDocument, InvalidStringData: the bytes are wrong
        return False
    if isinstance(error, OperationFailure):
        return _operation_can_retry(error)
    if isinstance(error, PyMongoError):
        # The driver's own verdict on timeouts and labels; the rest (InvalidOperation, ...) is unknown.
        return error.timeout or any(error.has_error_label(label) for label in TRANSIENT_LABELS)
    return False  # unknown: isolate the event and dead-letter it rather than loop on it forever


def failure_reason(error: BaseException) -> str:
    """A short reason for logs and DLQ headers: the class and what it means, no payload data."""
    error = _poison_of(error)
    name = type(error).__name__
    if isinstance(error, kafka.KafkaError):
        return f"{name}: {_kafka_reason(error)}"
    if isinstance(error, DocumentTooLarge):
        return f"{name}: document larger than MongoDB's BSON size limit"
    if isinstance(error, InvalidDocument):
        return f"{name}: document cannot be encoded as BSON"
    if isinstance(error, BSONError):
        return f"{name}: data cannot be encoded as BSON"
    if isinstance(error, OperationFailure):
        code = _first_code(error, NEVER_WRITABLE_CODES) if isinstance(error, BulkWriteError) else error.code
        return f"{name}: server code {code} ({_code_name(code)})"
    if can_retry(error):
        return f"{name}: transient; retried"
    return f"{name}: could not be applied; see the log"


def failure_class(error: BaseException) -> str:
    """The class that decides the verdict (the first poison of a group), for a metric label."""
    return type(_poison_of(error)).__name__


def _operation_can_retry(error: OperationFailure) -> bool:
    if any(error.has_error_label(label) for label in TRANSIENT_LABELS) or error.timeout:
        return True
    if isinstance(error, BulkWriteError):
        details = error.details or {}
        codes = [item.get("code") for item in details.get("writeErrors", ())]
        if not codes:  # only write concern errors: the writes themselves were fine
            return bool(details.get("writeConcernErrors"))
        # One document MongoDB refuses fails the bulk write every time; isolating events finds it.
        return not any(code in NEVER_WRITABLE_CODES or code not in TRANSIENT_CODES for code in codes)
    return error.code in TRANSIENT_CODES


def _poison_of(error: BaseException) -> BaseException:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if not can_retry(inner):
                return _poison_of(inner)
        return _poison_of(error.exceptions[0])
    return error


def _kafka_reason(error: kafka.KafkaError) -> str:
    for kind, reason in _KAFKA_REASONS.items():
        if isinstance(error, kind):
            return reason
    code = getattr(error, "message", None)  # BrokerResponseError subclasses: the protocol's constant name
    suffix = "retriable" if can_retry(error) else "not retriable"
    return f"{code}, {suffix}" if isinstance(code, str) else suffix


def _first_code(error: BulkWriteError, preferred: dict[int, str]) -> int | None:
    codes = [item.get("code") for item in (error.details or {}).get("writeErrors", ())]
    return next((code for code in codes if code in preferred), codes[0] if codes else error.code)


def _code_name(code: int | None) -> str:
    if code is None:
        return "no code"
    return NEVER_WRITABLE_CODES.get(code) or TRANSIENT_CODES.get(code) or "unlisted code"
