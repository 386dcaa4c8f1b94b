"""The demo data and the dev personas let a person try every dashboard flow, with the operations in
`graphql/operations/` exactly as GraphiQL would send them (`make run` loads the same demo through the pipeline)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from auth.dev_tokens import mint_dev_token
from settings import Settings
from tests.live import BusWatch, next_frame, signed_in_socket, subscribe

OPERATIONS = Path(__file__).parents[1] / "graphql" / "operations"


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=True, outbox_relay_seconds=3600.0)


def persona(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(Settings(), name)}"}


class Demo:
    """Runs a named operation of a file in graphql/operations/ as a dev persona."""

    def __init__(self, client: TestClient) -> None:
        self._client = client

    async def __call__(self, who: str, file: str, operation: str, variables: dict[str, Any] | None = None,
                       ) -> dict[str, Any]:
        headers = persona(who)
        body = {"query": (OPERATIONS / file).read_text(), "operationName": operation, "variables": variables or {}}
        response = await self._client.post("/graphql", json=body, headers=headers)
        return await response.json()


@pytest.fixture
def demo(client: TestClient) -> Demo:
    return Demo(client)


def task_ids(answer: dict[str, Any], root: str) -> list[str]:
    assert "errors" not in answer, answer
    return [edge["node"]["id"] for edge in answer["data"][root]["edges"]]


INBOX = {"orderBy": {"field": "DUE_AT", "direction": "ASC"}}


async def test_each_employee_s_inbox_holds_their_tasks_and_their_groups_offers(demo: Demo) -> None:
    # The Kraków advisor: the call she holds, and the credit decision offered to mortgage advisors in her branch
    assert task_ids(await demo("advisor", "my_tasks.graphql", "MyTasks", INBOX), "myTasks") == [
        "T-123-4", "T-123-3"]
    # The Warsaw advisor, same group: only his branch's case
    assert task_ids(await demo("advisor-waw", "my_tasks.graphql", "MyTasks", INBOX), "myTasks") == ["T-150-1"]
    # The back office: what is offered to its group in every unit, and the complaint Jan holds
    assert task_ids(await demo("back-office", "my_tasks.graphql", "MyTasks", INBOX), "myTasks") == [
        "T-123-1", "T-131-1", "T-124-1"]
    # The call center: the call back on the complaint
    assert task_ids(await demo("call-center", "my_tasks.graphql", "MyTasks", INBOX), "myTasks") == ["T-131-2"]


async def test_a_manager_without_a_branch_sees_every_unit_and_the_branch_manager_hers(demo: Demo) -> None:
    every_unit = await demo("operations-manager", "unit_tasks.graphql", "UnitTasks", INBOX)
    assert task_ids(every_unit, "tasks") == [
        "T-123-1", "T-131-1", "T-124-1", "T-123-4", "T-131-2", "T-150-1", "T-123-3", "T-123-2",
        "T-123-5"]
    holders = {e["node"]["id"]: e["node"]["assignee"] for e in every_unit["data"]["tasks"]["edges"]}
    assert (holders["T-123-4"], holders["T-131-1"], holders["T-123-3"]) == ("anna.nowak", "jan.wisniewski", None)

    krakow = await demo("team-manager", "unit_tasks.graphql", "UnitTasks", INBOX)
    assert task_ids(krakow, "tasks") == ["T-123-1", "T-123-4", "T-123-3", "T-123-2", "T-123-5"]


async def test_claim_then_complete_and_a_manager_assigns(demo: Demo) -> None:
    claimed = await demo("back-office", "claim_task.graphql", "ClaimTask", {"taskId": "T-123-1"})
    assert claimed["data"]["claimTask"]["assignee"] == "jan.wisniewski"
    completed = await demo("back-office", "task_changes.graphql", "CompleteTask",
                           {"taskId": "T-123-1", "input": {"incomeVerified": True}})
    assert completed["data"]["completeTask"]["state"] == "COMPLETION_REQUESTED"
    # The advisor cannot claim what her groups are not offered
    refused = await demo("advisor", "claim_task.graphql", "ClaimTask", {"taskId": "T-124-1"})
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"  # the card case is not her branch's

    assigned = await demo("team-manager", "task_changes.graphql", "AssignTask",
                          {"taskId": "T-123-3", "assignee": "anna.nowak"})
    assert assigned["data"]["assignTask"]["assignee"] == "anna.nowak"


async def test_the_back_office_retries_the_card_s_credit_bureau_incident(demo: Demo) -> None:
    listed = await demo("back-office", "incidents.graphql", "CasesWithOpenIncidents")
    [card] = [e["node"] for e in listed["data"]["cases"]["edges"]]
    assert [(i["id"], i["retryable"], i["retryState"]) for i in card["incidents"]] == [
        ("I-1", True, "NONE"), ("I-2", False, "NONE")]

    retried = await demo("back-office", "incidents.graphql", "RetryIncident", {"incidentId": "I-1"})
    assert (retried["data"]["retryIncident"]["retryState"], retried["data"]["retryIncident"]["lastRetryBy"]) == (
        "PENDING_RETRY", "jan.wisniewski")
    not_retryable = await demo("back-office", "incidents.graphql", "RetryIncident", {"incidentId": "I-2"})
    assert not_retryable["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_customer_card_shows_the_co_borrower_s_cases_and_offers(demo: Demo) -> None:
    answer = await demo("back-office", "customer_card.graphql", "CustomerCard", {"id": "CUST-1002"})

    customer = answer["data"]["customer"]
    assert [e["node"]["id"] for e in customer["cases"]["edges"]] == ["CASE-2026-000124", "CASE-2026-000123"]
    assert [(o["caseId"], o["id"], o["name"]) for o in customer["offers"]] == [
        ("CASE-2026-000123", "O-1", "Fixed 5y, 25 years")]


async def test_the_advisor_negotiates_within_the_margin_range_and_the_manager_approves(demo: Demo) -> None:
    terms = {"rate": "6.85", "margin": "2.05", "marginMin": "1.80", "marginMax": "2.40", "amount": "350000.00",
             "currency": "PLN", "termMonths": 300, "fees": "1200.00", "validUntil": "2027-02-28"}
    what_if = await demo("advisor", "negotiated_terms.graphql", "Installment",
                         {"amount": "350000.00", "annualRate": "6.50", "termMonths": 300})
    assert what_if == {"data": {"installment": "2363.23"}}
    recorded = await demo("advisor", "negotiated_terms.graphql", "RecordNegotiatedTerms",
                          {"caseId": "CASE-2026-000123", "input": terms})
    assert recorded["data"]["recordNegotiatedTerms"]["monthlyInstallment"] == "2440.34"
    approved = await demo("team-manager", "negotiated_terms.graphql", "ApproveNegotiatedTerms",
                          {"caseId": "CASE-2026-000123"})
    assert approved["data"]["approveNegotiatedTerms"]["approvedBy"] == "maria.wojcik"


async def test_notes_on_the_customer_card(demo: Demo) -> None:
    added = await demo("call-center", "add_note.graphql", "AddNote",
                       {"customerId": "CUST-1003", "text": "Prefers calls after 5 pm."})
    note_id = added["data"]["addNote"]["id"]
    edited = await demo("call-center", "note_changes.graphql", "EditNote",
                        {"noteId": note_id, "text": "Prefers calls after 6 pm."})
    assert [v["text"] for v in edited["data"]["editNote"]["versions"]] == ["Prefers calls after 5 pm."]
    foreign = await demo("back-office", "note_changes.graphql", "DeleteNote", {"noteId": note_id})
    assert foreign["errors"][0]["extensions"]["code"] == "FORBIDDEN"


DECEMBER = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}


async def test_an_appointment_enters_the_calendar_beside_held_tasks_and_deadlines(
    demo: Demo, client: TestClient,
) -> None:
    booked = await demo("advisor", "schedule_appointment.graphql", "ScheduleAppointment", {
        "caseId": "CASE-2026-000123", "at": "2026-12-07T10:00:00Z", "channel": "BRANCH",
        "note": "Bring the co-borrower's income statement"})
    assert booked["data"]["scheduleAppointment"]["notified"] is True

    calendar = await demo("advisor", "calendar.graphql", "MyCalendar", DECEMBER)
    assert [(e["kind"], e["at"], e["caseId"], e["taskId"]) for e in calendar["data"]["calendar"]] == [
        ("TASK_DUE", "2026-12-03T10:00:00+00:00", "CASE-2026-000123", "T-123-4"),
        ("APPOINTMENT", "2026-12-07T10:00:00+00:00", "CASE-2026-000123", None),
        ("CASE_DEADLINE", "2026-12-15T16:00:00+00:00", "CASE-2026-000123", None)]
    # The customer's SMS request, as a person reads it in dev
    sent = await (await client.get("/dev/commands?type=notification.requested")).json()
    assert [(e["data"]["template"], e["data"]["to"]) for e in sent] == [("appointment", "+48601200300")]


async def test_the_advisor_hears_when_her_manager_assigns_her_a_task(
    demo: Demo, client: TestClient, bus_watch: BusWatch,
) -> None:
    async with signed_in_socket(client, persona("advisor")) as advisor:
        await subscribe(advisor, "bell", (OPERATIONS / "my_notifications.graphql").read_text())
        await bus_watch.until_active(1)

        await demo("team-manager", "task_changes.graphql", "AssignTask", {"taskId": "T-123-3", "assignee": "anna.nowak"})

        frame = await next_frame(advisor)
        assert (frame["type"], frame["payload"]["data"]["myNotifications"]["kind"],
                frame["payload"]["data"]["myNotifications"]["taskId"]) == ("next", "TASK_ASSIGNED", "T-123-3")
