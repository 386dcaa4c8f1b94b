"""What a participant does in the Customer Panel: consents and actions, over HTTP with real panel sessions (issue 9,
CONTRACT §5).

Anna (P-1) and Piotr (P-2) of the demo mortgage act at the same time, each on their own consent (C-2, C-1) and
action (T-123-5, T-123-2). Each act is in the history (actor CUSTOMER, channel PANEL), audited, and sent once as
its `case-commands` event; the same act repeated sends nothing more; an act on the other's item is FORBIDDEN and
changes and sends nothing.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from settings import Settings
from stores.database import Database
from tests.factories import bearer
from tests.panel_flow import ANNA_DIGITS, MORTGAGE, PIOTR_DIGITS, post, signed_in

CONSENT = "mutation ($id: ID!, $g: Boolean!) { panelGiveConsent(consentId: $id, granted: $g) { id participantId kind state } }"
COMPLETE = """mutation ($id: ID!, $input: JSON) { panelCompleteAction(taskId: $id, input: $input) {
  id name state assignee candidateGroups participantId } }"""
EMPLOYEE_VIEW = """query ($id: ID!) { case(id: $id) { consents { id state answeredAt }
  tasks { id state } } }"""
PANEL_HISTORY = "{ panelCase { history(first: 3) { edges { node { kind summary channel actor { type id name } } } } } }"
ADVISOR = bearer(username="ewa.zielinska", roles=("advisor", "case-reader"), channel="BRANCH", branch="KRK-01")


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=True, outbox_relay_seconds=3600.0, panel_answer_floor_seconds=0.0)


async def commands(client: TestClient, command_type: str) -> list[dict[str, Any]]:
    """The `case-commands` CloudEvents of `command_type` (GET /dev/commands), without their drawn ids and times."""
    sent = await (await client.get("/dev/commands", params={"type": command_type})).json()
    assert all(isinstance(e["id"], str) and e["time"].endswith("Z") for e in sent)
    return [{k: v for k, v in e.items() if k not in ("id", "time")} for e in sent]


def command(command_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "source": "case-repository", "type": command_type, "subject": MORTGAGE,
            "datacontenttype": "application/json", "data": {"caseId": MORTGAGE, **data}}


async def history(database: Database, kind: str) -> list[dict[str, Any]]:
    rows = await database.collection("history").find({"caseId": MORTGAGE, "kind": kind}).to_list(None)
    return sorted(({"summary": r["summary"], "actor": r["actor"], "channel": r["channel"]} for r in rows),
                  key=lambda r: r["actor"]["id"])


async def audit(database: Database, operation: str) -> list[tuple[str, str, str, list[str], int]]:
    records = await database.collection("audit").find({"operation": operation}).sort([("_id", 1)]).to_list(None)
    return sorted((r["actor"], r["action"], r["outcome"], r["caseIds"], len(r["eventIds"])) for r in records)


def code_of(answer: dict[str, Any]) -> str:
    [error] = answer["errors"]
    return error["extensions"]["code"]


async def consents(client: TestClient) -> dict[str, str]:
    answer = await post(client, EMPLOYEE_VIEW, {"id": MORTGAGE}, ADVISOR)
    return {c["id"]: c["state"] for c in answer["data"]["case"]["consents"]}


async def test_both_co_borrowers_answer_their_consents_at_the_same_time(client: TestClient,
                                                                        database: Database) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)

    answers = await asyncio.gather(post(client, CONSENT, {"id": "C-2", "g": True}, anna),
                                   post(client, CONSENT, {"id": "C-1", "g": False}, piotr))

    assert answers == [
        {"data": {"panelGiveConsent": {"id": "C-2", "participantId": "P-1", "kind": "CREDIT_BUREAU",
                                       "state": "GRANTED"}}},
        {"data": {"panelGiveConsent": {"id": "C-1", "participantId": "P-2", "kind": "CREDIT_BUREAU",
                                       "state": "DECLINED"}}}]
    # Employees see the same states.
    assert await consents(client) == {"C-1": "DECLINED", "C-2": "GRANTED"}
    sent = sorted(await commands(client, "consent.recorded"), key=lambda e: e["data"]["consentId"])
    # `at` is the moment of the answer, drawn by the server: present, in UTC.
    assert all(e["data"].pop("at").endswith("Z") for e in sent)
    assert sent == [command("consent.recorded", {"consentId": "C-1", "participantId": "P-2", "granted": False}),
                    command("consent.recorded", {"consentId": "C-2", "participantId": "P-1", "granted": True})]
    assert await history(database, "CONSENT_GIVEN") + await history(database, "CONSENT_DECLINED") == [
        {"summary": "Consent given in the Customer Panel", "actor": {"type": "CUSTOMER", "id": "P-1", "name": None},
         "channel": "PANEL"},
        {"summary": "Consent declined in the Customer Panel",
         "actor": {"type": "CUSTOMER", "id": "P-2", "name": None}, "channel": "PANEL"}]
    assert await audit(database, "panelGiveConsent") == [
        (f"panel:{MORTGAGE}/P-1", "WRITE", "ok", [MORTGAGE], 1), (f"panel:{MORTGAGE}/P-2", "WRITE", "ok", [MORTGAGE], 1)]
    # Each reads their own act in their panel history, told as theirs; never the other's.
    anna_history = (await post(client, PANEL_HISTORY, headers=anna))["data"]["panelCase"]["history"]["edges"]
    piotr_history = (await post(client, PANEL_HISTORY, headers=piotr))["data"]["panelCase"]["history"]["edges"]
    assert anna_history[0]["node"] == {"kind": "CONSENT_GIVEN", "summary": "Consent given in the Customer Panel",
                                       "channel": "PANEL", "actor": {"type": "CUSTOMER", "id": "P-1", "name": "you"}}
    assert piotr_history[0]["node"] == {"kind": "CONSENT_DECLINED", "channel": "PANEL",
                                        "summary": "Consent declined in the Customer Panel",
                                        "actor": {"type": "CUSTOMER", "id": "P-2", "name": "you"}}
    assert all(e["node"]["actor"]["id"] != "P-1" for e in piotr_history)


async def test_a_consent_of_the_other_participant_is_forbidden_and_changes_and_sends_nothing(
        client: TestClient, database: Database) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)

    answer = await post(client, CONSENT, {"id": "C-1", "g": True}, anna)

    assert answer["data"] is None
    assert (code_of(answer), answer["errors"][0]["message"]) == ("FORBIDDEN", "consent C-1 is not yours")
    assert await consents(client) == {"C-1": "REQUESTED", "C-2": "REQUESTED"}
    assert await commands(client, "consent.recorded") == []
    assert await history(database, "CONSENT_GIVEN") == []
    assert await audit(database, "panelGiveConsent") == [(f"panel:{MORTGAGE}/P-1", "WRITE", "denied", [MORTGAGE], 0)]


async def test_an_unknown_consent_is_not_found(client: TestClient) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)

    answer = await post(client, CONSENT, {"id": "C-99", "g": True}, anna)

    assert (code_of(answer), answer["errors"][0]["message"]) == ("NOT_FOUND", "consent C-99 not found in your case")


async def test_the_same_answer_repeated_is_one_command_and_a_changed_answer_is_sent_again(
        client: TestClient, database: Database) -> None:
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)
    granted = {"data": {"panelGiveConsent": {"id": "C-1", "participantId": "P-2", "kind": "CREDIT_BUREAU",
                                             "state": "GRANTED"}}}

    # A double click (two requests at once), then a third click later.
    assert await asyncio.gather(*(post(client, CONSENT, {"id": "C-1", "g": True}, piotr) for _ in range(2))) == [
        granted, granted]
    assert await post(client, CONSENT, {"id": "C-1", "g": True}, piotr) == granted

    sent = await commands(client, "consent.recorded")
    assert [e["data"]["granted"] for e in sent] == [True]
    assert len(await history(database, "CONSENT_GIVEN")) == 1

    # Withdrawn afterwards: a new answer, sent again.
    withdrawn = await post(client, CONSENT, {"id": "C-1", "g": False}, piotr)
    assert withdrawn["data"]["panelGiveConsent"]["state"] == "DECLINED"
    assert [e["data"]["granted"] for e in await commands(client, "consent.recorded")] == [True, False]
    assert await consents(client) == {"C-1": "DECLINED", "C-2": "REQUESTED"}


async def test_both_co_borrowers_complete_their_actions_at_the_same_time(client: TestClient,
                                                                         database: Database) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)

    answers = await asyncio.gather(
        post(client, COMPLETE, {"id": "T-123-5", "input": {"employer": "Kraków Tech"}}, anna),
        post(client, COMPLETE, {"id": "T-123-2", "input": None}, piotr))

    assert answers == [
        {"data": {"panelCompleteAction": {"id": "T-123-5", "name": "Confirm your employment details",
                                          "state": "COMPLETION_REQUESTED", "assignee": None, "candidateGroups": [],
                                          "participantId": "P-1"}}},
        {"data": {"panelCompleteAction": {"id": "T-123-2", "name": "Upload income statement",
                                          "state": "COMPLETION_REQUESTED", "assignee": None, "candidateGroups": [],
                                          "participantId": "P-2"}}}]
    sent = await commands(client, "task.completion_requested")
    assert sorted(sent, key=lambda e: e["data"]["taskId"]) == [
        command("task.completion_requested", {"taskId": "T-123-2", "actor": {"type": "CUSTOMER", "id": "P-2"},
                                              "channel": "PANEL", "input": None}),
        command("task.completion_requested", {"taskId": "T-123-5", "actor": {"type": "CUSTOMER", "id": "P-1"},
                                              "channel": "PANEL", "input": {"employer": "Kraków Tech"}})]
    assert await history(database, "TASK_COMPLETION_REQUESTED") == [
        {"summary": "Action completed in the Customer Panel: Confirm your employment details",
         "actor": {"type": "CUSTOMER", "id": "P-1", "name": None}, "channel": "PANEL"},
        {"summary": "Action completed in the Customer Panel: Upload income statement",
         "actor": {"type": "CUSTOMER", "id": "P-2", "name": None}, "channel": "PANEL"}]
    assert await audit(database, "panelCompleteAction") == [
        (f"panel:{MORTGAGE}/P-1", "WRITE", "ok", [MORTGAGE], 0), (f"panel:{MORTGAGE}/P-2", "WRITE", "ok", [MORTGAGE], 0)]
    tasks = (await post(client, EMPLOYEE_VIEW, {"id": MORTGAGE}, ADVISOR))["data"]["case"]["tasks"]
    assert {t["id"]: t["state"] for t in tasks if t["id"] in ("T-123-2", "T-123-5")} == {
        "T-123-2": "COMPLETION_REQUESTED", "T-123-5": "COMPLETION_REQUESTED"}

    # Repeated: the same answer, nothing more sent.
    again = await post(client, COMPLETE, {"id": "T-123-5", "input": {"employer": "Kraków Tech"}}, anna)
    assert again == answers[0]
    assert len(await commands(client, "task.completion_requested")) == 2


async def test_the_other_participants_action_is_forbidden_and_changes_and_sends_nothing(
        client: TestClient, database: Database) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)

    answer = await post(client, COMPLETE, {"id": "T-123-2"}, anna)
    # A bank task of the same case (no participant) is nobody's in the panel either.
    bank_task = await post(client, COMPLETE, {"id": "T-123-1"}, anna)

    assert (code_of(answer), answer["errors"][0]["message"]) == ("FORBIDDEN", "action T-123-2 is not yours")
    assert code_of(bank_task) == "FORBIDDEN"
    assert await commands(client, "task.completion_requested") == []
    assert await history(database, "TASK_COMPLETION_REQUESTED") == []
    tasks = (await post(client, EMPLOYEE_VIEW, {"id": MORTGAGE}, ADVISOR))["data"]["case"]["tasks"]
    assert {t["id"]: t["state"] for t in tasks if t["id"] in ("T-123-1", "T-123-2")} == {
        "T-123-1": "CREATED", "T-123-2": "CREATED"}


async def test_panel_acts_need_a_panel_session(client: TestClient) -> None:
    employee = await post(client, CONSENT, {"id": "C-1", "g": True}, ADVISOR)
    anonymous = await post(client, COMPLETE, {"id": "T-123-2"}, {})

    assert code_of(employee) == "FORBIDDEN"
    assert code_of(anonymous) == "UNAUTHENTICATED"
    assert await consents(client) == {"C-1": "REQUESTED", "C-2": "REQUESTED"}
    assert await commands(client, "consent.recorded") == []
    assert await commands(client, "task.completion_requested") == []
