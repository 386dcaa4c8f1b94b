"""`myNotifications` over WebSocket (graphql-transport-ws) with real tokens: what concerns the signed-in employee.

A task assigned to me (by a manager, or by the engine), a change of a task I hold, an incident in a case where I
hold an open task — each told to me alone, within my row scope; my own claim is not news to me. Claims reach the
feed (and every instance's response cache) as `case.task_changed` on `case-updates`.

"Nothing was pushed" is shown the way a client sees it: the next frame to arrive is the later, expected one.
"""
from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from consumers.kafka_updates import UpdatesListener
from consumers.publication import PublishedRecordChange, PublishedState
from settings import Settings
from tests.factories import BASE_TIME, CaseStory, bearer, case_created_data, incident_data, task_data
from tests.panel_sessions import panel_headers
from tests.live import BusWatch, next_frame, signed_in_socket, subscribe

NOTIFICATIONS = "subscription { myNotifications { id kind caseId taskId incidentId summary at } }"
# For pushes caused by a person's call now: their id is drawn then and their time is the call's.
NOTIFICATIONS_UNTIMED = "subscription { myNotifications { kind caseId taskId incidentId summary } }"
CASE_UPDATED = "subscription ($id: ID!) { caseUpdated(id: $id) { id version tasks { id assignee } } }"
ASSIGN = "mutation ($id: ID!, $to: String!) { assignTask(taskId: $id, assignee: $to) { id assignee } }"
CLAIM = "mutation ($id: ID!) { claimTask(taskId: $id) { id assignee } }"
UNCLAIM = "mutation ($id: ID!) { unclaimTask(taskId: $id) { id assignee } }"
TRAIL = """{ auditTrail(first: 50) { edges { node { actorName operation caseIds customerIds outcome } } } }"""

JAN = bearer(username="jan.wisniewski", roles=("back-office", "case-reader"), groups=("/bank/back-office",),
             channel="BACK_OFFICE")
OLGA = bearer(username="olga.nowak", roles=("back-office", "case-reader"), groups=("back-office",),
              channel="BACK_OFFICE")
MARIA = bearer(username="maria.wojcik", roles=("team-manager", "case-reader"), groups=("/branches/KRK-01",),
               channel="BRANCH", branch="KRK-01")
# Olga's colleague in Warsaw: the same roles, but a token for branch WAW-01.
PIOTR = bearer(username="piotr.zielinski", roles=("back-office", "case-reader"), groups=("/bank/back-office",),
               channel="BACK_OFFICE", branch="WAW-01")
AUDITOR = bearer(username="tomasz.kaminski", roles=("auditor",))


def story(case_id: str, *, branch: str = "KRK-01", customer: str = "CUST-1") -> CaseStory:
    """A case with one open task `<case>-T1`, offered to back-office and held by nobody (events 1 and 2)."""
    data = case_created_data(branch=branch, customer={"id": customer, "name": "Anna Kowalska",
                                                      "pesel": "85031207819", "segment": "RETAIL"})
    return CaseStory(case_id).add("case.created", data).add("case.task_created", task_data(f"{case_id}-T1"))


def pushed(operation_id: str, notification: dict[str, Any]) -> dict[str, Any]:
    return {"id": operation_id, "type": "next", "payload": {"data": {"myNotifications": notification}}}


def notice(kind: str, case_id: str, summary: str, *, task_id: str | None = None,
           incident_id: str | None = None, **stamped: Any) -> dict[str, Any]:
    """A notification as the client reads it; `stamped` adds `id` and `at` for pushes the engine caused."""
    return {**stamped, "kind": kind, "caseId": case_id, "taskId": task_id, "incidentId": incident_id,
            "summary": summary}


async def gql(client: TestClient, query: str, variables: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return await response.json()


async def test_a_task_assigned_by_a_manager_is_told_to_the_assignee_alone(
    client: TestClient, services: Any, bus_watch: BusWatch,
) -> None:
    # Given a case with two open tasks, and Jan and Olga listening
    opened = story("CASE-1").add("case.task_created", task_data("CASE-1-T2", name="Order valuation"))
    await services.pipeline.ingest(opened.events)
    async with signed_in_socket(client, JAN) as jan, signed_in_socket(client, OLGA) as olga:
        await subscribe(jan, "jan", NOTIFICATIONS_UNTIMED)
        await subscribe(olga, "olga", NOTIFICATIONS_UNTIMED)
        await bus_watch.until_active(2)

        # When Maria, a team manager, gives T1 to Jan, then T2 to Olga
        assert await gql(client, ASSIGN, {"id": "CASE-1-T1", "to": "jan.wisniewski"}, MARIA) == {
            "data": {"assignTask": {"id": "CASE-1-T1", "assignee": "jan.wisniewski"}}}
        assert await gql(client, ASSIGN, {"id": "CASE-1-T2", "to": "olga.nowak"}, MARIA) == {
            "data": {"assignTask": {"id": "CASE-1-T2", "assignee": "olga.nowak"}}}

        # Then each hears of their own task only: Olga's first push is T2, not Jan's T1
        assert await next_frame(jan) == pushed("jan", notice(
            "TASK_ASSIGNED", "CASE-1", "Task assigned to you: Verify income documents by maria.wojcik",
            task_id="CASE-1-T1"))
        assert await next_frame(olga) == pushed("olga", notice(
            "TASK_ASSIGNED", "CASE-1", "Task assigned to you: Order valuation by maria.wojcik", task_id="CASE-1-T2"))

        # And when Maria releases Jan's task, Jan hears it is no longer his
        await gql(client, UNCLAIM, {"id": "CASE-1-T1"}, MARIA)
        assert await next_frame(jan) == pushed("jan", notice(
            "TASK_CHANGED", "CASE-1", "Task Verify income documents is no longer yours: released by maria.wojcik",
            task_id="CASE-1-T1"))

    # And each push is on record, for the person it was sent to, naming the case it showed
    trail = (await gql(client, TRAIL, {}, AUDITOR))["data"]["auditTrail"]["edges"]
    pushes = [e["node"] for e in trail if e["node"]["operation"] == "myNotifications"]
    assert sorted(pushes, key=lambda p: p["actorName"]) == [
        {"actorName": "jan.wisniewski", "operation": "myNotifications", "caseIds": ["CASE-1"],
         "customerIds": ["CUST-1"], "outcome": "ok"},
        {"actorName": "jan.wisniewski", "operation": "myNotifications", "caseIds": ["CASE-1"],
         "customerIds": ["CUST-1"], "outcome": "ok"},
        {"actorName": "olga.nowak", "operation": "myNotifications", "caseIds": ["CASE-1"],
         "customerIds": ["CUST-1"], "outcome": "ok"},
    ]


async def test_the_engine_changing_my_task_is_told_but_my_own_claim_is_not(
    client: TestClient, services: Any, bus_watch: BusWatch,
) -> None:
    # Given Jan listening to his notifications
    opened = story("CASE-1")
    await services.pipeline.ingest(opened.events)
    async with signed_in_socket(client, JAN) as jan:
        await subscribe(jan, "n", NOTIFICATIONS)
        await bus_watch.until_active(1)

        # When he claims T1 himself, and the engine then moves its due date, completes it, and gives him a new one
        assert (await gql(client, CLAIM, {"id": "CASE-1-T1"}, JAN))["data"] == {
            "claimTask": {"id": "CASE-1-T1", "assignee": "jan.wisniewski"}}
        opened.add("case.task_updated", {"task": {"id": "CASE-1-T1", "dueAt": "2026-11-25T16:00:00+00:00"}})
        opened.add("case.task_completed", {"task": {"id": "CASE-1-T1"}})
        opened.add("case.task_created", task_data("CASE-1-T2", name="Sign the agreement", assignee="jan.wisniewski",
                                                  state="ASSIGNED"))
        for engine_event in opened.events[2:]:
            await services.pipeline.ingest([engine_event])

        # Then the first push is the engine's update (the claim was his own doing), then the completion, then the
        # new task — each with the id and time of the engine's event
        assert [await next_frame(jan) for _ in range(3)] == [
            pushed("n", notice("TASK_CHANGED", "CASE-1", "Your task changed: Verify income documents (CREATED)",
                               task_id="CASE-1-T1", id="CASE-1-e003", at="2026-11-21T10:30:00+00:00")),
            pushed("n", notice("TASK_CHANGED", "CASE-1", "Your task changed: Verify income documents (COMPLETED)",
                               task_id="CASE-1-T1", id="CASE-1-e004", at="2026-11-21T10:40:00+00:00")),
            pushed("n", notice("TASK_ASSIGNED", "CASE-1", "Task assigned to you: Sign the agreement",
                               task_id="CASE-1-T2", id="CASE-1-e005", at="2026-11-21T10:50:00+00:00")),
        ]


async def test_an_incident_is_told_to_whoever_holds_an_open_task_in_its_case(
    client: TestClient, services: Any, bus_watch: BusWatch,
) -> None:
    # Given Jan holding the task of CASE-1 and Olga the task of CASE-2 (both before they subscribe)
    first, second = story("CASE-1"), story("CASE-2")
    await services.pipeline.ingest([*first.events, *second.events])
    await gql(client, CLAIM, {"id": "CASE-1-T1"}, JAN)
    await gql(client, CLAIM, {"id": "CASE-2-T1"}, OLGA)
    async with signed_in_socket(client, JAN) as jan, signed_in_socket(client, OLGA) as olga:
        await subscribe(jan, "jan", NOTIFICATIONS)
        await subscribe(olga, "olga", NOTIFICATIONS)
        await bus_watch.until_active(2)

        # When an incident is raised in CASE-1, then one in CASE-2
        first.add("case.incident_raised", incident_data("I-1", message="Credit bureau timeout"))
        second.add("case.incident_raised", incident_data("I-2", message="Valuation service down"))
        await services.pipeline.ingest([first.events[-1]])
        await services.pipeline.ingest([second.events[-1]])

        # Then Jan hears of CASE-1's, and Olga, who holds nothing in CASE-1, only of CASE-2's
        assert await next_frame(jan) == pushed("jan", notice(
            "INCIDENT_RAISED", "CASE-1", "Incident: Credit bureau timeout", incident_id="I-1",
            id="CASE-1-e003", at="2026-11-21T10:30:00+00:00"))
        assert await next_frame(olga) == pushed("olga", notice(
            "INCIDENT_RAISED", "CASE-2", "Incident: Valuation service down", incident_id="I-2",
            id="CASE-2-e003", at="2026-11-21T10:30:00+00:00"))

        # And the same state delivered again (case-updates is at-least-once) is not told twice: Jan's next push is
        # the next incident
        services.bus.deliver(PublishedState(_state_of_incident(first), "NEW"))
        first.add("case.incident_raised", incident_data("I-3", message="Scoring timeout"))
        await services.pipeline.ingest([first.events[-1]])
        frame = await next_frame(jan)
        assert frame["payload"]["data"]["myNotifications"]["incidentId"] == "I-3"


def _state_of_incident(case: CaseStory) -> dict[str, Any]:
    """A redelivered copy of the state CASE-1's I-1 published (version 3), as an at-least-once broker may repeat it."""
    return {"id": case.case_id, "version": 3, "caseType": "MORTGAGE", "branch": "KRK-01", "customerId": "CUST-1",
            "tasks": [{"id": "CASE-1-T1", "assignee": "jan.wisniewski", "state": "CREATED"}],
            "historyAdded": [{"id": "CASE-1-e003", "kind": "INCIDENT_RAISED", "summary": "Incident: Credit bureau timeout",
                              "details": {"incidentId": "I-1"}, "at": BASE_TIME}]}


async def test_a_case_outside_my_row_scope_tells_me_nothing(
    client: TestClient, services: Any, bus_watch: BusWatch,
) -> None:
    # Given Piotr, whose token is for branch WAW-01, listening
    kraków, warsaw = story("CASE-KRK"), story("CASE-WAW", branch="WAW-01")
    await services.pipeline.ingest([*kraków.events, *warsaw.events])
    async with signed_in_socket(client, PIOTR) as piotr:
        await subscribe(piotr, "n", NOTIFICATIONS)
        await bus_watch.until_active(1)

        # When the engine gives him a task in a Kraków case (outside his scope), then one in a Warsaw case
        kraków.add("case.task_updated", {"task": {"id": "CASE-KRK-T1", "assignee": "piotr.zielinski"}})
        warsaw.add("case.task_updated", {"task": {"id": "CASE-WAW-T1", "assignee": "piotr.zielinski"}})
        await services.pipeline.ingest([kraków.events[-1]])
        await services.pipeline.ingest([warsaw.events[-1]])

        # Then only the Warsaw one is pushed
        assert await next_frame(piotr) == pushed("n", notice(
            "TASK_ASSIGNED", "CASE-WAW", "Task assigned to you: Verify income documents", task_id="CASE-WAW-T1",
            id="CASE-WAW-e003", at="2026-11-21T10:30:00+00:00"))


@pytest.mark.parametrize("caller", ["system", "panel"])
async def test_a_system_or_panel_token_is_refused(
    client: TestClient, services: Any, bus_watch: BusWatch, caller: str,
) -> None:
    # A system token with a case reader's role holds no tasks; a panel token has no roles at all
    headers = (bearer(username="bpm-engine", roles=("case-reader",), system=True) if caller == "system"
               else await panel_headers(services, "CASE-1", "P-1"))
    async with signed_in_socket(client, headers) as ws:
        await subscribe(ws, "n", NOTIFICATIONS)
        frame = await next_frame(ws)

    # Then FORBIDDEN, and nothing listens: the panel token fails the operation policy before the operation runs
    # (an `error` frame), the system token in the resolver (a `next` frame with the error)
    if caller == "system":
        assert frame == {"id": "n", "type": "next", "payload": {"data": None, "errors": [
            {"message": "only employees receive notifications",
             "extensions": {"code": "FORBIDDEN"}}]}}
    else:
        assert frame == {"id": "n", "type": "error", "payload": [
            {"message": "myNotifications is not available to a Customer Panel session",
             "locations": [{"line": 1, "column": 16}], "path": ["myNotifications"], "extensions": {"code": "FORBIDDEN"}}]}
    assert bus_watch.active == 0


async def test_a_claim_reaches_case_feeds_as_nothing_and_the_next_state_shows_it(
    client: TestClient, services: Any, bus_watch: BusWatch,
) -> None:
    """`case.task_changed` travels the same bus: caseUpdated must neither break on it nor push it."""
    opened = story("CASE-1")
    await services.pipeline.ingest(opened.events)
    async with signed_in_socket(client, OLGA) as ws:
        await subscribe(ws, "c", CASE_UPDATED, {"id": "CASE-1"})
        await bus_watch.until_active(1)

        await gql(client, CLAIM, {"id": "CASE-1-T1"}, JAN)
        opened.add("case.status_changed", {"status": "IN_PROGRESS"})
        await services.pipeline.ingest([opened.events[-1]])

        assert await next_frame(ws) == {"id": "c", "type": "next", "payload": {"data": {"caseUpdated": {
            "id": "CASE-1", "version": 3, "tasks": [{"id": "CASE-1-T1", "assignee": "jan.wisniewski"}]}}}}
    assert [e["data"]["change"] for e in await services.outbox.sent("updates", "case.task_changed")] == [
        "TASK_CLAIMED"]


def test_the_case_updates_listener_delivers_task_changes_to_the_bus(services: Any) -> None:
    """Kafka mode, unit level: a `case.task_changed` message on `case-updates` reaches the subscriptions that take
    record changes and the bus's listeners, not the case feeds; an unknown type is skipped."""
    listener = UpdatesListener(Settings(), services.bus)
    heard: list[Any] = []
    services.bus.add_listener(heard.append)
    value = orjson.dumps({
        "specversion": "1.0", "id": "chg-1", "source": "case-repository", "type": "case.task_changed",
        "subject": "CASE-1", "time": "2026-11-21T12:00:00Z", "datacontenttype": "application/json",
        "data": {"caseId": "CASE-1", "customerId": "CUST-1", "caseType": "MORTGAGE", "branch": "KRK-01",
                 "restricted": None, "task": {"id": "T-1", "name": "Verify income documents", "assignee": "olga.nowak",
                                              "state": "CREATED", "dueAt": "2026-11-25T16:00:00Z"},
                 "change": "TASK_ASSIGNED", "previousAssignee": None, "by": "maria.wojcik"}})
    with services.bus.subscribe(None, record_changes=True) as everything, services.bus.subscribe("CASE-1") as states:
        listener._deliver(value)
        listener._deliver(orjson.dumps({"id": "x", "type": "case.unknown", "data": {"caseId": "CASE-1"}}))

        [change] = [everything.get_nowait() for _ in range(everything.qsize())]
        assert states.empty()
    assert isinstance(change, PublishedRecordChange) and heard == [change]
    assert (change.id, change.type, change.case_id, change.customer_id, change.at) == (
        "chg-1", "case.task_changed", "CASE-1", "CUST-1", BASE_TIME.replace(hour=12))
    assert change.case == {"id": "CASE-1", "customerId": "CUST-1", "caseType": "MORTGAGE", "branch": "KRK-01",
                           "restricted": None}
    assert change.data["task"]["dueAt"] == BASE_TIME.replace(day=25, hour=16)
    assert change.data["by"] == "maria.wojcik"
