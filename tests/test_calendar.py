"""The employee's calendar over HTTP with real tokens: my appointments, the due dates of my open tasks and the
deadlines of the open cases I hold, in [from, to), soonest first; nobody else's; constant store round trips.

Times are relative to tomorrow (appointments must lie in the future): DAY is tomorrow 00:00 UTC, the range a week.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from stores.database import Database
from tests.factories import bearer, case_created_data, closed, created, task_created, updated

ANNA = bearer(username="anna.nowak", roles=("case-reader", "advisor"), channel="BRANCH", branch="KRK-01")
MAREK = bearer(username="marek.lis", roles=("case-reader", "advisor"), channel="BRANCH", branch="KRK-01")
READER = bearer(username="olga.reader", roles=("case-reader",))
SYSTEM = bearer(username="service-account-crm", roles=("case-reader", "advisor"), system=True)

DAY = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
WEEK = DAY + timedelta(days=7)

CALENDAR = ("query ($from: DateTime!, $to: DateTime!) { calendar(from: $from, to: $to) { "
            "kind at title caseId taskId appointmentId channel note } }")
SCHEDULE = ("mutation ($case: ID!, $at: DateTime!, $channel: String!, $note: String) { scheduleAppointment("
            "caseId: $case, at: $at, channel: $channel, note: $note) { id } }")


def z(moment: datetime) -> str:
    """An input time as a client writes it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(moment: datetime) -> str:
    """A time as the API shows it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def entry(kind: str, at: datetime, title: str, case_id: str, *, task_id: str | None = None,
          appointment_id: str | None = None, channel: str | None = None, note: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "at": shown(at), "title": title, "caseId": case_id, "taskId": task_id,
            "appointmentId": appointment_id, "channel": channel, "note": note}


async def post(client: TestClient, query: str, variables: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return await response.json()


async def calendar(client: TestClient, headers: dict[str, str] = ANNA, start: datetime = DAY,
                   end: datetime = WEEK) -> dict[str, Any]:
    return await post(client, CALENDAR, {"from": z(start), "to": z(end)}, headers)


async def schedule(client: TestClient, case_id: str, at: datetime, headers: dict[str, str] = ANNA,
                   note: str | None = None) -> str:
    answer = await post(client, SCHEDULE, {"case": case_id, "at": z(at), "channel": "BRANCH", "note": note}, headers)
    return answer["data"]["scheduleAppointment"]["id"]


def codes(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["message"], e["extensions"]["code"]) for e in answer["errors"]]


@pytest.fixture
async def desk(services: Any) -> None:
    """Anna holds T-1 (due in the week), T-2 (due exactly at its end), T-4 (due exactly at its start) in CASE-1,
    whose deadline is in the week; Marek holds T-3 in CASE-1; CASE-2 has a deadline but Anna holds nothing there;
    in CASE-3 Anna's task is completed; CASE-4 (Warsaw) is outside Anna's branch; CASE-5 is closed."""
    def case(case_id: str, title: str, due: datetime, **overrides: Any) -> Any:
        return created(case_id, data=case_created_data(title=title, dueAt=due.isoformat(), **overrides))

    await services.pipeline.ingest([
        case("CASE-1", "Mortgage for a flat", DAY + timedelta(days=5, hours=12)),
        task_created("CASE-1", "T-1", name="Verify income", assignee="anna.nowak",
                     dueAt=(DAY + timedelta(days=2, hours=16)).isoformat()),
        task_created("CASE-1", "T-2", name="Order valuation", assignee="anna.nowak", dueAt=WEEK.isoformat()),
        task_created("CASE-1", "T-3", name="Check the land register", assignee="marek.lis",
                     dueAt=(DAY + timedelta(days=1)).isoformat()),
        task_created("CASE-1", "T-4", name="Call the customer", assignee="anna.nowak", state="ASSIGNED",
                     dueAt=DAY.isoformat()),
        case("CASE-2", "Car loan", DAY + timedelta(days=1)),
        case("CASE-3", "Cash loan", DAY + timedelta(days=2)),
        task_created("CASE-3", "T-5", name="Sign", assignee="anna.nowak", state="COMPLETED",
                     dueAt=(DAY + timedelta(days=2)).isoformat()),
        case("CASE-4", "Leasing in Warsaw", DAY + timedelta(days=3), branch="WAW-01"),
        task_created("CASE-4", "T-6", name="Warsaw task", assignee="anna.nowak",
                     dueAt=(DAY + timedelta(days=3)).isoformat()),
        case("CASE-5", "Closed account", DAY + timedelta(days=4)),
        task_created("CASE-5", "T-7", name="Archive", assignee="anna.nowak"),
        closed("CASE-5"),
    ])


async def test_my_calendar_shows_my_appointments_task_due_dates_and_case_deadlines_soonest_first(
        client: TestClient, desk: None) -> None:
    mine = await schedule(client, "CASE-1", DAY + timedelta(days=3, hours=10), note="Bring the valuation")
    await schedule(client, "CASE-1", DAY + timedelta(days=3, hours=11), MAREK)

    answer = await calendar(client)

    assert answer == {"data": {"calendar": [
        entry("TASK_DUE", DAY, "Call the customer", "CASE-1", task_id="T-4"),
        entry("TASK_DUE", DAY + timedelta(days=2, hours=16), "Verify income", "CASE-1", task_id="T-1"),
        entry("APPOINTMENT", DAY + timedelta(days=3, hours=10), "Mortgage for a flat", "CASE-1",
              appointment_id=mine, channel="BRANCH", note="Bring the valuation"),
        entry("CASE_DEADLINE", DAY + timedelta(days=5, hours=12), "Mortgage for a flat", "CASE-1"),
    ]}}


async def test_another_employee_sees_only_their_own_entries(client: TestClient, desk: None) -> None:
    await schedule(client, "CASE-1", DAY + timedelta(days=3, hours=10))
    his = await schedule(client, "CASE-1", DAY + timedelta(days=3, hours=11), MAREK)

    answer = await calendar(client, MAREK)

    assert answer == {"data": {"calendar": [
        entry("TASK_DUE", DAY + timedelta(days=1), "Check the land register", "CASE-1", task_id="T-3"),
        entry("APPOINTMENT", DAY + timedelta(days=3, hours=11), "Mortgage for a flat", "CASE-1",
              appointment_id=his, channel="BRANCH"),
        entry("CASE_DEADLINE", DAY + timedelta(days=5, hours=12), "Mortgage for a flat", "CASE-1"),
    ]}}


async def test_from_is_included_and_to_is_not(client: TestClient, desk: None) -> None:
    first_day = await calendar(client, start=DAY, end=DAY + timedelta(days=1))
    up_to_the_end = await calendar(client, start=WEEK - timedelta(hours=1), end=WEEK)
    from_the_end = await calendar(client, start=WEEK, end=WEEK + timedelta(days=1))

    assert first_day == {"data": {"calendar": [entry("TASK_DUE", DAY, "Call the customer", "CASE-1", task_id="T-4")]}}
    assert up_to_the_end == {"data": {"calendar": []}}
    assert from_the_end == {"data": {"calendar": [
        entry("TASK_DUE", WEEK, "Order valuation", "CASE-1", task_id="T-2")]}}


async def test_a_deadline_follows_case_updated_and_shows_on_the_case(
        client: TestClient, services: Any, desk: None) -> None:
    await services.pipeline.ingest([updated("CASE-1", {"dueAt": (DAY + timedelta(days=6)).isoformat()})])
    moved = await calendar(client, start=DAY + timedelta(days=5), end=WEEK)
    case = await post(client, '{ case(id: "CASE-1") { dueAt } }', {}, ANNA)
    await services.pipeline.ingest([updated("CASE-1", {"dueAt": None})])
    cleared = await calendar(client, start=DAY + timedelta(days=5), end=WEEK)

    assert moved == {"data": {"calendar": [
        entry("CASE_DEADLINE", DAY + timedelta(days=6), "Mortgage for a flat", "CASE-1")]}}
    assert case == {"data": {"case": {"dueAt": shown(DAY + timedelta(days=6))}}}
    assert cleared == {"data": {"calendar": []}}


async def test_an_appointment_leaves_the_calendar_when_its_case_moves_out_of_my_sight(
        client: TestClient, services: Any, desk: None) -> None:
    await schedule(client, "CASE-2", DAY + timedelta(days=2))
    before = await calendar(client, start=DAY + timedelta(days=2), end=DAY + timedelta(days=2, hours=1))
    await services.pipeline.ingest([updated("CASE-2", {"branch": "WAW-01"})])
    after = await calendar(client, start=DAY + timedelta(days=2), end=DAY + timedelta(days=2, hours=1))

    assert [e["kind"] for e in before["data"]["calendar"]] == ["APPOINTMENT"]
    assert after == {"data": {"calendar": []}}


@pytest.mark.parametrize(("start", "end", "message"), [
    (WEEK, DAY, "to: must be after from"),
    (DAY, DAY, "to: must be after from"),
    (DAY, DAY + timedelta(days=92, seconds=1), "the range from..to spans at most 92 days"),
])
async def test_a_range_that_is_empty_or_too_long_is_bad_input(
        client: TestClient, desk: None, start: datetime, end: datetime, message: str) -> None:
    answer = await calendar(client, start=start, end=end)

    assert answer["data"] is None
    assert codes(answer) == [(message, "BAD_USER_INPUT")]


async def test_a_range_of_92_days_is_served_and_a_time_without_offset_is_not(client: TestClient, desk: None) -> None:
    longest = await calendar(client, start=DAY, end=DAY + timedelta(days=92))
    naive = await post(client, CALENDAR, {"from": DAY.strftime("%Y-%m-%dT%H:%M:%S"), "to": z(WEEK)}, ANNA)

    assert [e["taskId"] or e["kind"] for e in longest["data"]["calendar"]] == ["T-4", "T-1", "CASE_DEADLINE", "T-2"]
    assert codes(naive) == [("from: a time with its offset, such as 2026-12-01T00:00:00Z", "BAD_USER_INPUT")]


@pytest.mark.parametrize(("headers", "message"), [
    (READER, "calendar needs one of the roles: advisor, back-office, call-center, team-manager"),
    (SYSTEM, "only employees read a calendar"),
])
async def test_the_calendar_is_refused_to_other_roles_and_to_systems(
        client: TestClient, desk: None, headers: dict[str, str], message: str) -> None:
    answer = await calendar(client, headers)

    assert answer["data"] is None
    assert codes(answer) == [(message, "FORBIDDEN")]


async def test_reading_the_calendar_is_audited_with_the_cases_it_showed(
        client: TestClient, database: Database, desk: None) -> None:
    await calendar(client)

    record = await database.collection("audit").find_one({"operation": "calendar"}, sort=[("_id", -1)])

    assert (record["actorName"], record["caseIds"], record["customerIds"], record["outcome"]) == (
        "anna.nowak", ["CASE-1"], ["CUST-1"], "ok")


# --- round trips ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 30])
async def test_the_calendar_costs_the_same_round_trips_for_any_number_of_entries(
        client: TestClient, services: Any, database: Database, n: int) -> None:
    # given n cases with a deadline, each with a task Anna holds and an appointment she booked
    events = []
    for i in range(n):
        due = DAY + timedelta(days=2, minutes=i)
        events += [created(f"CASE-{i:03d}", data=case_created_data(dueAt=due.isoformat())),
                   task_created(f"CASE-{i:03d}", f"T-{i:03d}", assignee="anna.nowak", dueAt=due.isoformat())]
    await services.pipeline.ingest(events)
    for i in range(n):
        await schedule(client, f"CASE-{i:03d}", DAY + timedelta(days=3, minutes=i))

    # when she reads her week
    database.round_trips.reset()
    answer = await calendar(client)

    # then: her appointments, her held tasks (one aggregate), their cases, and the request's audit record
    assert len(answer["data"]["calendar"]) == 3 * n
    assert dict(database.round_trips.by_operation) == {
        "appointments.find": 1, "tasks.aggregate": 1, "cases.find": 1, "audit.insert_one": 1}
