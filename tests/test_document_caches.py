"""The validation verdict of a query text is kept by the identity of its schema and parsed document
(schema/document_caches.py): validated once per schema, refused alike every time."""
from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schema import document_caches
from server import create_app
from settings import Settings
from stores.database import Database
from tests.factories import bearer

KNOWN = "query Me { me { id roles } }"
UNKNOWN_FIELD = "query Nope { nope }"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operation names of the documents validated, in order."""
    seen: list[str] = []
    validate = document_caches.validate_document

    def counted(schema: Any, document: Any, rules: Any) -> Any:
        seen.append(document.definitions[0].name.value)
        return validate(schema, document, rules)

    monkeypatch.setattr(document_caches, "validate_document", counted)
    return seen


async def _post(client: TestClient, query: str) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query}, headers=bearer())
    return await response.json()


async def test_a_repeated_query_is_validated_once(client: TestClient, validations: list[str]) -> None:
    answers = [await _post(client, KNOWN) for _ in range(3)]

    assert [a.get("errors") for a in answers] == [None, None, None]
    assert validations == ["Me"]


async def test_an_invalid_query_is_refused_alike_every_time(client: TestClient, validations: list[str]) -> None:
    answers = [await _post(client, UNKNOWN_FIELD) for _ in range(2)]

    for answer in answers:
        assert answer["data"] is None
        assert [e["message"] for e in answer["errors"]] == ["Cannot query field 'nope' on type 'Query'."]
    assert validations == ["Nope"]


async def test_each_schema_validates_the_same_text_for_itself(settings: Settings, database: Database,
                                                               validations: list[str]) -> None:
    for _ in range(2):
        async with TestClient(TestServer(create_app(settings, database))) as client:
            assert (await _post(client, KNOWN)).get("errors") is None
    assert validations == ["Me", "Me"]
