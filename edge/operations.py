"""GraphQL operations as operators count them: a bounded label per operation, and the metrics by label and outcome.

Operation names are chosen by clients, so a label is only ever: the name of an operation that is in the request's
document (which parsed), truncated to 64 characters; `anonymous` for an unnamed one; and `other` for anything
else (no document, a syntax error, a name the document does not define) and for every new name once 100 distinct
labels have been seen by this process. So the metrics' label sets stay bounded whatever clients send.

Over HTTP an operation is counted when it is answered (edge/access_log.py). Over WebSocket each `subscribe` message
is one operation (edge/view.py): open while it runs, counted by operation, type and outcome when it ends (the
server's complete or error, the client's complete, the socket closing). Its outcome is `ok` or the code of the
first error of a refusal (the `error` frame: it never ran) or of a query's or mutation's result; a subscription's
pushes are not operations, so an error in a later push does not change it, and nothing here runs per push.
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from functools import lru_cache
from typing import Any

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, parse
from prometheus_client import Counter, Gauge, Histogram

MAX_LABEL_LENGTH = 64
MAX_LABELS = 100
ANONYMOUS, OTHER = "anonymous", "other"
# Query-limit documents are 2,000 tokens at most (schema/limits.py): a longer one is refused anyway.
MAX_TOKENS = 2000
# An operation name may still hold a PESEL (11 digits): a label never carries a run of that many digits.
_LONG_NUMBER = re.compile(r"\d{11,}")

OPERATIONS = Counter("case_repository_graphql_operations_total",
                     "GraphQL operations over HTTP by operation and outcome (ok, or the first error's code)",
                     ["operation", "outcome"])
OPERATION_SECONDS = Histogram("case_repository_graphql_operation_seconds",
                              "Time to answer a GraphQL operation over HTTP, by operation", ["operation"])
SOCKET_OPERATIONS = Counter("case_repository_graphql_ws_operations_total",
                            "GraphQL operations over WebSocket (subscribe messages) by operation, type (query, "
                            "mutation, subscription; other: no such operation) and outcome, counted when they end",
                            ["operation", "type", "outcome"])
SOCKET_OPERATIONS_OPEN = Gauge("case_repository_graphql_ws_operations_open",
                               "GraphQL operations running over WebSocket, by operation and type",
                               ["operation", "type"])


class OperationLabels:
    """Hands out labels, remembering at most `limit` distinct ones; later newcomers are `other`."""

    def __init__(self, limit: int = MAX_LABELS) -> None:
        self._limit = limit
        self._seen: set[str] = {ANONYMOUS, OTHER}

    def label(self, query: str | None, operation_name: str | None) -> str:
        name = operation_in_document(query, operation_name) if query else None
        if name is None:
            return OTHER
        if name not in self._seen:
            if len(self._seen) >= self._limit + 2:  # anonymous and other are not counted against the limit
                return OTHER
            self._seen.add(name)
        return name


@lru_cache(maxsize=512)
def chosen_operation(query: str, operation_name: str | None) -> tuple[DocumentNode, OperationDefinitionNode] | None:
    """The parsed document and the operation in it that GraphQL would execute: the one named `operation_name`, or
    the only one when none is named. None if the document does not parse or has no such single operation."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS, no_location=True)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name is not None and o.name.value == operation_name)]
    return (document, chosen[0]) if len(chosen) == 1 else None


def operation_in_document(query: str, operation_name: str | None) -> str | None:
    """The chosen operation's name as a label (`anonymous` if it has none); None if the document names no such
    operation or does not parse."""
    found = chosen_operation(query, operation_name)
    if found is None:
        return None
    operation = found[1]
    name = operation.name.value if operation.name else ANONYMOUS
    return _LONG_NUMBER.sub("#", name)[:MAX_LABEL_LENGTH]


LABELS = OperationLabels()


def operation_type(query: str | None, operation_name: str | None) -> str:
    """`query`, `mutation` or `subscription`; `other` when the document names no such operation or does not parse."""
    found = chosen_operation(query, operation_name) if query else None
    return OTHER if found is None else found[1].operation.value


class SocketOperation:
    """One subscribe message of a WebSocket while it runs: open in the gauge, counted once when it ends."""

    def __init__(self, query: str | None, operation_name: str | None) -> None:
        self.label = LABELS.label(query, operation_name)
        self.type = operation_type(query, operation_name)
        self.outcome = "ok"
        SOCKET_OPERATIONS_OPEN.labels(self.label, self.type).inc()

    @property
    def single_result(self) -> bool:
        """A query or mutation: its result is its outcome (a subscription's results are pushes)."""
        return self.type != "subscription"

    def note(self, errors: Iterable[GraphQLError] | None) -> None:
        """The first error the operation answered with decides its outcome; later ones change nothing."""
        if self.outcome == "ok":
            for error in errors or ():
                self.outcome = str((error.extensions or {}).get("code", "INTERNAL"))
                return

    async def noting(self, results: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """A query's or mutation's results (one, or a few with @defer) as they pass, each noted."""
        async for result in results:
            self.note(getattr(result, "errors", None))
            yield result

    def ended(self) -> None:
        SOCKET_OPERATIONS_OPEN.labels(self.label, self.type).dec()
        SOCKET_OPERATIONS.labels(self.label, self.type, self.outcome).inc()


def count_operation(operation: str, codes: tuple[str, ...], seconds: float) -> None:
    """One answered operation: its outcome is `ok` or the code of its first error."""
    OPERATIONS.labels(operation, codes[0] if codes else "ok").inc()
    OPERATION_SECONDS.labels(operation).observe(seconds)
