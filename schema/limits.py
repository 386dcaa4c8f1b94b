"""Query limits in the spirit of GraphQL Armor: tokens, depth, aliases, cost, introspection.

`limit_extensions(QueryLimits(), introspection=settings.introspection_enabled)` gives Strawberry schema
extensions for build_schema. None hooks `resolve`, so fields pay nothing, and every check runs before
the first resolver. A rejection is a GraphQL error with `extensions.code == "QUERY_TOO_COMPLEX"` whose
message names the limit, e.g. "query depth 12 exceeds the limit of 10".

What is measured:
- tokens: graphql-core's parser stops at `max_tokens` (comments count), so a huge document is never built;
- depth: fields on the longest path, `{ case { id } }` is 2; fragments and inline fragments add no level;
  `__schema`/`__type` subtrees are not counted (the IDE's introspection query is deep but schema-bounded);
- aliases: aliased fields of one operation, a fragment counted once per spread;
- cost: each field costs 1; a list field multiplies the cost of its selection by its size - its `first`
  or `last` (literal, variable or variable default), the number of `representations` for `_entities`,
  else `default_list_size`; a connection (a type with `edges` and `pageInfo`) multiplies only its
  `edges` by its `first`, so edges/node are not counted twice; `__typename` and introspection cost 0.
Each fragment is measured once, so fragments spreading each other twice ("fragment bombs") take linear
time, and the walks use explicit stacks, so a deep document cannot exhaust Python's recursion limit.

The values of the arguments (literal or variables: lists, nesting, sizes) are bounded by schema/input_limits.py,
checked with the cost.

Depth and aliases are validation rules: the validation cache (schema/document_caches.py) keeps their verdict with the cached document, so
a repeated request is rejected again without re-measuring. The cost needs the request's variables, so
it is checked in `on_execute`, after validation and before graphql-core executes anything.
With introspection off, `__schema`/`__type` are refused (graphql-core's NoSchemaIntrospectionCustomRule)
and "Did you mean ...?" suggestions are cut from every error message, as they leak the schema.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from weakref import finalize

import orjson

from graphql import (
    DocumentNode, FieldNode, FragmentDefinitionNode, GraphQLError, GraphQLList, GraphQLNamedType,
    GraphQLNonNull, GraphQLSchema, InlineFragmentNode, IntValueNode, ListValueNode,
    OperationDefinitionNode, SelectionSetNode, ValidationRule, ValueNode, VariableNode, get_named_type,
    get_operation_ast, value_from_ast_untyped,
)
from graphql.execution import ExecutionResult as GraphQLExecutionResult
from graphql.language import SKIP, VisitorAction
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.types import StreamExecutionResult
from strawberry.types.graphql import OperationType

from schema.input_limits import InputLimits, input_error

TOO_COMPLEX = "QUERY_TOO_COMPLEX"
# Fields that cost a store round trip for each parent object (a customer's own case list and timeline, a case's
# history rows): under a list of 200 cases they would be 200 queries each, so each weighs as much as a modest page
# of fields.
PER_PARENT_READS: dict[tuple[str, str], int] = {
    ("Customer", "cases"): 250, ("Customer", "timeline"): 250, ("Case", "history"): 250,
}
_INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")
_TOO_MANY_TOKENS = re.compile(r"^Syntax Error: Document contains more than \d+ tokens")


@dataclass(frozen=True)
class QueryLimits:
    """CONTRACT §4: depth 10, aliases 15, tokens 2000 and a cost limit, all enforced before resolvers."""

    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    # Room for `cases(first: 500)` with a few nested lists (~13k) but not for a full case detail per node.
    max_cost: int = 50_000
    default_list_size: int = 20
    inputs: InputLimits = InputLimits()


def too_complex(what: str, value: int | None, limit: int, nodes: Any = None) -> GraphQLError:
    measured = f"query {what} {value}" if value is not None else f"query {what}"
    return GraphQLError(f"{measured} exceeds the limit of {limit}", nodes=nodes,
                        extensions={"code": TOO_COMPLEX, "limit": what})


def limit_extensions(limits: QueryLimits, *, introspection: bool) -> list[Callable[[], SchemaExtension]]:
    """Schema extensions (as factories) enforcing `limits`; list them after the parser and validation caches."""
    rules: list[type[ValidationRule]] = [_shape_rule(limits)]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    # Built once: the validation cache keys on the rule classes, so new classes per request would never hit.
    guard = type("QueryLimitGuard", (QueryLimitGuard,), {"limits": limits, "hide_suggestions": not introspection})
    return [lambda: MaxTokensLimiter(limits.max_tokens), lambda: AddValidationRules(rules), guard]


class QueryLimitGuard(SchemaExtension):
    """Checks the cost before execution and words parse errors of the token limit as QUERY_TOO_COMPLEX."""

    limits = QueryLimits()
    hide_suggestions = False

    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except GraphQLError as error:
            # ParserCache parses inside its own on_parse hook, so its parse errors arrive as exceptions.
            reworded = self._reworded(error)
            if reworded is error:
                raise
            raise reworded from None
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [self._reworded(error) for error in result.errors]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # WebSocket results are sent before on_operation ends, so they are reworded here.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [self._reworded(error) for error in errors]
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        schema, document, variables = context.schema._schema, context.graphql_document, context.variables or {}
        passed = _passed(document, (id(schema), self.limits), context.operation_name, variables)
        error = None
        if passed is None or not passed[0]:
            error = input_error(self.limits.inputs, schema, document, variables) if document is not None else None
            error = error or self._cost_error(schema, document, context.operation_name, variables)
            if error is None and passed is not None:
                passed[1].add(passed[2])
        if error is not None:
            if context.operation_type is OperationType.SUBSCRIPTION:
                # Strawberry turns an exception from on_execute into the subscription's error result.
                raise error
            # A result set before execution makes Strawberry skip graphql-core's execute.
            context.result = GraphQLExecutionResult(data=None, errors=[error])
        yield

    def _cost_error(self, schema: GraphQLSchema, document: DocumentNode | None, operation_name: str | None,
                    variables: Mapping[str, Any]) -> GraphQLError | None:
        operation = get_operation_ast(document, operation_name) if document else None
        if operation is None:
            return None  # graphql-core reports the missing or ambiguous operation itself
        cost = _CostMeter(schema, document, operation, variables, self.limits.default_list_size).total()
        if cost > self.limits.max_cost:
            return too_complex("cost", cost, self.limits.max_cost, [operation])
        return None

    def _reworded(self, error: GraphQLError) -> GraphQLError:
        """The token limit's syntax error as QUERY_TOO_COMPLEX; suggestions cut when introspection is off."""
        # By message, not by class: error_codes() may already have re-created it as a plain GraphQLError.
        if _TOO_MANY_TOKENS.search(error.message):
            replacement = too_complex("token count", None, self.limits.max_tokens)
            message, extensions = replacement.message, replacement.extensions
        elif self.hide_suggestions and "Did you mean" in error.message:
            message, extensions = _SUGGESTION.sub("", error.message), error.extensions
        else:
            return error
        # New errors, never edited in place: the validation cache hands the same error objects to every request.
        return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                            path=error.path, original_error=error.original_error, extensions=extensions)


# Per parsed document (ParserCache keeps one object per query text): the (operation, variables) that passed the
# argument bounds and the cost, so a repeated request is not measured again. Only passes are kept: a refusal is
# worded afresh for each request. Keyed by the document's id and dropped with it (a node's hash walks its subtree).
_PASSED: dict[int, set[tuple[Any, bytes]]] = {}
_PASSED_PER_DOCUMENT = 64  # distinct variable sets remembered per document; then it starts over


def _passed(document: DocumentNode | None, measure: Any, operation_name: str | None,
            variables: Mapping[str, Any]) -> tuple[bool, set[tuple[Any, bytes]], tuple[Any, bytes]] | None:
    """(whether these variables passed `measure` (the schema and its limits: ParserCache shares documents between
    schemas) before, the document's set, their key); None when they cannot be keyed."""
    if document is None:
        return None
    try:
        key = (measure, orjson.dumps([operation_name, variables], option=orjson.OPT_SORT_KEYS))
    except TypeError:  # an upload or another value JSON does not hold: measured every time
        return None
    seen = _PASSED.get(id(document))
    if seen is None:
        seen = _PASSED[id(document)] = set()
        finalize(document, _PASSED.pop, id(document), None)
    elif len(seen) >= _PASSED_PER_DOCUMENT and key not in seen:
        seen.clear()
    return key in seen, seen, key


def _shape_rule(limits: QueryLimits) -> type[ValidationRule]:
    class QueryShapeRule(ValidationRule):
        """Depth and aliases of every operation in the document, measured once per document."""

        def enter_document(self, node: DocumentNode, *_args: Any) -> VisitorAction:
            shapes = _Shapes(node)
            for operation in node.definitions:
                if not isinstance(operation, OperationDefinitionNode):
                    continue
                depth, aliases = shapes.of(operation.selection_set)
                if depth > limits.max_depth:
                    self.report_error(too_complex("depth", depth, limits.max_depth, [operation]))
                if aliases > limits.max_aliases:
                    self.report_error(too_complex("alias count", aliases, limits.max_aliases, [operation]))
            return SKIP  # nothing left for this rule in the rest of the visit

    return QueryShapeRule


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _in_order(fragments: Mapping[str, FragmentDefinitionNode],
              spreads_of: Callable[[str], list[str]]) -> list[str]:
    """Fragment names, each after the fragments it spreads (post-order); cycles are cut, not followed."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in fragments:
        stack = [(root, iter(spreads_of(root)))]
        state.setdefault(root, 1)
        if state[root] == 2:
            continue
        while stack:
            name, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                stack.pop()
                state[name] = 2
                order.append(name)
            elif child in fragments and child not in state:
                state[child] = 1
                stack.append((child, iter(spreads_of(child))))
    return order


class _Shapes:
    """Depth and alias count of selection sets; a fragment's own figures are computed once."""

    def __init__(self, document: DocumentNode) -> None:
        fragments = _fragments(document)
        own = {name: self._own(fragment.selection_set) for name, fragment in fragments.items()}
        self._totals: dict[str, tuple[int, int]] = {}
        for name in _in_order(fragments, lambda n: [spread for spread, _, _ in own[n][2]]):
            self._totals[name] = self._combine(own[name])

    def of(self, selection_set: SelectionSetNode) -> tuple[int, int]:
        return self._combine(self._own(selection_set))

    def _combine(self, own: tuple[int, int, list[tuple[str, int, bool]]]) -> tuple[int, int]:
        depth, aliases, spreads = own
        for name, level, counts_depth in spreads:
            # A spread not yet totalled is unknown or part of a cycle: validation reports those.
            fragment_depth, fragment_aliases = self._totals.get(name, (0, 0))
            if counts_depth:
                depth = max(depth, level + fragment_depth)
            aliases += fragment_aliases
        return depth, aliases

    @staticmethod
    def _own(selection_set: SelectionSetNode) -> tuple[int, int, list[tuple[str, int, bool]]]:
        depth = aliases = 0
        spreads: list[tuple[str, int, bool]] = []
        stack: list[tuple[SelectionSetNode, int, bool]] = [(selection_set, 0, True)]
        while stack:
            selections, level, counts_depth = stack.pop()
            for selection in selections.selections:
                if isinstance(selection, FieldNode):
                    aliases += selection.alias is not None
                    in_depth = counts_depth and selection.name.value not in _INTROSPECTION_ROOTS
                    if in_depth:
                        depth = max(depth, level + 1)
                    if selection.selection_set:
                        stack.append((selection.selection_set, level + 1, in_depth))
                elif isinstance(selection, InlineFragmentNode):
                    stack.append((selection.selection_set, level, counts_depth))
                else:
                    spreads.append((selection.name.value, level, counts_depth))
        return depth, aliases, spreads


class _CostMeter:
    """Static cost of one operation with the request's variables (see the module docstring)."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode,
                 variables: Mapping[str, Any], default_list_size: int) -> None:
        self._schema = schema
        self._operation = operation
        self._default_size = default_list_size
        self._variables = dict(variables)
        for definition in operation.variable_definitions or ():
            if definition.default_value is not None:
                self._variables.setdefault(definition.variable.name.value,
                                           value_from_ast_untyped(definition.default_value))
        self._fragments = _fragments(document)

    def total(self) -> int:
        own = {name: self._own(fragment.selection_set, self._schema.get_type(fragment.type_condition.name.value))
               for name, fragment in self._fragments.items()}
        totals: dict[str, int] = {}
        for name in _in_order(self._fragments, lambda n: [spread for spread, _ in own[n][1]]):
            cost, spreads = own[name]
            totals[name] = cost + sum(times * totals.get(spread, 0) for spread, times in spreads)
        root = self._schema.get_root_type(self._operation.operation)
        cost, spreads = self._own(self._operation.selection_set, root)
        return cost + sum(times * totals.get(spread, 0) for spread, times in spreads)

    def _own(self, selection_set: SelectionSetNode, parent: Any) -> tuple[int, list[tuple[str, int]]]:
        """Cost of the fields written in `selection_set` itself, and (fragment, multiplier) per spread."""
        cost = 0
        spreads: list[tuple[str, int]] = []
        # (selections, their parent type, cost multiplier, multiplier for `edges` when parent is a connection)
        stack: list[tuple[SelectionSetNode, Any, int, int]] = [(selection_set, parent, 1, 1)]
        while stack:
            selections, parent_type, times, edges_times = stack.pop()
            fields = getattr(parent_type, "fields", None) or {}
            for selection in selections.selections:
                if isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    inner = self._schema.get_type(condition.name.value) if condition else parent_type
                    stack.append((selection.selection_set, inner, times, edges_times))
                    continue
                if not isinstance(selection, FieldNode):
                    # A fragment on a connection may select `edges`: charge it like edges, conservatively.
                    spreads.append((selection.name.value, times * edges_times))
                    continue
                name = selection.name.value
                field = fields.get(name)
                if field is None or name.startswith("__"):
                    continue  # introspection and __typename are schema-bounded; unknown fields fail validation
                # A field that reads the store once per parent (not batched) weighs like many fields.
                cost += times * (1 + PER_PARENT_READS.get((parent_type.name, name), 0))
                if not selection.selection_set:
                    continue
                named = get_named_type(field.type)
                if name == "edges" and _is_connection(parent_type):
                    stack.append((selection.selection_set, named, times * edges_times, 1))
                elif _is_connection(named):
                    stack.append((selection.selection_set, named, times, self._size(selection, field)))
                elif _is_list(field.type):
                    stack.append((selection.selection_set, named, times * self._size(selection, field), 1))
                else:
                    stack.append((selection.selection_set, named, times, 1))
        return cost, spreads

    def _size(self, node: FieldNode, field: Any) -> int:
        """How many items a list or connection field may return, by its arguments."""
        for argument in node.arguments or ():
            name = argument.name.value
            if name in ("first", "last"):
                size = self._value(argument.value)
                return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 \
                    else self._default_size
            if name == "representations":
                items = self._value(argument.value)
                return len(items) if isinstance(items, list) else self._default_size
        declared = field.args.get("first")
        default = declared.default_value if declared is not None else None
        return default if isinstance(default, int) and not isinstance(default, bool) else self._default_size

    def _value(self, node: ValueNode) -> Any:
        if isinstance(node, VariableNode):
            return self._variables.get(node.name.value)
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, ListValueNode):
            return list(node.values)
        return None


def _is_list(type_: Any) -> bool:
    return isinstance(type_.of_type if isinstance(type_, GraphQLNonNull) else type_, GraphQLList)


def _is_connection(type_: GraphQLNamedType | None) -> bool:
    fields = getattr(type_, "fields", None)
    return bool(fields) and "edges" in fields and "pageInfo" in fields
