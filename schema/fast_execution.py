"""A graphql-core executor that completes trivial leaf fields without the per-field machinery.

Most of a case detail's ~300 fields are plain attributes of their parent object (no resolver of ours, no arguments,
no extension, a scalar or enum type). graphql-core still builds a path, a resolve info and a resolver call for each,
then completes the value through its generic `complete_value`; that was a third of an executed request's CPU.
For such a field this executor reads the attribute and serializes it directly (or returns it as is when its Python
type is already the wire type), and falls back to the stock path for everything else: a field with a resolver,
arguments or an extension (every field the access policy guards has one), an attribute that raises, an exception
value, a null in a non-null field, a value the scalar refuses. So every error, and every answer, is the one the stock
executor gives; tests/test_fast_executor.py runs the operations through both and compares.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary, finalize

from graphql import (
    GraphQLBoolean, GraphQLEnumType, GraphQLField, GraphQLFloat, GraphQLID, GraphQLInt, GraphQLNonNull,
    GraphQLObjectType, GraphQLScalarType, GraphQLSchema, GraphQLString, Undefined,
)
from graphql.execution.collect_fields import collect_subfields
from graphql.language import BREAK, DirectiveNode, VariableNode, Visitor, visit
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema_converter import GraphQLCoreConverter

_FALLBACK = object()  # "take the stock path": the plan could not complete the value itself
_UNPLANNED = object()
_INT_MIN, _INT_MAX = -(2 ** 31), 2 ** 31 - 1


@dataclass(frozen=True, slots=True)
class LeafPlan:
    """How to complete one trivial leaf field: the attribute to read and how to serialize what it holds."""
    attribute: str
    leaf_type: GraphQLScalarType | GraphQLEnumType
    non_null: bool

    def complete(self, source: Any) -> Any:
        try:
            value = getattr(source, self.attribute)
        except Exception:  # the stock path reports it as the field's error
            return _FALLBACK
        if value is None:
            return _FALLBACK if self.non_null else None
        leaf_type, kind = self.leaf_type, type(value)
        # The built-in scalars return these unchanged (graphql-core's serialize_string, _int, _boolean, _float).
        if kind is str and (leaf_type is GraphQLString or leaf_type is GraphQLID):
            return value
        if kind is bool and leaf_type is GraphQLBoolean:
            return value
        if kind is int and leaf_type is GraphQLInt and _INT_MIN <= value <= _INT_MAX:
            return value
        if kind is float and leaf_type is GraphQLFloat and math.isfinite(value):
            return value
        if isinstance(value, Exception):
            return _FALLBACK
        try:
            serialized = leaf_type.serialize(value)
        except Exception:
            return _FALLBACK
        return _FALLBACK if serialized is None or serialized is Undefined else serialized


def leaf_plan(field_def: GraphQLField) -> LeafPlan | None:
    """The plan for a field whose value is its parent's attribute, as is; None for any other field."""
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    resolve = field_def.resolve
    if (definition is None or field_def.args or not getattr(definition, "is_basic_field", False)
            or definition.default_resolver is not getattr
            # Strawberry's own resolver for a basic field without exception handlers; anything else may do more.
            or resolve is None or getattr(resolve, "__name__", "") != "_get_basic_result"):
        return None
    field_type, non_null = field_def.type, False
    if isinstance(field_type, GraphQLNonNull):
        field_type, non_null = field_type.of_type, True
    if not isinstance(field_type, (GraphQLScalarType, GraphQLEnumType)):
        return None
    return LeafPlan(attribute=definition.python_name, leaf_type=field_type, non_null=non_null)


class LeafPlans:
    """Plans per (object type, field name) of one schema, worked out on first use."""

    def __init__(self) -> None:
        self._plans: dict[tuple[GraphQLObjectType, str], LeafPlan | None] = {}

    def get(self, parent_type: GraphQLObjectType, field_name: str) -> LeafPlan | None:
        key = (parent_type, field_name)
        plan = self._plans.get(key, _UNPLANNED)
        if plan is _UNPLANNED:
            field_def = parent_type.fields.get(field_name)
            plan = self._plans[key] = leaf_plan(field_def) if field_def is not None else None
        return plan  # type: ignore[return-value]


_PLANS: WeakKeyDictionary[GraphQLSchema, LeafPlans] = WeakKeyDictionary()


def plans_of(schema: GraphQLSchema) -> LeafPlans:
    """The schema's plans: kept as long as the schema lives (tests and the bench build several)."""
    plans = _PLANS.get(schema)
    if plans is None:
        plans = _PLANS[schema] = LeafPlans()
    return plans


# Collected subfields per operation, kept as long as the parsed document is (the parser cache holds it), so a
# repeated request does not collect its selections again. None for an operation whose selections depend on its
# variables (a directive with a variable argument: @include(if: $x), @skip, @defer(if: ...)).
# Keyed by the operation's id, dropped when the operation is (a node's own hash walks its whole subtree).
_SUBFIELDS: dict[int, dict[tuple[GraphQLObjectType, tuple[int, ...]], Any] | None] = {}


def cached_subfields(executor: Any, return_type: GraphQLObjectType, field_details_list: Any) -> Any:
    """What graphql-core's `collect_subfields` gives for this selection, worked out once per parsed operation; None
    when it cannot be cached (the caller collects as usual)."""
    operation = executor.operation
    per_operation = _SUBFIELDS.get(id(operation), _UNPLANNED)
    if per_operation is _UNPLANNED:
        per_operation = _SUBFIELDS[id(operation)] = None if _depends_on_variables(executor) else {}
        finalize(operation, _SUBFIELDS.pop, id(operation), None)
    if per_operation is None or any(details.fragment_variable_values for details in field_details_list):
        return None
    # The nodes belong to the parsed document, which outlives this entry: their ids stay theirs.
    key = (return_type, tuple(id(details.node) for details in field_details_list))
    collected = per_operation.get(key)  # type: ignore[union-attr]
    if collected is None:
        collected = per_operation[key] = collect_subfields(  # type: ignore[index]
            executor.schema, executor.fragments, executor.variable_values, operation, return_type,
            field_details_list, executor.hide_suggestions)
    return collected


def _depends_on_variables(executor: Any) -> bool:
    if any(details.variable_signatures for details in executor.fragments.values()):  # fragment arguments
        return True
    nodes = [executor.operation, *(details.definition for details in executor.fragments.values())]
    return any(_directive_with_variable(node) for node in nodes)


def _directive_with_variable(node: Any) -> bool:
    found = False

    class Finder(Visitor):
        def enter_directive(self, directive: DirectiveNode, *_: Any) -> Any:
            nonlocal found
            if any(isinstance(argument.value, VariableNode) for argument in directive.arguments or ()):
                found = True
                return BREAK
            return None

    visit(node, Finder())
    return found


def execute_fields_fast(executor: Any, plans: LeafPlans, parent_type: GraphQLObjectType, source_value: Any,
                        path: Path | None, grouped_field_set: Any, position_context: Any) -> Any:
    """graphql-core's `execute_fields`, with trivial leaves completed in place (same order, same results)."""
    results: dict[str, Any] = {}
    is_awaitable = executor.is_awaitable
    awaitable_fields: list[str] = []
    try:
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            plan = plans.get(parent_type, node.name.value)
            if plan is not None and not node.arguments:
                value = plan.complete(source_value)
                if value is not _FALLBACK:
                    results[response_name] = value
                    continue
            result = executor.execute_field(parent_type, source_value, field_details_list,
                                            Path(path, response_name, parent_type.name), position_context)
            if result is not Undefined:
                results[response_name] = result
                if is_awaitable(result):
                    awaitable_fields.append(response_name)
    except Exception:
        if awaitable_fields:
            executor.settle_in_background([results[field] for field in awaitable_fields])
        raise
    if not awaitable_fields:
        return results
    return _gathered(results, awaitable_fields)


async def _gathered(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    if len(awaitable_fields) == 1:
        field = awaitable_fields[0]
        results[field] = await results[field]
    else:
        awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results
