"""Dashboard claims over HTTP with real tokens: claimTask, unclaimTask, assignTask and completeTask (CONTRACT §5).

Each change is one conditional update of the task's row; what it stages (a history row, a command on
`case-commands`) is relayed right after. A refused attempt changes nothing and sends nothing.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from consumers import staging as staging_module
from tests.factories import CaseStory, bearer, case_created_data, event, task_data

CASE_ID = "CASE-1"
# Employees as Keycloak issues them: a back-office group as a path, and as a plain name.
JAN = bearer(username="jan.wisniewski", roles=("back-office", "case-reader"), groups=("/bank/back-office",),
             channel="BACK_OFFICE")
JAN_ID = "4b65a200-3da6-510d-82c0-450377955d84"
OLGA = bearer(username="olga.nowak", roles=("back-office", "case-reader"), groups=("back-office",),
              channel="BACK_OFFICE")
MARIA = bearer(username="maria.wojcik", roles=("team-manager", "case-reader"), groups=("/branches/KRK-01",),
               channel="BRANCH", branch="KRK-01")
MARIA_ID = "b0bf0477-b143-5243-8d28-a42e649c26d9"
ADVISOR = bearer(username="anna.nowak", roles=("case-reader", "advisor"), groups=("/branches/KRK-01",),
                 channel="BRANCH", branch="KRK-01")
# In a back-office group, but the case is in another branch than the token's.
WARSAW = bearer(username="piotr.zielinski", roles=("back-office", "case-reader"), groups=("/bank/back-office",),
                channel="BACK_OFFICE", branch="WAW-01")
NO_ROLES = bearer(username="adam.dabrowski", roles=(), groups=("/bank/back-office",))
AUDITOR = bearer(username="tomasz.kaminski", roles=("auditor",), channel="BACK_OFFICE")

TASK_FIELDS = "id caseId state assignee candidateGroups"
CLAIM = f"mutation ($id: ID!) {{ claimTask(taskId: $id) {{ {TASK_FIELDS} }} }}"
UNCLAIM = f"mutation ($id: ID!) {{ unclaimTask(taskId: $id) {{ {TASK_FIELDS} }} }}"
ASSIGN = f"mutation ($id: ID!, $to: String!) {{ assignTask(taskId: $id, assignee: $to) {{ {TASK_FIELDS} }} }}"
COMPLETE = f"mutation ($id: ID!, $input: JSON) {{ completeTask(taskId: $id, input: $input) {{ {TASK_FIELDS} }} }}"
CASE = """query ($id: ID!) { case(id: $id) { version tasks { id state assignee }
  history { edges { node { kind actor { type id name } channel summary } } } } }"""
TRAIL = """query ($caseId: ID) { auditTrail(caseId: $caseId, first: 50) { edges { node {
  actorName action operation caseIds outcome changes { caseId field old new } } } } }"""

OPEN_HISTORY = [
    {"kind": "TASK_CREATED", "actor": {"type": "SYSTEM", "id": "tests/bpms", "name": None}, "channel": None,
     "summary": "Task created: Verify income documents"},
    {"kind": "CASE_CREATED", "actor": {"type": "SYSTEM", "id": "tests/bpms", "name": None}, "channel": None,
     "summary": "Case opened: Mortgage for a flat"},
]


def task(state: str = "CREATED", assignee: str | None = None) -> dict[str, Any]:
    return {"id": "T-1", "caseId": CASE_ID, "state": state, "assignee": assignee, "candidateGroups": ["back-office"]}


def assignment_changed(assignee: str | None, by: str) -> dict[str, Any]:
    """A `task.assignment_changed` command on T-1 without its drawn id and time."""
    return {"specversion": "1.0", "source": "case-repository", "type": "task.assignment_changed", "subject": CASE_ID,
            "datacontenttype": "application/json",
            "data": {"caseId": CASE_ID, "taskId": "T-1", "assignee": assignee, "by": by}}


def without_id_and_time(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k not in ("id", "time")} for e in events]


async def commands(services: Any, client: TestClient) -> list[dict[str, Any]]:
    """What went out on `case-commands`; the dev outbox lists the same CloudEvents."""
    sent = await services.outbox.sent("commands")
    listed = await (await client.get("/dev/commands")).json()
    assert [e["id"] for e in listed] == [e["id"] for e in sent]
    return without_id_and_time(sent)


def error_of(answer: dict[str, Any]) -> dict[str, Any]:
    [error] = answer["errors"]
    assert answer["data"] is None
    return error["extensions"]


@pytest.fixture
async def story(services: Any) -> CaseStory:
    """A case (version 2) with one open task, T-1, offered to back-office and held by nobody."""
    opened = CaseStory(CASE_ID).add("case.created", case_created_data()).add("case.task_created", task_data("T-1"))
    await services.pipeline.ingest(opened.events)
    return opened


async def test_a_member_of_a_candidate_group_claims_the_task(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    # When Jan, whose group path /bank/back-office ends in the candidate group, claims T-1
    answer = await gql(CLAIM, {"id": "T-1"}, headers=JAN)

    # Then he holds it, the engine is told, and the case's version is as it was
    assert answer == {"data": {"claimTask": task(assignee="jan.wisniewski")}}
    assert await commands(services, client) == [assignment_changed("jan.wisniewski", "jan.wisniewski")]
    case = (await gql(CASE, {"id": CASE_ID}))["data"]["case"]
    assert (case["version"], case["tasks"]) == (2, [{"id": "T-1", "state": "CREATED", "assignee": "jan.wisniewski"}])
    # And the case's history names him, through his channel
    assert case["history"]["edges"][0]["node"] == {
        "kind": "TASK_CLAIMED", "actor": {"type": "USER", "id": JAN_ID, "name": "jan.wisniewski"},
        "channel": "BACK_OFFICE", "summary": "Task claimed: T-1 by jan.wisniewski"}


async def test_of_two_claims_at_once_one_wins_and_the_other_hears_who_holds_it(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    # When Jan and Olga claim T-1 at the same moment
    answers = await asyncio.gather(gql(CLAIM, {"id": "T-1"}, headers=JAN), gql(CLAIM, {"id": "T-1"}, headers=OLGA))

    # Then exactly one holds it, and the other gets CONFLICT naming the winner
    won = [a for a in answers if a.get("data")]
    lost = [a for a in answers if a.get("errors")]
    assert len(won) == 1 and len(lost) == 1
    winner = won[0]["data"]["claimTask"]["assignee"]
    assert winner in ("jan.wisniewski", "olga.nowak")
    assert won[0] == {"data": {"claimTask": task(assignee=winner)}}
    assert error_of(lost[0]) == {"code": "CONFLICT", "assignee": winner, "state": "CREATED"}
    # And only the winner's claim went out
    assert await commands(services, client) == [assignment_changed(winner, winner)]


async def test_a_claim_outside_the_callers_groups_is_forbidden_and_sends_nothing(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    # When an advisor, whose groups the task is not offered to, claims it
    answer = await gql(CLAIM, {"id": "T-1"}, headers=ADVISOR)

    # Then FORBIDDEN; the task, the history and the commands are as they were
    assert error_of(answer) == {"code": "FORBIDDEN"}
    case = (await gql(CASE, {"id": CASE_ID}))["data"]["case"]
    assert case["tasks"] == [{"id": "T-1", "state": "CREATED", "assignee": None}]
    assert [e["node"] for e in case["history"]["edges"]] == OPEN_HISTORY
    assert await commands(services, client) == []


async def test_a_task_the_caller_cannot_see_or_that_does_not_exist_is_not_found(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    # When a back-office clerk of another branch claims T-1, and Jan claims a task nobody created
    outside = await gql(CLAIM, {"id": "T-1"}, headers=WARSAW)
    unknown = await gql(CLAIM, {"id": "T-404"}, headers=JAN)

    # Then both are NOT_FOUND, and nothing went out
    assert error_of(outside) == {"code": "NOT_FOUND"}
    assert error_of(unknown) == {"code": "NOT_FOUND"}
    assert await commands(services, client) == []


@pytest.mark.parametrize("mutation, variables", [
    (CLAIM, {"id": "T-1"}), (UNCLAIM, {"id": "T-1"}), (ASSIGN, {"id": "T-1", "to": "jan.wisniewski"}),
    (COMPLETE, {"id": "T-1", "input": {}}),
], ids=["claim", "unclaim", "assign", "complete"])
async def test_a_token_without_a_case_role_changes_no_task(
    gql: Any, services: Any, client: TestClient, story: CaseStory, mutation: str, variables: dict[str, Any],
) -> None:
    answer = await gql(mutation, variables, headers=NO_ROLES)

    assert error_of(answer) == {"code": "FORBIDDEN"}
    assert await commands(services, client) == []


async def test_the_holder_releases_a_task(gql: Any, services: Any, client: TestClient, story: CaseStory) -> None:
    # Given Jan holds T-1
    await gql(CLAIM, {"id": "T-1"}, headers=JAN)

    # When he unclaims it
    answer = await gql(UNCLAIM, {"id": "T-1"}, headers=JAN)

    # Then nobody holds it, and the engine hears so (assignee null)
    assert answer == {"data": {"unclaimTask": task()}}
    assert await commands(services, client) == [
        assignment_changed("jan.wisniewski", "jan.wisniewski"), assignment_changed(None, "jan.wisniewski")]


async def test_a_team_manager_releases_someone_elses_task_and_nobody_else_may(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    # Given Jan holds T-1
    await gql(CLAIM, {"id": "T-1"}, headers=JAN)

    # When Olga (same group, not the holder) unclaims it, then Maria (team manager)
    refused = await gql(UNCLAIM, {"id": "T-1"}, headers=OLGA)
    after_refusal = await commands(services, client)
    released = await gql(UNCLAIM, {"id": "T-1"}, headers=MARIA)

    # Then Olga is FORBIDDEN and sends nothing; Maria releases it
    assert error_of(refused) == {"code": "FORBIDDEN"}
    assert after_refusal == [assignment_changed("jan.wisniewski", "jan.wisniewski")]
    assert released == {"data": {"unclaimTask": task()}}
    assert await commands(services, client) == [
        assignment_changed("jan.wisniewski", "jan.wisniewski"), assignment_changed(None, "maria.wojcik")]


async def test_a_team_manager_assigns_a_task_and_an_advisor_may_not(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    # When an advisor assigns T-1 to Olga, then Maria (team manager) does
    refused = await gql(ASSIGN, {"id": "T-1", "to": "olga.nowak"}, headers=ADVISOR)
    after_refusal = await commands(services, client)
    assigned = await gql(ASSIGN, {"id": "T-1", "to": "olga.nowak"}, headers=MARIA)

    # Then the advisor is FORBIDDEN and sends nothing; Maria's assignment stands and goes to the engine
    assert error_of(refused) == {"code": "FORBIDDEN"}
    assert after_refusal == []
    assert assigned == {"data": {"assignTask": task(assignee="olga.nowak")}}
    assert await commands(services, client) == [assignment_changed("olga.nowak", "maria.wojcik")]
    # And the history says who assigned it to whom
    case = (await gql(CASE, {"id": CASE_ID}))["data"]["case"]
    assert case["history"]["edges"][0]["node"] == {
        "kind": "TASK_ASSIGNED", "actor": {"type": "USER", "id": MARIA_ID, "name": "maria.wojcik"},
        "channel": "BRANCH", "summary": "Task assigned: T-1 to olga.nowak"}


async def test_only_the_holder_completes_and_the_engines_completion_then_wins(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    # Given Jan holds T-1
    await gql(CLAIM, {"id": "T-1"}, headers=JAN)
    form = {"incomeVerified": True, "note": "payslips match"}

    # When Olga tries to complete it, then Jan does
    refused = await gql(COMPLETE, {"id": "T-1", "input": form}, headers=OLGA)
    after_refusal = await commands(services, client)
    completed = await gql(COMPLETE, {"id": "T-1", "input": form}, headers=JAN)

    # Then Olga is FORBIDDEN and sends nothing; Jan's task waits for the engine, which is asked to complete it
    assert error_of(refused) == {"code": "FORBIDDEN"}
    assert after_refusal == [assignment_changed("jan.wisniewski", "jan.wisniewski")]
    assert completed == {"data": {"completeTask": task("COMPLETION_REQUESTED", "jan.wisniewski")}}
    assert (await commands(services, client))[1:] == [{
        "specversion": "1.0", "source": "case-repository", "type": "task.completion_requested", "subject": CASE_ID,
        "datacontenttype": "application/json",
        "data": {"caseId": CASE_ID, "taskId": "T-1", "actor": {"type": "USER", "id": JAN_ID},
                 "channel": "BACK_OFFICE", "input": form}}]
    assert (await gql(CASE, {"id": CASE_ID}))["data"]["case"]["version"] == 2

    # When the engine reports the task completed (a moment after the request)
    done = event("case.task_completed", CASE_ID, {"task": {"id": "T-1"}}, sequence=3, source="tests/bpms",
                 time=datetime.now(timezone.utc) + timedelta(minutes=1))
    [result] = await services.pipeline.ingest([done])

    # Then the event applies to the case (one version more) and its state wins over the requested one
    assert result.status.value == "APPLIED"
    case = (await gql(CASE, {"id": CASE_ID}))["data"]["case"]
    assert (case["version"], case["tasks"]) == (3, [{"id": "T-1", "state": "COMPLETED", "assignee": "jan.wisniewski"}])
    # And the history shows each step, the employee's with him as the actor
    assert [e["node"] for e in case["history"]["edges"]] == [
        {"kind": "TASK_COMPLETED", "actor": {"type": "SYSTEM", "id": "tests/bpms", "name": None}, "channel": None,
         "summary": "Task completed: T-1"},
        {"kind": "TASK_COMPLETION_REQUESTED", "actor": {"type": "USER", "id": JAN_ID, "name": "jan.wisniewski"},
         "channel": "BACK_OFFICE", "summary": "Task completion requested: T-1"},
        {"kind": "TASK_CLAIMED", "actor": {"type": "USER", "id": JAN_ID, "name": "jan.wisniewski"},
         "channel": "BACK_OFFICE", "summary": "Task claimed: T-1 by jan.wisniewski"},
        *OPEN_HISTORY,
    ]
    # And a completed task is no longer claimed, released or completed: CONFLICT, nothing sent
    assert error_of(await gql(UNCLAIM, {"id": "T-1"}, headers=JAN)) == {
        "code": "CONFLICT", "assignee": "jan.wisniewski", "state": "COMPLETED"}
    assert len(await commands(services, client)) == 2


async def test_claims_leave_the_case_version_alone_and_an_engine_event_still_applies(
    gql: Any, services: Any, story: CaseStory,
) -> None:
    # When Jan claims T-1 and releases it, and Olga claims it, while the engine moves the case on
    await gql(CLAIM, {"id": "T-1"}, headers=JAN)
    await gql(UNCLAIM, {"id": "T-1"}, headers=JAN)
    story.add("case.status_changed", {"status": "IN_PROGRESS", "stage": "ANALYSIS"})
    claimed, [result] = await asyncio.gather(gql(CLAIM, {"id": "T-1"}, headers=OLGA),
                                            services.pipeline.ingest(story.events[-1:]))

    # Then the case is at version 3 (the engine's event alone), and Olga holds the task
    assert claimed == {"data": {"claimTask": task(assignee="olga.nowak")}}
    assert result.status.value == "APPLIED"
    case = (await gql(CASE, {"id": CASE_ID}))["data"]["case"]
    assert (case["version"], case["tasks"]) == (3, [{"id": "T-1", "state": "CREATED", "assignee": "olga.nowak"}])


async def test_the_audit_names_the_case_and_the_old_and_new_holder(
    gql: Any, services: Any, story: CaseStory,
) -> None:
    await gql(CLAIM, {"id": "T-1"}, headers=JAN)
    await gql(CLAIM, {"id": "T-1"}, headers=OLGA)

    trail = (await gql(TRAIL, {"caseId": CASE_ID}, headers=AUDITOR))["data"]["auditTrail"]["edges"]
    assert [e["node"] for e in trail[:2]] == [
        {"actorName": "olga.nowak", "action": "WRITE", "operation": "claimTask", "caseIds": [CASE_ID],
         "outcome": "error", "changes": []},
        {"actorName": "jan.wisniewski", "action": "WRITE", "operation": "claimTask", "caseIds": [CASE_ID],
         "outcome": "ok", "changes": [
             {"caseId": CASE_ID, "field": "tasks[T-1].assignee", "old": None, "new": "jan.wisniewski"}]},
    ]


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a change staged counts as left behind at once, so the sweep takes it without a sleep."""
    monkeypatch.setattr(staging_module, "ABANDONED_AFTER", timedelta(milliseconds=-1))


async def test_a_change_whose_writer_stopped_before_relaying_is_sent_once_by_the_relay_loop(
    gql: Any, services: Any, client: TestClient, story: CaseStory, no_waiting: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a claim whose process stopped right after its write (nothing relayed)
    with monkeypatch.context() as stopped:
        stopped.setattr(services.staging, "relay_records", _relay_nothing)
        assert (await gql(CLAIM, {"id": "T-1"}, headers=JAN))["data"] == {"claimTask": task(assignee="jan.wisniewski")}
    assert await commands(services, client) == []

    # When the relay loop passes twice
    await services.staging.sweep()
    await services.staging.sweep()

    # Then the command went out once and the history row is there once
    assert await commands(services, client) == [assignment_changed("jan.wisniewski", "jan.wisniewski")]
    history = (await gql(CASE, {"id": CASE_ID}))["data"]["case"]["history"]["edges"]
    assert [e["node"]["kind"] for e in history] == ["TASK_CLAIMED", "TASK_CREATED", "CASE_CREATED"]


async def _relay_nothing(store: Any, rows: Any) -> None:
    return None
