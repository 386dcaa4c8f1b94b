"""Live updates over WebSocket (graphql-transport-ws), fed by the pipeline through the updates bus."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from strawberry.types.execution import PreExecutionError

from consumers.apply import public_state
from consumers.publication import PublishedState
from context import Context
from schema.build import build_schema
from stores.case_scope import EVERYTHING
from tests.factories import BASE_TIME, bearer, closed, created, status_changed, task_created, token, updated
from tests.live import TIMEOUT, BusWatch, held_bytes_growth, next_frame, signed_in_socket, subscribe

OPERATIONS = Path(__file__).parents[1] / "graphql" / "operations"
CASE_UPDATED = (OPERATIONS / "case_updated.graphql").read_text()
STATUS_CHANGED = (OPERATIONS / "case_status_changed.graphql").read_text()


def pushed(operation_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": operation_id, "type": "next", "payload": {"data": data}}


def at(minutes: int) -> Any:
    return BASE_TIME.replace(hour=12, minute=minutes)


async def test_case_updated_pushes_each_applied_change_of_that_case_only(
    client: TestClient, services: Any, bus_watch: BusWatch,
) -> None:
    ingest = services.pipeline.ingest
    # given two cases, and a subscriber to the first
    await ingest([created("CASE-1", time=at(0)), created("CASE-2", time=at(0))])
    async with signed_in_socket(client, bearer()) as ws:
        await subscribe(ws, "live-1", CASE_UPDATED, {"id": "CASE-1"})
        await bus_watch.until_active(1)

        # when the other case changes, then this one: only this one's change is pushed
        await ingest([status_changed("CASE-2", "IN_PROGRESS", "ANALYSIS", time=at(1))])
        await ingest([status_changed("CASE-1", "IN_PROGRESS", "ANALYSIS", time=at(2), event_id="c1-status")])
        assert await next_frame(ws) == pushed("live-1", {"caseUpdated": {
            "id": "CASE-1", "status": "IN_PROGRESS", "stage": "ANALYSIS", "version": 2,
            "updatedAt": at(2).isoformat(), "tasks": [], "incidents": []}})

        await ingest([task_created("CASE-2", "T-2", time=at(3))])
        await ingest([task_created("CASE-1", "T-1", time=at(4), assignee="u-olga", state="ASSIGNED")])
        assert await next_frame(ws) == pushed("live-1", {"caseUpdated": {
            "id": "CASE-1", "status": "IN_PROGRESS", "stage": "ANALYSIS", "version": 3,
            "updatedAt": at(4).isoformat(), "tasks": [{"id": "T-1", "state": "ASSIGNED", "assignee": "u-olga"}],
            "incidents": []}})

        # a redelivered event changes nothing, so nothing is pushed before the next real change
        await ingest([status_changed("CASE-1", "IN_PROGRESS", "ANALYSIS", time=at(2), event_id="c1-status")])
        await ingest([closed("CASE-1", "APPROVED", at=at(5), time=at(5))])
        assert await next_frame(ws) == pushed("live-1", {"caseUpdated": {
            "id": "CASE-1", "status": "CLOSED", "stage": "ANALYSIS", "version": 4,
            "updatedAt": at(5).isoformat(), "tasks": [{"id": "T-1", "state": "ASSIGNED", "assignee": "u-olga"}],
            "incidents": []}})

        # when the client completes the subscription, the server lets go of it
        await ws.send_json({"id": "live-1", "type": "complete"})
        await bus_watch.until_active(0)


async def test_case_status_changed_pushes_only_status_changes_matching_the_filter(
    client: TestClient, services: Any, bus_watch: BusWatch,
) -> None:
    ingest = services.pipeline.ingest
    piotr = {"id": "CUST-2", "name": "Piotr Nowak"}
    # given Anna's mortgage and cash loan, and Piotr's mortgage
    await ingest([
        created("CASE-M1", time=at(0)),
        created("CASE-L1", time=at(0), data={"caseType": "CASH_LOAN", "title": "Cash loan"}),
        created("CASE-M2", time=at(0), data={"customer": piotr}),
    ])
    async with signed_in_socket(client, bearer()) as ws:
        # one socket, two subscriptions: Anna's mortgages, and every status change
        await subscribe(ws, "anna-mortgages", STATUS_CHANGED, {"customerId": "CUST-1", "caseType": "MORTGAGE"})
        await subscribe(ws, "all", STATUS_CHANGED, {})
        await bus_watch.until_active(2)

        # when a status changes on another customer's case, on another case type, and nothing but the status
        # changes on Anna's mortgage
        await ingest([status_changed("CASE-M2", "DECISION", "DECISION", time=at(1))])
        await ingest([status_changed("CASE-L1", "DECISION", "DECISION", time=at(2))])
        await ingest([updated("CASE-M1", {"title": "Mortgage for a house"}, time=at(3))])
        await ingest([task_created("CASE-M1", "T-1", time=at(4))])
        await ingest([status_changed("CASE-M1", "IN_PROGRESS", "ANALYSIS", time=at(5))])

        # then the filtered feed sees only the last one, the unfiltered feed every status change, in order
        messages = [await next_frame(ws) for _ in range(4)]
        change = {"caseId": "CASE-M1", "customerId": "CUST-1", "caseType": "MORTGAGE", "status": "IN_PROGRESS",
                  "previousStatus": "NEW", "stage": "ANALYSIS", "version": 4, "at": at(5).isoformat()}
        assert [m for m in messages if m["id"] == "anna-mortgages"] == [
            pushed("anna-mortgages", {"caseStatusChanged": change})]
        assert [m["payload"]["data"]["caseStatusChanged"]["caseId"] for m in messages if m["id"] == "all"] == [
            "CASE-M2", "CASE-L1", "CASE-M1"]

        # and a new matching case, and closing, are status changes too
        await ingest([created("CASE-M3", time=at(6))])
        await ingest([closed("CASE-M1", "REJECTED", at=at(7), time=at(7))])
        messages = [await next_frame(ws) for _ in range(4)]
        assert [m for m in messages if m["id"] == "anna-mortgages"] == [
            pushed("anna-mortgages", {"caseStatusChanged": {
                "caseId": "CASE-M3", "customerId": "CUST-1", "caseType": "MORTGAGE", "status": "NEW",
                "previousStatus": None, "stage": "APPLICATION", "version": 1, "at": at(6).isoformat()}}),
            pushed("anna-mortgages", {"caseStatusChanged": {
                **change, "status": "CLOSED", "previousStatus": "IN_PROGRESS", "version": 5,
                "at": at(7).isoformat()}}),
        ]


AUDITOR = bearer(username="tomasz.kaminski", roles=("auditor",))
TRAIL = "{ auditTrail(first: 50) { edges { node { actorName operation caseIds } } } }"


async def test_a_push_s_audit_record_names_only_the_case_it_showed(
    client: TestClient, services: Any, gql: Any, bus_watch: BusWatch,
) -> None:
    await services.pipeline.ingest([created("CASE-M1", time=at(0)),
                                    created("CASE-M2", time=at(0), data={"customer": {"id": "CUST-2", "name": "P"}})])
    async with signed_in_socket(client, bearer(username="ewa.filter")) as ws:
        await subscribe(ws, "anna", STATUS_CHANGED, {"customerId": "CUST-1"})
        await bus_watch.until_active(1)

        # When Piotr's case changes status (dropped by the filter), then Anna's (pushed)
        await services.pipeline.ingest([status_changed("CASE-M2", "DECISION", "DECISION", time=at(1))])
        await services.pipeline.ingest([status_changed("CASE-M1", "DECISION", "DECISION", time=at(2))])
        frame = await next_frame(ws)
        assert frame["payload"]["data"]["caseStatusChanged"]["caseId"] == "CASE-M1"

    # Then the only push on record names Anna's case alone: the dropped change was never shown
    trail = (await gql(TRAIL, headers=AUDITOR))["data"]["auditTrail"]["edges"]
    assert [e["node"] for e in trail if e["node"]["actorName"] == "ewa.filter"] == [
        {"actorName": "ewa.filter", "operation": "CaseStatusChanged", "caseIds": ["CASE-M1"]}]


async def test_closing_the_socket_ends_its_subscriptions(
    client: TestClient, services: Any, bus_watch: BusWatch,
) -> None:
    async with signed_in_socket(client, bearer()) as ws:
        await subscribe(ws, "1", CASE_UPDATED, {"id": "CASE-1"})
        await subscribe(ws, "2", STATUS_CHANGED, {})
        await bus_watch.until_active(2)

    await bus_watch.until_active(0)


async def test_messages_are_text_frames(client: TestClient) -> None:
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": bearer()})

        message = await ws.receive(timeout=TIMEOUT)

    assert (message.type, message.data) == (WSMsgType.TEXT, '{"type":"connection_ack"}')


MEMORY_PROBE = """
subscription($id: ID!) {
  caseUpdated(id: $id) {
    id version status customer { id name } tasks { id state }
    history(first: 2) { edges { node { id actor { type id } } } }
  }
}"""


class PushRecords:
    """Stands in for the audit store's append: counts each push's record without keeping it, so the memory
    measured is the subscription's own, not 3,000 audit records held by the in-memory store."""

    def __init__(self) -> None:
        self.count = 0

    async def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        return entry


async def test_a_long_subscription_keeps_memory_flat(
    services: Any, bus_watch: BusWatch, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """graphql-core memoises per event executor; build.FreshPerEventExecutor must keep that from piling up."""
    await services.pipeline.ingest([created("CASE-1"), task_created("CASE-1", "T-1")])
    records = PushRecords()
    monkeypatch.setattr(services.audit, "append", records.append)
    state = public_state(await services.cases.get("CASE-1", scope=EVERYTHING))
    context = Context(services=services)
    context.sign_in(await services.verifier.verify(token()))
    stream = await build_schema().subscribe(MEMORY_PROBE, {"id": "CASE-1"}, context)
    assert not isinstance(stream, PreExecutionError), stream

    async def push(version: int) -> None:
        services.bus.deliver(PublishedState({**state, "version": version}, state["status"]))
        result = await anext(stream)
        assert result.errors is None and result.data["caseUpdated"]["version"] == version

    # the generator attaches to the bus only once it is first awaited
    first = asyncio.ensure_future(anext(stream))
    await bus_watch.until_active(1)
    services.bus.deliver(PublishedState({**state, "version": 1}, state["status"]))
    assert (await first).data["caseUpdated"]["version"] == 1

    try:
        growth = await held_bytes_growth(push, 2, 999, 2000)
    finally:
        await stream.aclose()

    # Measured: ~2.4 MB per 1,000 pushes without the fix, a few kB with it.
    assert growth < 256 * 1024, f"grew {growth} bytes over 2,000 pushes"
    assert records.count == 3000  # every push was still put on record
