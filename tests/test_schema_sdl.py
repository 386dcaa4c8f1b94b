"""The exported SDL is an artefact: `graphql/schema.graphql` must equal the running schema, and the example
operations in `graphql/operations/` must stay valid against it."""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from graphql import parse, validate

from schema.build import build_schema
from schema.export import sdl

ROOT = Path(__file__).parents[1]
SCHEMA_FILE = ROOT / "graphql" / "schema.graphql"
OPERATIONS = sorted((ROOT / "graphql" / "operations").glob("*.graphql"))


def test_schema_file_equals_the_running_schema() -> None:
    exported = sdl()
    committed = SCHEMA_FILE.read_text()

    diff = "".join(difflib.unified_diff(committed.splitlines(keepends=True), exported.splitlines(keepends=True),
                                        "graphql/schema.graphql", "schema.export.sdl()"))
    assert committed == exported, (
        f"graphql/schema.graphql differs from the running schema: run `make schema` and commit it.\n{diff}")


def test_there_are_example_operations() -> None:
    assert {path.name for path in OPERATIONS} >= {
        "case_detail.graphql", "case_list.graphql", "customer_360.graphql", "case_updated.graphql",
        "case_status_changed.graphql"}


@pytest.mark.parametrize("path", OPERATIONS, ids=[path.name for path in OPERATIONS])
def test_example_operation_is_valid_against_the_schema(path: Path) -> None:
    errors = validate(build_schema()._schema, parse(path.read_text()))

    assert [error.message for error in errors] == []
