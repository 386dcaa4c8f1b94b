"""Bounds on what a request's arguments may ask for, measured before anything executes (issue 11, item 4).

The query limits (schema/limits.py) bound the document; these bound the values it carries, literal or in variables,
which the token limit never sees: a 28 KB `or` filter is one variable. Each argument is walked along its declared
input type, so custom scalars (`JSON`, `_Any`) are single values here (events are bounded at ingest instead):
- every list (`status`, `or`, `_entities`' `representations`, …) holds at most `max_list_length` items;
- input objects nest at most `max_input_depth` levels (`filter` is 1, an `or` inside it 2, …);
- all the arguments of a request hold at most `max_input_items` input objects and items of lists of scalars;
- a string holds at most `max_string_length` characters, and a search text (`CaseFilter.text`, matched against
  every candidate case) at most `max_search_text_length`.
A refusal is QUERY_TOO_COMPLEX (the same code as the query limits: the request asks for more work than one request
may), names the argument and the limit, and is given before any resolver runs.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode, DocumentNode, GraphQLError, GraphQLID, GraphQLInputObjectType, GraphQLList, GraphQLNonNull,
    GraphQLSchema, GraphQLString, TypeInfo, get_named_type, TypeInfoVisitor, Undefined, Visitor, value_from_ast_untyped, visit,
)
from graphql.language import SKIP, VisitorAction

TOO_COMPLEX = "QUERY_TOO_COMPLEX"


@dataclass(frozen=True)
class InputLimits:
    # A page of ids or codes; a gateway's `_entities` batch of one page of references (duplicates dropped first).
    max_list_length: int = 100
    # `filter { or: [{ and: [{ or: [...] }] }] }` is 4.
    max_input_depth: int = 4
    max_input_items: int = 500
    # A note's text (4,000) fits; longer strings are never a legitimate argument.
    max_string_length: int = 10_000
    max_search_text_length: int = 200


# Input fields whose text each candidate document is matched against (a regular expression per case).
SEARCH_TEXT_FIELDS = frozenset({("CaseFilter", "text")})


class _OverLimit(Exception):
    def __init__(self, error: GraphQLError) -> None:
        self.error = error


def input_error(limits: InputLimits, schema: GraphQLSchema, document: DocumentNode,
                variables: Mapping[str, Any]) -> GraphQLError | None:
    """The first bound the document's arguments (with these variables) break, or None."""
    type_info = TypeInfo(schema)
    meter = _InputMeter(limits, type_info, variables)
    try:
        visit(document, TypeInfoVisitor(type_info, meter))
    except _OverLimit as over:
        return over.error
    return None


class _InputMeter(Visitor):
    def __init__(self, limits: InputLimits, type_info: TypeInfo, variables: Mapping[str, Any]) -> None:
        super().__init__()
        self._limits = limits
        self._type_info = type_info
        self._variables = dict(variables)
        self._items = 0

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> VisitorAction:
        argument = self._type_info.get_argument()
        if argument is not None:
            value = value_from_ast_untyped(node.value, self._variables)
            self._measure(value, argument.type, node.name.value, 0, node)
        return SKIP

    def _measure(self, value: Any, type_: Any, where: str, depth: int, node: ArgumentNode) -> None:
        """Walk `value` along `type_`; the depth check comes before each descent, so recursion stays shallow."""
        if value is None or value is Undefined:
            return
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        limits = self._limits
        if isinstance(type_, GraphQLList):
            items = value if isinstance(value, list) else [value]  # a single value is coerced to a list of one
            self._check(len(items), limits.max_list_length, "list length", f"{where} has {len(items)} items", node)
            if not isinstance(get_named_type(type_), GraphQLInputObjectType):
                self._count(len(items), node)  # input objects count themselves, below
            for item in items:
                self._measure(item, type_.of_type, where, depth, node)
        elif isinstance(type_, GraphQLInputObjectType):
            if not isinstance(value, dict):
                return  # coercion refuses it with its own error
            self._check(depth + 1, limits.max_input_depth, "input depth", f"{where} nests {depth + 1} levels", node)
            self._count(1, node)
            for name, field in type_.fields.items():
                if name in value:
                    self._measure(value[name], field.type, f"{where}.{name}", depth + 1, node)
                    if (type_.name, name) in SEARCH_TEXT_FIELDS and isinstance(value[name], str):
                        self._check(len(value[name]), limits.max_search_text_length, "search text length",
                                    f"{where}.{name} has {len(value[name])} characters", node)
        elif type_ in (GraphQLString, GraphQLID) and isinstance(value, str):
            self._check(len(value), limits.max_string_length, "string length",
                        f"{where} has {len(value)} characters", node)

    def _count(self, items: int, node: ArgumentNode) -> None:
        self._items += items
        self._check(self._items, self._limits.max_input_items, "input size",
                    "the arguments hold too many input objects and list items", node)

    @staticmethod
    def _check(measured: int, limit: int, what: str, detail: str, node: ArgumentNode) -> None:
        if measured > limit:
            raise _OverLimit(GraphQLError(f"{detail}: the {what} limit is {limit}", nodes=[node],
                                          extensions={"code": TOO_COMPLEX, "limit": what}))
