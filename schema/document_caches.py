"""The parsed document and the validation verdict of each query text, kept per process.

Strawberry's ValidationCache keys an LRU cache on (schema, document, rules), and a graphql-core document hashes by
walking every node of its tree: ~40-50 µs for the 326-field case detail, on every request, hit or not. The parser
cache already hands out one document object per query text, so here the verdict is kept by the identity of the
schema and the document (and the rule classes): an entry holds both, so while it is kept no other object can take
their ids.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension
from strawberry.schema.schema import validate_document

# Query texts whose parsed document and validation verdict are kept.
DOCUMENT_CACHE_SIZE = 512


class ParserCacheWithErrors(ParserCache):
    """ParserCache, except that a document that does not parse is left to Strawberry's own parse step,
    whose error handling gives the client a coded error (over WebSocket too)."""

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        try:
            execution.graphql_document = self.cached_parse_document(execution.query, **execution.parse_options)
        except GraphQLError:
            pass
        yield


# (id of schema, id of document, rule classes) -> (schema, document, errors): the objects pin their ids.
_VERDICTS: OrderedDict[tuple[int, int, tuple[Any, ...]], tuple[Any, Any, list[GraphQLError]]] = OrderedDict()


class ValidationCacheByIdentity(SchemaExtension):
    """Strawberry's ValidationCache, keyed by the identity of the schema and the parsed document."""

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        schema, document, rules = execution.schema._schema, execution.graphql_document, execution.validation_rules
        key = (id(schema), id(document), tuple(rules))
        kept = _VERDICTS.get(key)
        if kept is not None and kept[0] is schema and kept[1] is document:
            _VERDICTS.move_to_end(key)
            errors = kept[2]
        else:
            errors = validate_document(schema, document, rules)
            _VERDICTS[key] = (schema, document, errors)
            if len(_VERDICTS) > DOCUMENT_CACHE_SIZE:
                _VERDICTS.popitem(last=False)
        execution.pre_execution_errors = errors
        yield


def forget_documents() -> None:
    """Drop every kept document and verdict (a test run builds a schema per test; a server builds one)."""
    _VERDICTS.clear()
    ParserCacheWithErrors(maxsize=DOCUMENT_CACHE_SIZE).cached_parse_document.cache_clear()
