"""The one place that turns exceptions into GraphQL errors with `extensions.code` (CONTRACT §3)."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

from graphql.error import GraphQLError
from strawberry.extensions import SchemaExtension

from errors import DomainError

log = logging.getLogger(__name__)


# Where the schema is not described (introspection off), a document or variables that do not fit it get this, not
# graphql-core's message, which names types, fields and suggestions ("Did you mean 'pesel'?").
UNDESCRIBED_SCHEMA = "the document or its variables do not match the schema (it is not described here)"


def classify(error: GraphQLError, *, expose_internal: bool, describe_schema: bool = True) -> GraphQLError:
    """Give every error a contract code; unexpected ones get a correlation id that is in the log."""
    extensions = dict(error.extensions or {})
    original = error.original_error
    if "code" in extensions:
        return error
    if isinstance(original, DomainError) and original.code != "INTERNAL":
        extensions.update(original.extensions, code=original.code)
        message = error.message
    elif original is None or isinstance(original, GraphQLError):
        # Parse, validation and variable coercion errors: the client's document or variables are wrong.
        extensions["code"] = "BAD_USER_INPUT"
        # A syntax error is about the text alone, the introspection refusal names only `__schema`; the rest would
        # describe the schema.
        plain = error.message.startswith(("Syntax Error", "GraphQL introspection has been disabled"))
        message = error.message if describe_schema or plain else UNDESCRIBED_SCHEMA
    else:
        correlation_id = uuid.uuid4().hex
        # The exception, not the request: documents and variables may hold personal data.
        log.error("unexpected error in resolver", exc_info=original,
                  extra={"correlation_id": correlation_id, "path": error.path})
        extensions.update(code="INTERNAL", correlationId=correlation_id)
        message = error.message if expose_internal else f"Internal error (correlation id {correlation_id})"
    return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path, original_error=original, extensions=extensions)


def log_errors(errors: list[GraphQLError]) -> None:
    """Replaces Strawberry's error log, which quotes the request's source lines (PESELs in arguments, ...).

    A refusal is logged by kind and path only; an unexpected error is logged once by `classify`, with its
    correlation id.
    """
    for error in errors:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            log.info("request refused: invalid document or variables", extra={"path": error.path})
        elif isinstance(original, DomainError) and original.code != "INTERNAL":
            log.info("request refused", extra={"code": original.code, "path": error.path})


class ErrorCodes(SchemaExtension):
    """Adds codes after the operation; a schema extension so it runs once per operation, not per field."""

    expose_internal = True
    describe_schema = True

    def on_operation(self) -> Iterator[None]:
        yield
        self._classify(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # WebSocket results are sent before on_operation ends.
        self._classify(result)
        yield

    def _classify(self, result: Any) -> None:
        if result is not None and getattr(result, "errors", None):
            result.errors = [classify(e, expose_internal=self.expose_internal, describe_schema=self.describe_schema)
                             for e in result.errors]


def error_codes(expose_internal: bool, describe_schema: bool = True) -> type[ErrorCodes]:
    return type("ErrorCodes", (ErrorCodes,), {"expose_internal": expose_internal, "describe_schema": describe_schema})
