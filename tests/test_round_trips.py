"""No N+1: a page of N cases with their customer, tasks and incidents costs the same store round trips for any N.

Round trips are counted by the store itself (`Database.round_trips`), for queries sent over HTTP.
"""
from __future__ import annotations

from typing import Any

import pytest

from stores.database import Database
from tests.factories import created, incident_raised, task_created

LIST = """
query($first: Int) {
  cases(first: $first, orderBy: {field: ID, direction: ASC}) {
    totalCount
    edges { node {
      id
      customer { id name summary { open closed total byStatus { key count } lastContactAt } }
      tasks { id name state case { id status } }
      incidents { id state }
    } }
  }
}"""
CUSTOMER_360 = """
query($id: ID!, $first: Int) {
  customer(id: $id) {
    id
    summary { total }
    timeline(first: 20) { edges { node { id caseId } } }
    cases(first: $first) { totalCount edges { node {
      id customer { id summary { open } } tasks { id case { id } } incidents { id }
    } } }
  }
}"""
# One aggregate for the page with its task rows, one count for totalCount, one grouped aggregate for every
# customer summary on it, and the
# request's one audit record (appended at its end; the chain head is cached, so no read of the audit).
LIST_ROUND_TRIPS = {"cases.aggregate": 2, "cases.count_documents": 1, "audit.insert_one": 1}
# The largest page LIST may ask for: its static cost (schema/limits.py counts every nested list as 20 items)
# is 213 per case, and 200 cases stay under the 50,000 limit where 500 would be refused as QUERY_TOO_COMPLEX.
LARGE_PAGE = 200


async def ingest_cases(services: Any, n: int) -> None:
    """N cases over N // 10 + 1 customers, each with two tasks and an open incident."""
    events = []
    for i in range(n):
        case_id = f"CASE-{i:04d}"
        customer = {"id": f"CUST-{i % (n // 10 + 1)}", "name": f"Customer {i % (n // 10 + 1)}"}
        events += [
            created(case_id, data={"customer": customer}),
            task_created(case_id, f"T-{i:04d}-1"),
            task_created(case_id, f"T-{i:04d}-2"),
            incident_raised(case_id, f"I-{i:04d}"),
        ]
    await services.pipeline.ingest(events)


async def with_round_trips(
    database: Database, gql: Any, query: str, variables: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, int]]:
    """The query's data and the store round trips it cost, by collection and operation."""
    database.round_trips.reset()
    result = await gql(query, variables)
    assert "errors" not in result, result["errors"]
    by_operation = dict(database.round_trips.by_operation)
    assert database.round_trips.count == sum(by_operation.values())
    return result["data"], by_operation


@pytest.mark.parametrize("n", [1, LARGE_PAGE])
async def test_a_page_of_cases_with_customers_tasks_and_incidents_costs_four_round_trips(
    services: Any, database: Database, gql: Any, n: int,
) -> None:
    # given N cases, each with its customer, two tasks and an incident
    await ingest_cases(services, n)

    # when a client asks for all of them with their customer (and its summary), tasks and incidents
    data, trips = await with_round_trips(database, gql, LIST, {"first": n})

    # then every case came back, for the same four round trips (three reads, one audit write) whatever N is
    edges = data["cases"]["edges"]
    assert len(edges) == n and data["cases"]["totalCount"] == n
    assert edges[-1]["node"]["tasks"] == [
        {"id": f"T-{n - 1:04d}-1", "name": f"Task T-{n - 1:04d}-1", "state": "CREATED",
         "case": {"id": f"CASE-{n - 1:04d}", "status": "NEW"}},
        {"id": f"T-{n - 1:04d}-2", "name": f"Task T-{n - 1:04d}-2", "state": "CREATED",
         "case": {"id": f"CASE-{n - 1:04d}", "status": "NEW"}},
    ]
    assert edges[-1]["node"]["incidents"] == [{"id": f"I-{n - 1:04d}", "state": "OPEN"}]
    assert trips == LIST_ROUND_TRIPS
    assert database.round_trips.count == 4


@pytest.mark.parametrize("n", [1, 500])
async def test_the_customer_360_costs_the_same_round_trips_for_any_number_of_cases(
    services: Any, database: Database, gql: Any, n: int,
) -> None:
    # given one customer with N cases
    await services.pipeline.ingest([
        event for i in range(n) for event in (
            created(f"CASE-{i:04d}"), task_created(f"CASE-{i:04d}", f"T-{i:04d}"),
            incident_raised(f"CASE-{i:04d}", f"I-{i:04d}"))
    ])

    # when the 360 view asks for them all
    data, trips = await with_round_trips(database, gql, CUSTOMER_360, {"id": "CUST-1", "first": n})

    # then: the customer, its summary (one grouped aggregate, shared with every case's customer), its timeline (its
    # visible cases' ids, then their history rows and their count), the page and its count, and the request's one
    # audit record
    assert len(data["customer"]["cases"]["edges"]) == n
    assert trips == {"cases.find": 2, "history.find": 1, "history.count_documents": 1, "cases.aggregate": 2,
                     "cases.count_documents": 1, "audit.insert_one": 1}
