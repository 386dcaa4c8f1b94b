"""Appointments over HTTP with real tokens: scheduleAppointment books a meeting, writes the case's history and sends the
customer `notification.requested` (template `appointment`) through the outbox; refused calls send nothing (issue 10).

Times are drawn relative to today (the appointment must lie in the future): AT is 10:00 UTC in three days.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from consumers import staging as staging_module
from stores.database import Database
from tests.panel_sessions import panel_headers
from tests.factories import bearer, case_created_data, closed, created

ADVISOR = bearer(username="anna.nowak", roles=("case-reader", "advisor"), channel="BRANCH", branch="KRK-01")
ADVISOR_WAW = bearer(username="piotr.zielinski", roles=("case-reader", "advisor"), channel="BRANCH", branch="WAW-01")
CALL_CENTER = bearer(username="ewa.kowalska", roles=("call-center", "case-reader"), channel="CALL_CENTER")
READER = bearer(username="olga.reader", roles=("case-reader",), channel="BRANCH")
SYSTEM = bearer(username="service-account-crm", roles=("case-reader", "advisor"), system=True)

AT = (datetime.now(timezone.utc) + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
AT_INPUT = AT.strftime("%Y-%m-%dT10:00:00Z")
AT_OUTPUT = AT.strftime("%Y-%m-%dT10:00:00+00:00")
AT_COMMAND = AT.strftime("%Y-%m-%dT10:00:00.000Z")

APPOINTMENT = "id caseId customerId at channel note employee notified"
SCHEDULE = (f"mutation ($case: ID!, $at: DateTime!, $channel: String!, $note: String) {{ scheduleAppointment("
            f"caseId: $case, at: $at, channel: $channel, note: $note) {{ {APPOINTMENT} }} }}")
HISTORY = ('query ($id: ID!) { case(id: $id) { history(first: 1) { edges { node { kind actor { type name } channel '
           'summary details } } } } }')


async def post(client: TestClient, query: str, variables: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return await response.json()


async def schedule(client: TestClient, headers: dict[str, str] = ADVISOR, **variables: Any) -> dict[str, Any]:
    values = {"case": "CASE-1", "at": AT_INPUT, "channel": "BRANCH", "note": "Bring the income statements"}
    return await post(client, SCHEDULE, {**values, **variables}, headers)


async def notifications(client: TestClient) -> list[dict[str, Any]]:
    """What GET /dev/commands shows of `notification.requested`, without the envelope's ids and times."""
    sent = await (await client.get("/dev/commands", params={"type": "notification.requested"})).json()
    return [{k: e[k] for k in ("type", "subject", "source", "data")} for e in sent]


def codes(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["message"], e["extensions"]["code"]) for e in answer["errors"]]


@pytest.fixture
async def cases(services: Any) -> None:
    await services.pipeline.ingest([
        # CASE-1: its customer is participant P-1 (role PRIMARY_BORROWER), phone +48601200300.
        created("CASE-1"),
        created("CASE-2", data=case_created_data(title="Closed loan")), closed("CASE-2"),
        created("CASE-3", data=case_created_data(title="No phone", participants=[])),
        created("CASE-4", data=case_created_data(title="Card", participants=[
            {"id": "P-1", "role": "CO_BORROWER", "name": "Piotr Nowak", "phone": "+48602300400"},
            {"id": "P-2", "role": "APPLICANT", "name": "Anna Kowalska", "phone": "+48601200399"}])),
    ])


async def test_an_advisor_schedules_an_appointment_and_the_customer_is_sent_an_sms_request(
        client: TestClient, services: Any, cases: None) -> None:
    answer = await schedule(client)

    booked = answer["data"]["scheduleAppointment"]
    assert booked == {"id": booked["id"], "caseId": "CASE-1", "customerId": "CUST-1", "at": AT_OUTPUT,
                      "channel": "BRANCH", "note": "Bring the income statements", "employee": "anna.nowak",
                      "notified": True}
    assert await notifications(client) == [{
        "type": "notification.requested", "subject": "CASE-1", "source": "case-repository", "data": {
            "channel": "SMS", "to": "+48601200300", "template": "appointment",
            "params": {"caseId": "CASE-1", "appointmentId": booked["id"], "at": AT_COMMAND, "channel": "BRANCH"}}}]


async def test_the_customer_is_the_applicant_when_no_participant_bears_the_customer_id(
        client: TestClient, cases: None) -> None:
    answer = await schedule(client, case="CASE-4", channel="ONLINE", note=None)

    assert answer["data"]["scheduleAppointment"]["notified"] is True
    assert answer["data"]["scheduleAppointment"]["note"] is None
    assert [n["data"]["to"] for n in await notifications(client)] == ["+48601200399"]


async def test_a_case_without_a_phone_is_still_scheduled_and_says_the_customer_was_not_notified(
        client: TestClient, services: Any, database: Database, cases: None) -> None:
    answer = await schedule(client, case="CASE-3")

    assert answer["data"]["scheduleAppointment"]["notified"] is False
    assert await notifications(client) == []
    assert await database.collection("appointments").count_documents({"caseId": "CASE-3"}) == 1
    history = await post(client, HISTORY, {"id": "CASE-3"}, ADVISOR)
    assert history["data"]["case"]["history"]["edges"][0]["node"]["kind"] == "APPOINTMENT_SCHEDULED"


async def test_scheduling_adds_an_appointment_scheduled_row_to_the_case_history(
        client: TestClient, cases: None) -> None:
    booked = (await schedule(client))["data"]["scheduleAppointment"]

    history = await post(client, HISTORY, {"id": "CASE-1"}, ADVISOR)

    assert history == {"data": {"case": {"history": {"edges": [{"node": {
        "kind": "APPOINTMENT_SCHEDULED", "actor": {"type": "USER", "name": "anna.nowak"}, "channel": "BRANCH",
        "summary": f"Appointment scheduled for {AT_COMMAND} (BRANCH) by anna.nowak",
        "details": {"appointmentId": booked["id"], "at": AT_COMMAND, "channel": "BRANCH", "notified": True},
    }}]}}}}


async def test_scheduling_is_audited_with_the_case_customer_and_what_was_booked(
        client: TestClient, database: Database, cases: None) -> None:
    booked = (await schedule(client))["data"]["scheduleAppointment"]

    record = await database.collection("audit").find_one({"operation": "scheduleAppointment"}, sort=[("_id", -1)])

    field = f"appointments[{booked['id']}]"
    assert (record["actorName"], record["caseIds"], record["customerIds"], record["outcome"]) == (
        "anna.nowak", ["CASE-1"], ["CUST-1"], "ok")
    assert [(c["field"], c["old"], c["new"]) for c in record["changes"]] == [
        (f"{field}.at", None, AT),
        (f"{field}.channel", None, "BRANCH"),
        (f"{field}.note", None, "Bring the income statements"),
        (f"{field}.notified", None, True),
    ]


async def test_no_phone_is_at_rest_in_clear_and_nothing_stays_staged(
        client: TestClient, database: Database, cases: None) -> None:
    await schedule(client)

    row = await database.collection("appointments").find_one({"caseId": "CASE-1"})
    message = await database.collection("outbox").find_one({"type": "notification.requested"})

    assert (row["outbox"], "stagedAt" in row) == ([], False)
    assert (message["sensitive"], "event" in message, message["status"]) == (True, False, "SENT")
    assert "+48601200300" not in repr(row) + repr(message)


async def test_an_appointment_whose_writer_stopped_before_relaying_is_sent_by_the_relay_loop(
        client: TestClient, services: Any, database: Database, cases: None, monkeypatch: pytest.MonkeyPatch) -> None:
    relay_records = services.staging.relay_records

    async def stopped(*_args: Any) -> None:
        return None

    monkeypatch.setattr(services.staging, "relay_records", stopped)
    booked = (await schedule(client))["data"]["scheduleAppointment"]
    staged = await database.collection("appointments").find_one({"_id": booked["id"]})
    assert [e["kind"] for e in staged["outbox"]] == ["history", "message", "message"]  # + case.appointment_scheduled
    assert "+48601200300" not in repr(staged)  # the staged command is sealed
    assert await notifications(client) == []
    monkeypatch.setattr(services.staging, "relay_records", relay_records)
    monkeypatch.setattr(staging_module, "ABANDONED_AFTER", staging_module.ABANDONED_AFTER * -1)

    await services.relay.relay_due()
    await services.relay.relay_due()

    assert [n["data"]["to"] for n in await notifications(client)] == ["+48601200300"]
    history = await post(client, HISTORY, {"id": "CASE-1"}, ADVISOR)
    assert history["data"]["case"]["history"]["edges"][0]["node"]["kind"] == "APPOINTMENT_SCHEDULED"
    row = await database.collection("appointments").find_one({"_id": booked["id"]})
    assert (row["outbox"], "stagedAt" in row) == ([], False)


# --- refused: nothing is booked, nothing is sent ------------------------------------------------------------

@pytest.mark.parametrize(("variables", "message"), [
    ({"at": "2020-01-01T10:00:00Z"}, "at: must be in the future"),
    ({"at": (datetime.now(timezone.utc) + timedelta(days=400)).strftime("%Y-%m-%dT10:00:00Z")},
     "at: at most 366 days ahead"),
    ({"at": AT.strftime("%Y-%m-%dT10:00:00")}, "at: a time with its offset, such as 2026-12-01T10:00:00Z"),
    ({"channel": "PANEL"}, "channel: one of BRANCH, CALL_CENTER, ONLINE, MOBILE"),
    ({"note": "x" * 1001}, "note: at most 1000 characters"),
])
async def test_bad_input_is_refused_and_nothing_is_booked_or_sent(
        client: TestClient, database: Database, cases: None, variables: dict[str, Any], message: str) -> None:
    answer = await schedule(client, **variables)

    assert answer["data"] is None
    assert codes(answer) == [(message, "BAD_USER_INPUT")]
    assert await database.collection("appointments").count_documents({}) == 0
    assert await notifications(client) == []


@pytest.mark.parametrize(("case_id", "headers", "message", "code"), [
    ("CASE-1", ADVISOR_WAW, "case CASE-1 not found", "NOT_FOUND"),
    ("CASE-404", ADVISOR, "case CASE-404 not found", "NOT_FOUND"),
    ("CASE-2", ADVISOR, "case CASE-2 is closed", "CONFLICT"),
    ("CASE-1", READER, "scheduleAppointment needs one of the roles: advisor, back-office, call-center, team-manager",
     "FORBIDDEN"),
    ("CASE-1", SYSTEM, "only employees schedule appointments", "FORBIDDEN"),
    ("CASE-1", {}, "scheduleAppointment needs a signed-in caller", "UNAUTHENTICATED"),
])
async def test_a_refused_appointment_books_nothing_and_sends_nothing(
        client: TestClient, database: Database, cases: None, case_id: str, headers: dict[str, str], message: str,
        code: str) -> None:
    answer = await schedule(client, headers, case=case_id)

    assert answer["data"] is None
    assert codes(answer) == [(message, code)]
    assert await database.collection("appointments").count_documents({}) == 0
    assert await database.collection("history").count_documents({"kind": "APPOINTMENT_SCHEDULED"}) == 0
    assert await notifications(client) == []


async def test_a_panel_token_cannot_schedule(
    client: TestClient, database: Database, services: Any, cases: None,
) -> None:
    answer = await schedule(client, await panel_headers(services, "CASE-1", "P-1"))

    assert answer["data"] is None
    assert codes(answer) == [("scheduleAppointment is not available to a Customer Panel session", "FORBIDDEN")]
    assert await database.collection("appointments").count_documents({}) == 0
    assert await notifications(client) == []


async def test_the_call_center_may_schedule_a_call(client: TestClient, cases: None) -> None:
    answer = await schedule(client, CALL_CENTER, channel="CALL_CENTER")

    assert answer["data"]["scheduleAppointment"]["employee"] == "ewa.kowalska"
    assert answer["data"]["scheduleAppointment"]["channel"] == "CALL_CENTER"


async def test_the_booking_is_published_so_every_instance_forgets_cached_answers_about_the_case(
        client: TestClient, services: Any, cases: None) -> None:
    booked = (await schedule(client))["data"]["scheduleAppointment"]

    [published] = [e for e in await services.outbox.sent("updates") if e["type"] == "case.appointment_scheduled"]
    assert (published["subject"], published["data"]["caseId"], published["data"]["appointmentId"]) == (
        "CASE-1", "CASE-1", booked["id"])
    assert "note" not in published["data"] and "+48601200300" not in repr(published)
