"""What a GraphQL document asks for at the root, seen through fragments (`... on Query { _service }`)."""
from __future__ import annotations

from graphql import (
    DocumentNode, FieldNode, FragmentDefinitionNode, InlineFragmentNode, OperationType, SelectionSetNode,
    get_operation_ast,
)


def _root_field_names(selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]) -> set[str]:
    names: set[str] = set()
    pending, seen = [selection_set], set()
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif selection.name.value in fragments and selection.name.value not in seen:
                seen.add(selection.name.value)
                pending.append(fragments[selection.name.value].selection_set)
    return names


def operation_roots(document: DocumentNode | None, operation_name: str | None) -> tuple[OperationType | None, set[str]]:
    """The chosen operation's type and root field names; (None, set()) when no single operation is chosen."""
    operation = get_operation_ast(document, operation_name) if document else None
    if operation is None:
        return None, set()
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return operation.operation, _root_field_names(operation.selection_set, fragments)
