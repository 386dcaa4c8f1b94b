"""Verified retry of incidents over HTTP with real tokens: retryIncident and what the engine answers (CONTRACT §5).

The incident shows what really happened: PENDING_RETRY until the engine resolves it (RESOLVED) or raises it again
(FAILED_AGAIN, with its new message and one more attempt), TIMED_OUT when no answer comes in time. A double click
sends one command; a refused retry changes nothing and sends nothing.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from settings import Settings
from tests.factories import (PUBLISH_CASE_EVENT, CaseStory, bearer, case_created_data, envelope, incident_data,
                             publish_input, task_data)

CASE_ID = "CASE-1"
JAN = bearer(username="jan.wisniewski", roles=("back-office", "case-reader"), groups=("/bank/back-office",),
             channel="BACK_OFFICE")
JAN_ID = "4b65a200-3da6-510d-82c0-450377955d84"
MARIA = bearer(username="maria.wojcik", roles=("team-manager", "case-reader"), channel="BRANCH")
ADVISOR = bearer(username="anna.nowak", roles=("case-reader", "advisor"), channel="BRANCH")
# Back office too, but the case is in another branch than the token's.
WARSAW = bearer(username="piotr.zielinski", roles=("back-office", "case-reader"), channel="BACK_OFFICE",
                branch="WAW-01")

FIELDS = "id caseId kind message service retryable state attempts retryState lastRetryBy"
RETRY = f"mutation ($id: ID!) {{ retryIncident(incidentId: $id) {{ {FIELDS} }} }}"
CASE = f"""query ($id: ID!) {{ case(id: $id) {{ hasOpenIncident incidents {{ {FIELDS} lastRetryAt }}
  history(first: 1) {{ edges {{ node {{ kind actor {{ type id name }} channel summary details }} }} }} }} }}"""


def incident(**changes: Any) -> dict[str, Any]:
    """I-1 as the dashboard shows it; unchanged fields as the engine raised it."""
    return {"id": "I-1", "caseId": CASE_ID, "kind": "SERVICE_TIMEOUT", "message": "Credit bureau timeout",
            "service": "bik-gateway", "retryable": True, "state": "OPEN", "attempts": 1, "retryState": "NONE",
            "lastRetryBy": None, **changes}


def retry_command(attempt: int) -> dict[str, Any]:
    """`incident.retry_requested` for I-1 without its drawn id and time."""
    return {"specversion": "1.0", "source": "case-repository", "type": "incident.retry_requested",
            "subject": CASE_ID, "datacontenttype": "application/json",
            "data": {"caseId": CASE_ID, "incidentId": "I-1", "service": "bik-gateway",
                     "requestedBy": "jan.wisniewski", "attempt": attempt}}


async def commands(services: Any, client: TestClient) -> list[dict[str, Any]]:
    """What went out on `case-commands` (the dev outbox lists the same), without drawn ids and times."""
    sent = await services.outbox.sent("commands")
    listed = await (await client.get("/dev/commands?type=incident.retry_requested")).json()
    assert [e["id"] for e in listed] == [e["id"] for e in sent]
    return [{k: v for k, v in e.items() if k not in ("id", "time")} for e in sent]


def code_of(answer: dict[str, Any]) -> str:
    [error] = answer["errors"]
    assert answer["data"] is None
    return error["extensions"]["code"]


@pytest.fixture
async def story(services: Any) -> CaseStory:
    """A case with one open, retryable incident I-1 (the credit bureau timed out)."""
    opened = (CaseStory(CASE_ID).add("case.created", case_created_data()).add("case.task_created", task_data("T-1"))
              .add("case.incident_raised", incident_data("I-1")))
    await services.pipeline.ingest(opened.events)
    return opened


async def engine_says(services: Any, story: CaseStory, event_type: str, data: dict[str, Any]) -> None:
    """The engine's next event, sent now (after whatever the test asked of it)."""
    story.at = datetime.now(timezone.utc)
    story.add(event_type, data, minutes=0)
    await services.pipeline.ingest(story.events[-1:])


async def test_a_retry_is_pending_until_the_engine_answers_and_the_engine_is_asked_once(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    # When Jan of the back office asks for a retry
    answer = await gql(RETRY, {"id": "I-1"}, headers=JAN)

    # Then the incident waits for the engine, which is asked for attempt 2
    assert answer == {"data": {"retryIncident": incident(retryState="PENDING_RETRY", lastRetryBy="jan.wisniewski")}}
    assert await commands(services, client) == [retry_command(2)]
    # And the case's history tells who asked, through which channel
    case = (await gql(CASE, {"id": CASE_ID}, headers=JAN))["data"]["case"]
    assert case["incidents"][0]["lastRetryAt"] is not None
    assert case["history"]["edges"][0]["node"] == {
        "kind": "INCIDENT_RETRY_REQUESTED", "actor": {"type": "USER", "id": JAN_ID, "name": "jan.wisniewski"},
        "channel": "BACK_OFFICE", "summary": "Retry requested: I-1 (attempt 2) by jan.wisniewski",
        "details": {"incidentId": "I-1", "attempt": 2}}


async def test_retrying_twice_sends_one_command(gql: Any, services: Any, client: TestClient, story: CaseStory) -> None:
    # When Jan clicks retry, and again while it is pending
    first = await gql(RETRY, {"id": "I-1"}, headers=JAN)
    second = await gql(RETRY, {"id": "I-1"}, headers=JAN)

    # Then both answers show the pending retry, and the engine was asked once
    pending = {"data": {"retryIncident": incident(retryState="PENDING_RETRY", lastRetryBy="jan.wisniewski")}}
    assert (first, second) == (pending, pending)
    assert await commands(services, client) == [retry_command(2)]


async def test_two_clicks_at_the_same_moment_send_one_command(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    answers = await asyncio.gather(*(gql(RETRY, {"id": "I-1"}, headers=JAN) for _ in range(3)))

    pending = {"data": {"retryIncident": incident(retryState="PENDING_RETRY", lastRetryBy="jan.wisniewski")}}
    assert answers == [pending, pending, pending]
    assert await commands(services, client) == [retry_command(2)]


async def test_resolved_only_when_the_engine_reports_it(gql: Any, services: Any, story: CaseStory) -> None:
    await gql(RETRY, {"id": "I-1"}, headers=JAN)

    # When the engine reports the incident resolved
    await engine_says(services, story, "case.incident_resolved", {"incident": {"id": "I-1"}})

    # Then the retry worked, and nothing is open any more
    case = (await gql(CASE, {"id": CASE_ID}, headers=JAN))["data"]["case"]
    [shown] = case["incidents"]
    del shown["lastRetryAt"]
    assert shown == incident(state="RESOLVED", retryState="RESOLVED", lastRetryBy="jan.wisniewski")
    assert case["hasOpenIncident"] is False


async def test_failed_again_when_the_engine_raises_it_again(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    await gql(RETRY, {"id": "I-1"}, headers=JAN)

    # When the engine raises the same incident again, with what went wrong this time
    await engine_says(services, story, "case.incident_raised",
                      incident_data("I-1", message="Credit bureau refused the request: certificate expired"))

    # Then the dashboard shows the failure, not a success, with the new message and one more attempt
    case = (await gql(CASE, {"id": CASE_ID}, headers=JAN))["data"]["case"]
    assert case["incidents"][0]["retryState"] == "FAILED_AGAIN"
    assert case["history"]["edges"][0]["node"]["summary"] == (
        "Incident raised again (attempt 2): Credit bureau refused the request: certificate expired")
    # And a new retry asks for attempt 3
    answer = await gql(RETRY, {"id": "I-1"}, headers=JAN)
    assert answer == {"data": {"retryIncident": incident(
        message="Credit bureau refused the request: certificate expired", attempts=2, retryState="PENDING_RETRY",
        lastRetryBy="jan.wisniewski")}}
    assert await commands(services, client) == [retry_command(2), retry_command(3)]


class TestTimedOut:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(demo_data=False, outbox_relay_seconds=3600.0, incident_retry_timeout_seconds=0.5)

    async def test_timed_out_when_no_answer_comes_in_time_and_a_late_answer_still_counts(
        self, gql: Any, services: Any, client: TestClient, story: CaseStory,
    ) -> None:
        await gql(RETRY, {"id": "I-1"}, headers=JAN)

        # When the engine says nothing for longer than INCIDENT_RETRY_TIMEOUT_SECONDS
        await asyncio.sleep(0.7)

        # Then the incident says so
        case = (await gql(CASE, {"id": CASE_ID}, headers=JAN))["data"]["case"]
        assert case["incidents"][0]["retryState"] == "TIMED_OUT"
        # And a new retry may be asked for: a new request, for the same attempt
        again = await gql(RETRY, {"id": "I-1"}, headers=JAN)
        assert again["data"]["retryIncident"]["retryState"] == "PENDING_RETRY"
        assert await commands(services, client) == [retry_command(2), retry_command(2)]
        sent = await services.outbox.sent("commands")
        assert sent[0]["id"] != sent[1]["id"]
        # And when the engine's answer comes late, it is what the incident shows
        await asyncio.sleep(0.7)
        await engine_says(services, story, "case.incident_resolved", {"incident": {"id": "I-1"}})
        case = (await gql(CASE, {"id": CASE_ID}, headers=JAN))["data"]["case"]
        assert (case["incidents"][0]["state"], case["incidents"][0]["retryState"]) == ("RESOLVED", "RESOLVED")


async def test_an_incident_that_is_not_retryable_is_refused_and_nothing_is_sent(
    gql: Any, services: Any, client: TestClient, story: CaseStory,
) -> None:
    await engine_says(services, story, "case.incident_raised",
                      incident_data("I-2", kind="DATA_ERROR", message="PESEL checksum failed", retryable=False))

    answer = await gql(RETRY, {"id": "I-2"}, headers=JAN)

    assert answer["errors"][0]["message"] == "incident I-2 is not retryable: its cause must be fixed first"
    assert code_of(answer) == "BAD_USER_INPUT"
    assert await commands(services, client) == []


async def test_a_resolved_incident_is_a_conflict(gql: Any, services: Any, client: TestClient,
                                                 story: CaseStory) -> None:
    await engine_says(services, story, "case.incident_resolved", {"incident": {"id": "I-1"}})

    answer = await gql(RETRY, {"id": "I-1"}, headers=JAN)

    assert code_of(answer) == "CONFLICT"
    assert answer["errors"][0]["extensions"]["state"] == "RESOLVED"
    assert await commands(services, client) == []


@pytest.mark.parametrize(("caller", "code"), [
    (ADVISOR, "FORBIDDEN"),  # not a role the policy lets retry
    (WARSAW, "NOT_FOUND"),  # the case is outside the caller's branch
    ({}, "UNAUTHENTICATED"),
])
async def test_only_the_back_office_and_managers_retry_incidents_they_may_see(
    gql: Any, services: Any, client: TestClient, story: CaseStory, caller: dict[str, str], code: str,
) -> None:
    answer = await gql(RETRY, {"id": "I-1"}, headers=caller)

    assert code_of(answer) == code
    assert await commands(services, client) == []
    case = (await gql(CASE, {"id": CASE_ID}, headers=JAN))["data"]["case"]
    assert case["incidents"][0]["retryState"] == "NONE"


async def test_a_manager_may_retry(gql: Any, services: Any, client: TestClient, story: CaseStory) -> None:
    answer = await gql(RETRY, {"id": "I-1"}, headers=MARIA)

    assert answer["data"]["retryIncident"]["lastRetryBy"] == "maria.wojcik"


async def test_an_unknown_incident_is_not_found(gql: Any, story: CaseStory) -> None:
    assert code_of(await gql(RETRY, {"id": "I-404"}, headers=JAN)) == "NOT_FOUND"


async def test_a_retry_on_a_closed_case_is_refused(gql: Any, services: Any, client: TestClient,
                                                   story: CaseStory) -> None:
    await engine_says(services, story, "case.closed", {"outcome": "CANCELLED", "at": "2026-11-21T12:00:00Z"})

    answer = await gql(RETRY, {"id": "I-1"}, headers=JAN)

    assert code_of(answer) == "CONFLICT"
    assert await commands(services, client) == []


async def test_producers_cannot_send_the_repository_s_own_retry_event(gql: Any, story: CaseStory) -> None:
    forged = envelope("case.incident_retry_requested", CASE_ID, {
        "incident": {"id": "I-1"}, "requestedBy": {"id": "x", "name": "mallory"}, "attempt": 2})

    answer = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(forged)})

    assert code_of(answer) == "BAD_USER_INPUT"
    assert "unknown event type 'case.incident_retry_requested'" in answer["errors"][0]["message"]
