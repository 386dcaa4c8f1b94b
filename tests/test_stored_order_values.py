"""What the list indexes read is stored at write time: a task row's order values (stores/task_criteria.py) and a
case's search terms (stores/case_criteria.py), written by every writer and backfilled at startup for rows and cases
stored before them (stores/migrations.py). Checked over HTTP, as a client lists and searches."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from stores.database import Database
from stores.migrations import store_case_search_terms, store_task_order_keys
from tests.factories import case_created_data, created, event, task_created

TASKS = """query($order: TaskOrderField!, $direction: OrderDirection!, $after: String) {
  tasks(orderBy: {field: $order, direction: $direction}, first: 2, after: $after) {
    pageInfo { hasNextPage endCursor } edges { node { id } } } }"""
SEARCH = "query($text: String!) { cases(filter: {text: $text}, orderBy: {field: ID, direction: ASC}) { edges { node { id } } } }"


async def three_tasks(services: Any) -> None:
    await services.pipeline.ingest([
        created("CASE-1"),
        task_created("CASE-1", "T-late", dueAt="2026-12-20T10:00:00Z", priority=1),
        task_created("CASE-1", "T-none"),
        task_created("CASE-1", "T-soon", dueAt="2026-12-02T10:00:00Z", priority=5),
    ])


async def task_ids(gql: Any, order: str, direction: str = "ASC") -> list[str]:
    """Every task in `order`, read page by page (two a page) through the cursors."""
    ids: list[str] = []
    after = None
    while True:
        answer = await gql(TASKS, {"order": order, "direction": direction, "after": after})
        assert "errors" not in answer, answer
        page = answer["data"]["tasks"]
        ids += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


async def test_task_rows_carry_their_order_values(services: Any, database: Database, gql: Any) -> None:
    await three_tasks(services)

    row = await database.collection("tasks").find_one({"id": "T-soon"})

    assert row is not None
    assert (row["dueOrder"], row["priorityOrder"]) == (datetime(2026, 12, 2, 10, tzinfo=timezone.utc), 5)
    missing = await database.collection("tasks").find_one({"id": "T-none"})
    assert missing is not None
    # A task without a due date is due last, one without a priority the least urgent.
    assert (missing["dueOrder"], missing["priorityOrder"]) == (datetime(9999, 12, 31, tzinfo=timezone.utc), -(2**31) - 1)
    assert await task_ids(gql, "DUE_AT") == ["T-soon", "T-late", "T-none"]
    assert await task_ids(gql, "PRIORITY", "DESC") == ["T-soon", "T-late", "T-none"]


async def test_rows_stored_before_order_values_get_them_at_startup(services: Any, database: Database,
                                                                   gql: Any) -> None:
    await three_tasks(services)
    tasks = database.collection("tasks")
    await tasks.update_many({}, {"$unset": {"dueOrder": "", "createdOrder": "", "priorityOrder": ""}})

    assert await store_task_order_keys(database) == 3
    assert await store_task_order_keys(database) == 0
    assert await task_ids(gql, "DUE_AT", "DESC") == ["T-none", "T-late", "T-soon"]


async def test_text_search_matches_word_prefixes_without_case_or_accents(services: Any, gql: Any) -> None:
    await services.pipeline.ingest([
        event("case.created", "CASE-A", case_created_data(title="Kredyt hipoteczny, Łódź",
                                                           customer={"id": "CUST-1", "name": "Zofia Wójcik"})),
        event("case.created", "CASE-B", case_created_data(title="Karta kredytowa",
                                                           customer={"id": "CUST-2", "name": "Jan Wojcik"})),
    ])

    async def found(text: str) -> list[str]:
        answer = await gql(SEARCH, {"text": text})
        assert "errors" not in answer, answer
        return [edge["node"]["id"] for edge in answer["data"]["cases"]["edges"]]

    assert await found("lodz") == ["CASE-A"]
    assert await found("WÓJ") == ["CASE-A", "CASE-B"]
    assert await found("kredyt wojcik") == ["CASE-A", "CASE-B"]
    assert await found("kredytowa jan") == ["CASE-B"]
    assert await found("case-b") == ["CASE-B"]
    assert await found("ojcik") == []  # a word's start, not any part of it


async def test_cases_stored_before_search_terms_get_them_at_startup(services: Any, database: Database,
                                                                    gql: Any) -> None:
    await services.pipeline.ingest([event("case.created", "CASE-A", case_created_data(title="Leasing dla firmy"))])
    await database.collection("cases").update_many({}, {"$unset": {"searchTerms": ""}})
    assert (await gql(SEARCH, {"text": "leasing"}))["data"]["cases"]["edges"] == []

    assert await store_case_search_terms(database) == 1

    assert (await gql(SEARCH, {"text": "leasing"}))["data"]["cases"]["edges"] == [{"node": {"id": "CASE-A"}}]
