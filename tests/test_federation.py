"""Apollo Federation v2 subgraph over HTTP: the published SDL and entity resolution, batched."""
from __future__ import annotations

from typing import Any

import pytest

from stores.database import Database
from tests.factories import created, task_created

ENTITIES = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on Case { id title status customer { id } }
    ... on Customer { id name segment }
    ... on Task { id name state caseId case { id } }
  }
}"""


@pytest.fixture
async def three_cases(services: Any) -> None:
    await services.pipeline.ingest([
        created("CASE-1"), task_created("CASE-1", "T-1"),
        created("CASE-2", data={"customer": {"id": "CUST-2", "name": "Piotr Nowak", "segment": "AFFLUENT"}}),
        task_created("CASE-2", "T-2"),
        created("CASE-3", data={"customer": {"id": "CUST-3", "name": "Zofia Wiśniewska"}, "title": "Complaint"}),
        task_created("CASE-3", "T-3", name="Investigate", state="ASSIGNED", assignee="u-olga"),
    ])


async def test_service_sdl_declares_the_entities_and_federation_2_5(gql: Any) -> None:
    result = await gql("{ _service { sdl } }")

    sdl = result["data"]["_service"]["sdl"]
    assert '@link(url: "https://specs.apollo.dev/federation/v2.5"' in sdl
    for entity in ("Case", "Customer", "Task"):
        assert f'type {entity} @key(fields: "id")' in sdl, entity


async def test_entities_resolve_cases_customers_and_tasks(three_cases: None, gql: Any) -> None:
    result = await gql(ENTITIES, {"representations": [
        {"__typename": "Case", "id": "CASE-3"},
        {"__typename": "Customer", "id": "CUST-2"},
        {"__typename": "Task", "id": "T-3"},
        {"__typename": "Case", "id": "CASE-404"},
        {"__typename": "Customer", "id": "CUST-404"},
        {"__typename": "Task", "id": "T-404"},
    ]})

    assert result == {"data": {"_entities": [
        {"__typename": "Case", "id": "CASE-3", "title": "Complaint", "status": "NEW", "customer": {"id": "CUST-3"}},
        {"__typename": "Customer", "id": "CUST-2", "name": "Piotr Nowak", "segment": "AFFLUENT"},
        {"__typename": "Task", "id": "T-3", "name": "Investigate", "state": "ASSIGNED", "caseId": "CASE-3",
         "case": {"id": "CASE-3"}},
        None, None, None,
    ]}}


# Cases come with their task rows in one aggregate; a task's case is read once for all the tasks asked for.
CASES_WITH_TASKS, AUDIT = {"cases.aggregate": 1}, {"audit.insert_one": 1}


@pytest.mark.parametrize(("typename", "ids", "expected_trips"), [
    ("Case", ["CASE-1", "CASE-2", "CASE-3"], {**CASES_WITH_TASKS, **AUDIT}),
    ("Customer", ["CUST-1", "CUST-2", "CUST-3"], {"cases.find": 1, **AUDIT}),
    ("Task", ["T-1", "T-2", "T-3"], {"tasks.find": 1, **CASES_WITH_TASKS, **AUDIT}),
])
async def test_entities_are_batched_into_one_read_for_one_or_three(
    three_cases: None, gql: Any, database: Database, typename: str, ids: list[str], expected_trips: dict[str, int],
) -> None:
    async def resolve(entity_ids: list[str]) -> tuple[list[Any], dict[str, int]]:
        database.round_trips.reset()
        result = await gql(ENTITIES, {"representations": [{"__typename": typename, "id": i} for i in entity_ids]})
        assert "errors" not in result, result
        return result["data"]["_entities"], dict(database.round_trips.by_operation)

    one, trips_for_one = await resolve(ids[:1])
    three, trips_for_three = await resolve(ids)

    assert [entity["id"] for entity in three] == ids
    assert one == three[:1]
    # The same batched reads for one entity as for three, and the request's one audit record.
    assert trips_for_one == trips_for_three == expected_trips
