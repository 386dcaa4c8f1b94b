"""GraphQL operations as operators count them: a bounded label per operation, and the metrics by label and outcome.

Operation names are chosen by clients, so a label is only ever: the name of an operation that is in the request's
document (which parsed), truncated to 64 characters; `anonymous` for an unnamed one; and `other` for anything
else (no document, a syntax error, a name the document does not define) and for every new name once 100 distinct
labels have been seen by this process. So the metrics' label sets stay bounded whatever clients send.
"""
from __future__ import annotations

import re
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, parse
from prometheus_client import Counter, Histogram

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


def count_operation(operation: str, codes: tuple[str, ...], seconds: float) -> None:
    """One answered operation: its outcome is `ok` or the code of its first error."""
    OPERATIONS.labels(operation, codes[0] if codes else "ok").inc()
    OPERATION_SECONDS.labels(operation).observe(seconds)
