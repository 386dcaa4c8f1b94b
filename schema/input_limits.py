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

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode, DocumentNode, FieldNode, FragmentDefinitionNode, GraphQLError, GraphQLID, GraphQLInputObjectType,
    GraphQLList, GraphQLNonNull, GraphQLSchema, GraphQLString, InlineFragmentNode, OperationDefinitionNode,
    SelectionSetNode, Undefined, get_named_type, value_from_ast_untyped,
)

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
    """The first bound the document's field arguments (with these variables) break, or None."""
    meter = _InputMeter(limits, variables)
    try:
        for field, argument in _field_arguments(schema, document):
            meter.measure(field, argument)
    except _OverLimit as over:
        return over.error
    return None


def _field_arguments(schema: GraphQLSchema, document: DocumentNode) -> Iterator[tuple[Any, ArgumentNode]]:
    """(declared argument, its node) for every field argument in the document; each fragment walked once.

    A plain walk with a stack instead of graphql-core's TypeInfo visitor, which costs milliseconds on a case detail.
    Directive arguments are left out: the executable directives (`@include`, `@skip`) take a Boolean."""
    stack: list[tuple[SelectionSetNode, Any]] = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            stack.append((definition.selection_set, schema.get_root_type(definition.operation)))
        elif isinstance(definition, FragmentDefinitionNode):
            stack.append((definition.selection_set, schema.get_type(definition.type_condition.name.value)))
    while stack:
        selections, parent = stack.pop()
        fields = getattr(parent, "fields", None) or {}
        for selection in selections.selections:
            if isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                stack.append((selection.selection_set, schema.get_type(condition.name.value) if condition else parent))
            elif isinstance(selection, FieldNode):
                field = fields.get(selection.name.value)
                if field is None:
                    continue  # unknown fields fail validation; __typename has no arguments
                for argument in selection.arguments or ():
                    declared = field.args.get(argument.name.value)
                    if declared is not None:
                        yield declared, argument
                if selection.selection_set:
                    stack.append((selection.selection_set, get_named_type(field.type)))


class _InputMeter:
    def __init__(self, limits: InputLimits, variables: Mapping[str, Any]) -> None:
        self._limits = limits
        self._variables = dict(variables)
        self._items = 0

    def measure(self, declared: Any, node: ArgumentNode) -> None:
        value = value_from_ast_untyped(node.value, self._variables)
        self._measure(value, declared.type, node.name.value, 0, node)

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
