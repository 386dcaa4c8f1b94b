"""A graphql-core executor that completes most fields without the per-field machinery.

graphql-core builds a path, a resolve info and a resolver call for every field, then completes its value through
its generic `complete_value`: that was most of an executed case detail's CPU. This executor plans each field once per
schema and completes in place the fields whose value comes from their parent without doing more:
- a plain attribute (Strawberry's basic field) holding a leaf, an object, or a list of objects or of leaves;
- a resolver that takes only `self` (and maybe `info`, built as Strawberry builds it): called directly;
- an attribute behind an inline guard (`InlineGuard`: the access policy's field guard, decided once per request and
  field, applied to each value).
Everything else takes the stock path: arguments, async resolvers, permission classes, a directive on the field, a
type with `is_type_of`. A value the plan is not sure of (a null where the schema says non-null, an error value, a
value its scalar refuses, something that is not a list) goes to graphql-core's own completion with the value already
resolved, and a guard that refuses leaves the field to the stock path before anything ran. So every answer, and every
error, is the one the stock executor gives; tests/test_fast_executor.py runs the operations through both and compares.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol
from weakref import finalize

from graphql import (
    GraphQLBoolean, GraphQLEnumType, GraphQLField, GraphQLFloat, GraphQLID, GraphQLInt, GraphQLList, GraphQLNonNull,
    GraphQLObjectType, GraphQLScalarType, GraphQLSchema, GraphQLString, Undefined,
)
from graphql.execution.collect_fields import collect_subfields
from graphql.language import BREAK, DirectiveNode, VariableNode, Visitor, visit
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema_converter import GraphQLCoreConverter

_FALLBACK = object()  # "take the stock path": the plan could not complete the value itself
_UNPLANNED = object()
_INT_MIN, _INT_MAX = -(2 ** 31), 2 ** 31 - 1


def complete_leaf(leaf_type: GraphQLScalarType | GraphQLEnumType, value: Any) -> Any:
    """`value` serialized as graphql-core's `complete_leaf_value` would; _FALLBACK where only the stock path knows
    the answer (a null, an error value, a value the scalar refuses)."""
    if value is None:
        return _FALLBACK
    kind = type(value)
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


@dataclass(frozen=True, slots=True)
class LeafPlan:
    """A trivial leaf: the parent's attribute, serialized in place (`_execute_planned`)."""
    attribute: str
    leaf_type: GraphQLScalarType | GraphQLEnumType
    non_null: bool
    text: bool = False  # String or ID: a str value is its own answer (checked inline, the commonest field)


class Shape(Enum):
    """What a planned field's value is completed as."""
    LEAF = "leaf"
    LEAF_LIST = "list of leaves"
    OBJECT = "object"
    OBJECT_LIST = "list of objects"


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """A field whose value comes from its parent without graphql-core's per-field machinery: an attribute, a
    resolver that takes only `self` (and maybe `info`), or an attribute behind an inline guard.
    Its value is then completed in place by `shape`, or by graphql-core's `complete_value` where that says more."""
    field_def: GraphQLField
    shape: Shape
    named_type: Any  # the leaf or object type, without list and non-null
    non_null: bool
    attribute: str | None  # read this attribute, or
    resolver: Callable[..., Any] | None  # call this with the parent (a resolver of `self`, and maybe `info`)
    info_parameter: str | None  # the resolver's name for Strawberry's Info, if it takes one
    guard: InlineGuard | None
    guard_key: str


class InlineGuard(Protocol):
    """A field extension the fast path may run per object instead of per field: `decide` once per request context
    and field (None = refused: the stock path raises the guard's own error), `shape` per value."""

    def decide(self, context: Any, key: str) -> Any | None: ...

    def shape(self, context: Any, key: str, decision: Any, value: Any) -> Any: ...


def field_plan(field_def: GraphQLField, type_name: str, field_name: str,
               resolvers_direct: bool) -> LeafPlan | FieldPlan | None:
    """The plan for a field the fast path completes; None for any other field (graphql-core's path)."""
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if definition is None or field_def.args:
        return None
    shape = _shape_of(field_def.type)
    if shape is None:
        return None
    kind, named_type, non_null = shape
    resolve_name = getattr(field_def.resolve, "__name__", "")
    extensions = list(definition.extensions)
    guard: InlineGuard | None = None
    # A field with an extension goes through Strawberry's own resolver, which would also run a field exception
    # handler: inline only where none exists (`resolvers_direct`).
    if (resolvers_direct and len(extensions) == 1 and callable(getattr(extensions[0], "decide", None))
            and kind is Shape.LEAF):
        guard = extensions[0]
    elif extensions:
        return None
    resolver = definition.base_resolver
    if resolver is None:
        if definition.default_resolver is not getattr:
            return None
        if guard is None and resolve_name != "_get_basic_result":
            return None  # Strawberry's own resolver for a basic field without exception handlers; else it does more
        if guard is None and kind is Shape.LEAF:
            return LeafPlan(attribute=definition.python_name, leaf_type=named_type, non_null=non_null,
                            text=named_type is GraphQLString or named_type is GraphQLID)
        return FieldPlan(field_def, kind, named_type, non_null, definition.python_name, None, None, guard,
                         f"{type_name}.{field_name}")
    if (not resolvers_direct or guard is not None or resolver.is_async or resolver.arguments
            or resolver.self_parameter is None or resolver.root_parameter is not None
            or resolver.parent_parameter is not None or resolve_name != "_resolver"):
        return None
    info = resolver.info_parameter
    return FieldPlan(field_def, kind, named_type, non_null, None, resolver.wrapped_func,
                     None if info is None else info.name, None, f"{type_name}.{field_name}")


def _shape_of(field_type: Any) -> tuple[Shape, Any, bool] | None:
    """(shape, named type, non-null) of a field type the fast path completes; None for any other type."""
    non_null = isinstance(field_type, GraphQLNonNull)
    if non_null:
        field_type = field_type.of_type
    if isinstance(field_type, (GraphQLScalarType, GraphQLEnumType)):
        return Shape.LEAF, field_type, non_null
    if isinstance(field_type, GraphQLObjectType):
        # An is_type_of check needs the resolve info; such types take the stock path.
        return (Shape.OBJECT, field_type, non_null) if field_type.is_type_of is None else None
    if not isinstance(field_type, GraphQLList):
        return None
    item_type = field_type.of_type
    if isinstance(item_type, GraphQLNonNull):
        item_type = item_type.of_type
    if isinstance(item_type, (GraphQLScalarType, GraphQLEnumType)):
        return Shape.LEAF_LIST, item_type, non_null
    if isinstance(item_type, GraphQLObjectType) and item_type.is_type_of is None:
        return Shape.OBJECT_LIST, item_type, non_null
    return None


class FieldPlans:
    """Plans per (object type, field name) of one schema, worked out on first use."""

    def __init__(self, resolvers_direct: bool, info_class: Any = None) -> None:
        self._plans: dict[tuple[GraphQLObjectType, str], LeafPlan | FieldPlan | None] = {}
        self._resolvers_direct = resolvers_direct
        self.info_class = info_class  # Strawberry's Info, for resolvers that take one

    def get(self, parent_type: GraphQLObjectType, field_name: str) -> LeafPlan | FieldPlan | None:
        key = (parent_type, field_name)
        plan = self._plans.get(key, _UNPLANNED)
        if plan is _UNPLANNED:
            field_def = parent_type.fields.get(field_name)
            plan = self._plans[key] = (None if field_def is None else
                                       field_plan(field_def, parent_type.name, field_name, self._resolvers_direct))
        return plan  # type: ignore[return-value]


# An attribute of the schema, not an entry of a WeakKeyDictionary: the plans name the schema's types, which lead
# back to the schema, so as a dictionary's value they kept every schema a test run built alive.
_PLANS_ATTRIBUTE = "_case_repository_field_plans"


def plans_of(schema: GraphQLSchema) -> FieldPlans:
    """The schema's plans: kept as long as the schema lives (tests and the bench build several)."""
    plans: FieldPlans | None = getattr(schema, _PLANS_ATTRIBUTE, None)
    if plans is None:
        strawberry_schema = getattr(schema, "_strawberry_schema", None)
        converter = getattr(strawberry_schema, "schema_converter", None)
        # A resolver is called directly only where no field exception handler can apply (Strawberry checks per
        # field; without handlers at all there is nothing to check).
        info_class = getattr(getattr(strawberry_schema, "config", None), "info_class", None)
        plans = FieldPlans(
            resolvers_direct=(converter is not None and info_class is not None
                              and not getattr(converter, "_exception_handler_specs", True)),
            info_class=info_class)
        setattr(schema, _PLANS_ATTRIBUTE, plans)
    return plans


@dataclass(slots=True)
class _OperationCache:
    """What one parsed operation's executions share: collected subfields and the planned field lists."""
    by_nodes: dict[tuple[GraphQLObjectType, tuple[int, ...]], Any]  # (return type, field node ids) -> collected
    # The field lists of collected results live as long as this cache: they are looked up by identity, cheaper
    # than by their nodes. `lists` pins them (id -> list), so an id always names the same list.
    lists: dict[int, Any]
    by_list: dict[tuple[GraphQLObjectType, int], Any]  # (return type, id of such a list) -> collected
    planned: dict[int, list[tuple[str, Any, Any]]]  # id of a collected field set -> its fields with their plans
    # (object type, id of such a list) -> the planned subfields, where no @defer starts at that selection
    direct: dict[tuple[GraphQLObjectType, int], list[tuple[str, Any, Any]] | None]


# Per operation, kept as long as the parsed document is (the parser cache holds it), so a repeated request does not
# collect its selections again. None for an operation whose selections depend on its variables (a directive with a
# variable argument: @include(if: $x), @skip, @defer(if: ...)).
# Keyed by the operation's id, dropped when the operation is (a node's own hash walks its whole subtree).
_OPERATIONS: dict[int, _OperationCache | None] = {}


def _operation_cache(executor: Any) -> _OperationCache | None:
    operation = executor.operation
    cache = _OPERATIONS.get(id(operation), _UNPLANNED)
    if cache is _UNPLANNED:
        cache = _OPERATIONS[id(operation)] = None if _depends_on_variables(executor) else _OperationCache({}, {}, {},
                                                                                                          {}, {})
        finalize(operation, _OPERATIONS.pop, id(operation), None)
    return cache  # type: ignore[return-value]


def cached_subfields(executor: Any, return_type: GraphQLObjectType, field_details_list: Any) -> Any:
    """What graphql-core's `collect_subfields` gives for this selection, worked out once per parsed operation; None
    when it cannot be cached (the caller collects as usual)."""
    cache = _operation_cache(executor)
    if cache is None:
        return None
    if cache.lists.get(id(field_details_list)) is field_details_list:
        collected = cache.by_list.get((return_type, id(field_details_list)))
        if collected is not None:
            return collected
    if any(details.fragment_variable_values for details in field_details_list):
        return None
    # The nodes belong to the parsed document, which outlives this entry: their ids stay theirs.
    key = (return_type, tuple(id(details.node) for details in field_details_list))
    collected = cache.by_nodes.get(key)
    if collected is None:
        collected = cache.by_nodes[key] = collect_subfields(
            executor.schema, executor.fragments, executor.variable_values, executor.operation, return_type,
            field_details_list, executor.hide_suggestions)
        for field_list in collected.grouped_field_set.values():
            cache.lists[id(field_list)] = field_list
    if cache.lists.get(id(field_details_list)) is field_details_list:
        cache.by_list[(return_type, id(field_details_list))] = collected
    return collected


def _planned_fields(executor: Any, plans: FieldPlans, parent_type: GraphQLObjectType,
                    grouped_field_set: Any) -> list[tuple[str, Any, Any]]:
    """(response name, field list, plan or None) of each field, worked out once per collected field set."""
    cache = _operation_cache(executor)
    planned = None if cache is None else cache.planned.get(id(grouped_field_set))
    if planned is None:
        planned = [(name, field_list, None if field_list[0].node.arguments
                    else plans.get(parent_type, field_list[0].node.name.value))
                   for name, field_list in grouped_field_set.items()]
        # Only a field set this cache holds keeps its id (a root field set is new on every request).
        if cache is not None and any(collected.grouped_field_set is grouped_field_set
                                     for collected in cache.by_nodes.values()):
            cache.planned[id(grouped_field_set)] = planned
    return planned


def _direct_subfields(executor: Any, plans: FieldPlans, object_type: GraphQLObjectType, field_details_list: Any,
                      position_context: Any) -> list[tuple[str, Any, Any]] | None:
    """The planned subfields of an object of `object_type` selected by `field_details_list`, when graphql-core would
    only execute them: no deferred fragment is pending (`position_context`) or starts in this selection. None: take
    graphql-core's `collect_and_execute_subfields`."""
    if position_context is not None:
        return None
    cache = _operation_cache(executor)
    if cache is None or cache.lists.get(id(field_details_list)) is not field_details_list:
        return None
    key = (object_type, id(field_details_list))
    planned = cache.direct.get(key, _UNPLANNED)
    if planned is _UNPLANNED:
        collected = cached_subfields(executor, object_type, field_details_list)
        planned = cache.direct[key] = (
            None if collected is None or collected.new_defer_usages
            else _planned_fields(executor, plans, object_type, collected.grouped_field_set))
    return planned  # type: ignore[return-value]


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


def execute_fields_fast(executor: Any, plans: FieldPlans, parent_type: GraphQLObjectType, source_value: Any,
                        path: Path | None, grouped_field_set: Any, position_context: Any) -> Any:
    """graphql-core's `execute_fields`, with planned fields completed in place (same order, same results)."""
    return _execute_planned(executor, plans, parent_type, source_value, path,
                            _planned_fields(executor, plans, parent_type, grouped_field_set), position_context)


def _execute_planned(executor: Any, plans: FieldPlans, parent_type: GraphQLObjectType, source_value: Any,
                     path: Path | None, planned: list[tuple[str, Any, Any]], position_context: Any) -> Any:
    results: dict[str, Any] = {}
    is_awaitable = executor.is_awaitable
    awaitable_fields: list[str] = []
    try:
        for response_name, field_details_list, plan in planned:
            result: Any = _FALLBACK
            if plan is not None:
                if type(plan) is LeafPlan:
                    # Inline: the commonest field there is. A text is its own answer.
                    try:
                        value = getattr(source_value, plan.attribute)
                    except Exception:  # the stock path reports it as the field's error
                        value = _FALLBACK
                    if type(value) is str and plan.text:
                        results[response_name] = value
                        continue
                    if value is None:
                        if not plan.non_null:
                            results[response_name] = None
                            continue
                    elif value is not _FALLBACK:
                        result = complete_leaf(plan.leaf_type, value)
                        if result is not _FALLBACK:
                            results[response_name] = result
                            continue
                else:
                    result = _run_plan(executor, plans, plan, parent_type, source_value, field_details_list,
                                       Path(path, response_name, parent_type.name), position_context)
            if result is _FALLBACK:
                result = executor.execute_field(parent_type, source_value, field_details_list,
                                                Path(path, response_name, parent_type.name), position_context)
            if result is not Undefined:
                results[response_name] = result
                if type(result) is not dict and is_awaitable(result):
                    awaitable_fields.append(response_name)
    except Exception:
        if awaitable_fields:
            executor.settle_in_background([results[field] for field in awaitable_fields])
        raise
    if not awaitable_fields:
        return results
    return _gathered(results, awaitable_fields)


def _run_plan(executor: Any, plans: FieldPlans, plan: FieldPlan, parent_type: GraphQLObjectType, source: Any,
              field_details_list: Any, path: Path, position_context: Any) -> Any:
    """The field's value, completed; _FALLBACK (before anything ran) to take graphql-core's `execute_field`."""
    guard = plan.guard
    decision = None
    if guard is not None:
        decisions = executor.__dict__.setdefault("_inline_decisions", {})
        decision = decisions.get(plan.guard_key, _UNPLANNED)
        if decision is _UNPLANNED:
            decision = decisions[plan.guard_key] = guard.decide(executor.context_value, plan.guard_key)
        if decision is None:
            return _FALLBACK  # refused: the guard raises its own error on the stock path
    field_type = plan.field_def.type
    try:
        if plan.resolver is None:
            value = getattr(source, plan.attribute)
        elif plan.info_parameter is None:
            value = plan.resolver(source)
        else:  # as Strawberry builds it, without the argument conversion and extension chain around it
            raw_info = executor.build_resolve_info(plan.field_def, [details.node for details in field_details_list],
                                                   parent_type, path)
            value = plan.resolver(source, **{plan.info_parameter: plans.info_class(
                _raw_info=raw_info, _field=plan.field_def.extensions[GraphQLCoreConverter.DEFINITION_BACKREF])})
        if guard is not None:
            value = guard.shape(executor.context_value, plan.guard_key, decision, value)
    except Exception as raw_error:  # what the stock path does when a resolver raises
        executor.handle_field_error(raw_error, field_type, field_details_list, path)
        return None
    completed = _FALLBACK
    if value is None:
        if not plan.non_null:
            return None
    elif isinstance(value, Exception) or executor.is_awaitable(value):
        pass
    elif plan.shape is Shape.LEAF:
        completed = complete_leaf(plan.named_type, value)
    elif field_details_list[0].node.directives:
        pass  # @stream and the like: graphql-core's list completion knows them
    elif plan.shape is Shape.OBJECT:
        subfields = _direct_subfields(executor, plans, plan.named_type, field_details_list, position_context)
        if subfields is None:
            completed = _as_field(executor, field_type, field_details_list, path,
                                  executor.collect_and_execute_subfields, plan.named_type, field_details_list, path,
                                  value, position_context)
        else:
            completed = _as_field(executor, field_type, field_details_list, path, _execute_planned, executor, plans,
                                  plan.named_type, value, path, subfields, None)
    elif type(value) is list or type(value) is tuple:
        if plan.shape is Shape.LEAF_LIST:
            completed = _complete_leaf_list(plan.named_type, value)
        elif all(item is not None and not isinstance(item, Exception) and not executor.is_awaitable(item)
                 for item in value):
            completed = _complete_object_list(executor, plans, plan.named_type, field_type, field_details_list,
                                              path, value, position_context)
    if completed is _FALLBACK:
        return _complete_stock(executor, plan.field_def, parent_type, field_details_list, path, value,
                               position_context)
    return completed


def _complete_stock(executor: Any, field_def: GraphQLField, parent_type: GraphQLObjectType, field_details_list: Any,
                    path: Path, value: Any, position_context: Any) -> Any:
    """graphql-core's `execute_field` from the point where the resolver has returned `value`."""
    return_type = field_def.type
    info = executor.build_resolve_info(field_def, [details.node for details in field_details_list], parent_type,
                                       path)
    if executor.is_awaitable(value):  # graphql-core handles the errors of an awaited value itself
        return executor.complete_awaitable_value(return_type, field_details_list, info, path, value, position_context)
    return _as_field(executor, return_type, field_details_list, path, executor.complete_value, return_type,
                     field_details_list, info, path, value, position_context)


def _as_field(executor: Any, return_type: Any, field_details_list: Any, path: Path, complete: Callable[..., Any],
              *arguments: Any) -> Any:
    """`complete(*arguments)`, its error (raised now or once awaited) handled as the field's or list item's error at
    `path`, as graphql-core's `execute_field` and `complete_list_item_value` do."""
    try:
        completed = complete(*arguments)
    except Exception as raw_error:
        executor.handle_field_error(raw_error, return_type, field_details_list, path)
        return None
    if executor.is_awaitable(completed):
        return _guarded(executor, completed, return_type, field_details_list, path)
    return completed


async def _guarded(executor: Any, completed: Any, return_type: Any, field_details_list: Any, path: Path) -> Any:
    try:
        return await completed
    except Exception as raw_error:
        executor.handle_field_error(raw_error, return_type, field_details_list, path)
        return None


def _complete_leaf_list(leaf_type: Any, items: Any) -> Any:
    completed = []
    for item in items:
        value = complete_leaf(leaf_type, item)
        if value is _FALLBACK:
            return _FALLBACK
        completed.append(value)
    return completed


def _complete_object_list(executor: Any, plans: FieldPlans, object_type: GraphQLObjectType, field_type: Any,
                          field_details_list: Any, path: Path, items: Any, position_context: Any) -> Any:
    """graphql-core's `complete_iterable_value` for items that are objects (no null, error or awaitable among
    them: those take the stock path)."""
    is_awaitable = executor.is_awaitable
    item_type = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    item_type = item_type.of_type
    # Every item has the same selection: its subfields are planned once for the list.
    subfields = _direct_subfields(executor, plans, object_type, field_details_list, position_context)
    completed_results: list[Any] = []
    awaitable_indices: list[int] = []
    try:
        for index, item in enumerate(items):
            item_path = path.add_key(index, None)
            # A non-null item's error is raised on to the list, as graphql-core does.
            if subfields is None:
                completed = _as_field(executor, item_type, field_details_list, item_path,
                                      executor.collect_and_execute_subfields, object_type, field_details_list,
                                      item_path, item, position_context)
            else:  # _as_field, inline: this runs for every item of every list
                try:
                    completed = _execute_planned(executor, plans, object_type, item, item_path, subfields, None)
                except Exception as raw_error:
                    executor.handle_field_error(raw_error, item_type, field_details_list, item_path)
                    completed = None
                else:
                    if type(completed) is not dict and is_awaitable(completed):
                        completed = _guarded(executor, completed, item_type, field_details_list, item_path)
            if type(completed) is not dict and is_awaitable(completed):
                awaitable_indices.append(index)
            completed_results.append(completed)
    except Exception as raw_error:
        if awaitable_indices:
            executor.settle_in_background([completed_results[index] for index in awaitable_indices])
        executor.handle_field_error(raw_error, field_type, field_details_list, path)
        return None
    if not awaitable_indices:
        return completed_results
    return _guarded(executor, _gathered_list(completed_results, awaitable_indices), field_type, field_details_list,
                    path)


async def _gathered_list(results: list[Any], awaitable_indices: list[int]) -> list[Any]:
    if len(awaitable_indices) == 1:
        index = awaitable_indices[0]
        results[index] = await results[index]
    else:
        awaited = await gather_with_cancel(*(results[index] for index in awaitable_indices))
        for index, value in zip(awaitable_indices, awaited, strict=True):
            results[index] = value
    return results


async def _gathered(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    if len(awaitable_fields) == 1:
        field = awaitable_fields[0]
        results[field] = await results[field]
    else:
        awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results
