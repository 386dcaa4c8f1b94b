"""Shared pushes (edge/fanout.py, edge/outbox.py): one execution per event for every subscriber with the same
document, variables and view; what each subscriber gets is what a subscription of its own gave it."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from auth.dev_tokens import Persona, mint_dev_token
from consumers.apply import public_state
from consumers.publication import PublishedState
from edge import outbox
from settings import Settings
from stores.case_scope import EVERYTHING
from tests.factories import BASE_TIME, bearer, created, status_changed, task_created, token_subject
from tests.live import TIMEOUT, BusWatch, Members, held_bytes_growth, next_frame, signed_in_socket, subscribe

OPERATIONS = Path(__file__).parents[1] / "graphql" / "operations"
CASE_UPDATED = (OPERATIONS / "case_updated.graphql").read_text()
VERSION_ONLY = 'subscription { caseUpdated(id: "CASE-1") { id version } }'
# A push's state carries no PESEL (consumers/publication.py); the customer's cases are read from the store.
PESELS = ("subscription($id: ID!) { caseUpdated(id: $id) { id customer { cases(first: 5) { edges { node { id "
          "participants { pesel } } } } } } }")
TITLES = "subscription($id: ID!) { caseUpdated(id: $id) { version title } }"
MEMORY_PROBE = """
subscription($id: ID!) {
  caseUpdated(id: $id) {
    id version status customer { id name } tasks { id state }
    history(first: 2) { edges { node { id actor { type id } } } }
  }
}"""
OPERATOR = bearer(username="ola.operator")
JAN = bearer(username="jan.operator")


def at(minutes: int) -> Any:
    return BASE_TIME.replace(hour=12, minute=minutes)


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def members() -> Members:
    return Members()


async def nothing_more(ws: ClientWebSocketResponse) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await ws.receive(timeout=0.3)


def pushed(operation_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": operation_id, "type": "next", "payload": {"data": data}}


async def test_subscribers_with_the_same_document_and_view_share_one_execution_and_each_gets_its_own_answer(
    client: TestClient, services: Any, bus_watch: BusWatch, members: Members,
) -> None:
    await services.pipeline.ingest([created("CASE-1", time=at(0))])
    executions = metric("case_repository_push_executions_total")
    async with (signed_in_socket(client, OPERATOR) as ola,
                signed_in_socket(client, bearer(username="jan.operator")) as jan,
                signed_in_socket(client, bearer(username="ewa.reader", roles=("case-reader",))) as ewa,
                signed_in_socket(client, bearer(username="waw.reader", roles=("case-reader",), branch="WAW-02")) as waw):
        # given two operators on the same document (one group), one of them also on a smaller selection, a case
        # reader (another view: no restricted cases), and a reader of another branch than the case's
        await subscribe(ola, "full", CASE_UPDATED, {"id": "CASE-1"})
        await subscribe(ola, "small", VERSION_ONLY)
        await subscribe(jan, "mine", CASE_UPDATED, {"id": "CASE-1"})
        await subscribe(ewa, "live", CASE_UPDATED, {"id": "CASE-1"})
        await subscribe(waw, "live", CASE_UPDATED, {"id": "CASE-1"})
        await members.until(5)
        await bus_watch.until_active(4)  # four groups listen to the bus, not five subscriptions

        # when the case changes
        await services.pipeline.ingest([status_changed("CASE-1", "IN_PROGRESS", "ANALYSIS", time=at(2))])

        # then each subscriber gets what its own subscription shows, under its own subscription id
        case = {"id": "CASE-1", "status": "IN_PROGRESS", "stage": "ANALYSIS", "version": 2,
                "updatedAt": at(2).isoformat(), "tasks": [], "incidents": []}
        assert sorted([await next_frame(ola), await next_frame(ola)], key=lambda f: f["id"]) == [
            pushed("full", {"caseUpdated": case}),
            pushed("small", {"caseUpdated": {"id": "CASE-1", "version": 2}})]
        assert await next_frame(jan) == pushed("mine", {"caseUpdated": case})
        assert await next_frame(ewa) == pushed("live", {"caseUpdated": case})
        # the other branch's reader sees nothing of it, and three selections ran for four subscribers who saw it
        await nothing_more(waw)
        assert metric("case_repository_push_executions_total") - executions == 3

        # and a subscriber that completes leaves its group's other member served
        await jan.send_json({"id": "mine", "type": "complete"})
        await members.until(4)
        await services.pipeline.ingest([task_created("CASE-1", "T-1", time=at(3), assignee="u-olga",
                                                     state="ASSIGNED")])
        later = {**case, "version": 3, "updatedAt": at(3).isoformat(),
                 "tasks": [{"id": "T-1", "state": "ASSIGNED", "assignee": "u-olga"}]}
        frames = [await next_frame(ola), await next_frame(ola)]
        assert [f for f in frames if f["id"] == "full"] == [pushed("full", {"caseUpdated": later})]
        await nothing_more(jan)

    await members.until(0)
    await bus_watch.until_active(0)


async def test_a_masked_and_a_full_pesel_subscriber_in_one_fan_out_each_see_their_own_view(
    client: TestClient, services: Any, bus_watch: BusWatch, members: Members,
) -> None:
    await services.pipeline.ingest([created("CASE-1", time=at(0))])
    back_office = bearer(username="bo.clerk", roles=("back-office", "case-reader"), channel="BACK_OFFICE")
    async with (signed_in_socket(client, back_office) as full, signed_in_socket(client, OPERATOR) as masked):
        await subscribe(full, "1", PESELS, {"id": "CASE-1"})
        await subscribe(masked, "1", PESELS, {"id": "CASE-1"})
        await members.until(2)
        await bus_watch.until_active(2)

        await services.pipeline.ingest([status_changed("CASE-1", "IN_PROGRESS", "ANALYSIS", time=at(1))])

        def seen(pesel: str) -> dict[str, Any]:
            return pushed("1", {"caseUpdated": {"id": "CASE-1", "customer": {"cases": {"edges": [
                {"node": {"id": "CASE-1", "participants": [{"pesel": pesel}]}}]}}}})

        assert await next_frame(full) == seen("85031207819")
        assert await next_frame(masked) == seen("*******7819")


async def test_a_push_to_several_subscribers_is_one_audit_record_naming_every_recipient(
    client: TestClient, services: Any, bus_watch: BusWatch, members: Members,
) -> None:
    await services.pipeline.ingest([created("CASE-1", time=at(0))])
    async with (signed_in_socket(client, OPERATOR) as ola, signed_in_socket(client, OPERATOR) as ola_again,
                signed_in_socket(client, JAN) as jan):
        await subscribe(ola, "a", CASE_UPDATED, {"id": "CASE-1"})
        await subscribe(ola_again, "b", CASE_UPDATED, {"id": "CASE-1"})
        await subscribe(jan, "c", CASE_UPDATED, {"id": "CASE-1"})
        await members.until(3)

        await services.pipeline.ingest([status_changed("CASE-1", "IN_PROGRESS", "ANALYSIS", time=at(1))])
        for ws in (ola, ola_again, jan):
            assert (await next_frame(ws))["type"] == "next"

    page = await services.audit.trail(case_id="CASE-1", first=50)
    pushes = [r for r in page.records if r["operation"] == "CaseUpdated"]
    assert [(r["actor"], r["actorName"], r["caseIds"], r["outcome"]) for r in pushes] == [
        ("subscribers", None, ["CASE-1"], "ok")]
    # the subjects of the tokens, each once
    assert pushes[0]["recipients"] == sorted({token_subject(OPERATOR), token_subject(JAN)}) and len(pushes[0]["recipients"]) == 2


async def test_a_subscriber_whose_token_expires_is_dropped_alone(
    client: TestClient, services: Any, bus_watch: BusWatch, members: Members,
) -> None:
    await services.pipeline.ingest([created("CASE-1", time=at(0))])
    short = mint_dev_token(Settings(), Persona("brief", "short-lived", "brief.caller", ("case-reader", "team-manager",
                                                                                       "system-publisher")),
                           ttl=timedelta(seconds=3))
    async with (signed_in_socket(client, {"Authorization": f"Bearer {short}"}) as brief,
                signed_in_socket(client, OPERATOR) as ola):
        await subscribe(brief, "1", CASE_UPDATED, {"id": "CASE-1"})
        await subscribe(ola, "1", CASE_UPDATED, {"id": "CASE-1"})
        await members.until(2)
        await bus_watch.until_active(1)  # one group: the same view

        # when the short token expires, its subscriber gets what an expiring subscription of its own got
        expiry = [await brief.receive(timeout=TIMEOUT + 5)]
        expiry.append(await brief.receive(timeout=TIMEOUT))
        assert [m.json() for m in expiry] == [
            {"id": "1", "type": "next", "payload": {"data": None, "errors": [{
                "message": "the token expired; subscribe again with a fresh one",
                "extensions": {"code": "UNAUTHENTICATED"}}]}},
            {"id": "1", "type": "complete"}]
        await members.until(1)

        # and the other subscriber of the group is still served
        await services.pipeline.ingest([status_changed("CASE-1", "IN_PROGRESS", "ANALYSIS", time=at(1))])
        assert (await next_frame(ola))["payload"]["data"]["caseUpdated"]["version"] == 2
        await nothing_more(brief)

    records = (await services.audit.trail(case_id=None, first=50)).records
    assert [(r["actorName"], r["outcome"], r.get("recipients"))
            for r in records if r["operation"] == "CaseUpdated"] == [
        ("ola.operator", "ok", [token_subject(OPERATOR)]), ("brief.caller", "denied", None)]


async def fat_states(services: Any) -> tuple[dict[str, Any], str]:
    await services.pipeline.ingest([created("CASE-1", time=at(0))])
    state = public_state(await services.cases.get("CASE-1", scope=EVERYTHING))
    return state, "x" * 64 * 1024  # frames this size fill a stalled client's buffers within a few dozen pushes


async def test_a_client_that_stops_reading_delays_no_one_and_ends_with_the_last_state(
    client: TestClient, services: Any, bus_watch: BusWatch, members: Members,
) -> None:
    state, title = await fat_states(services)
    coalesced = metric("case_repository_push_coalesced_total")
    async with (signed_in_socket(client, OPERATOR) as stalled, signed_in_socket(client, OPERATOR) as reader):
        await subscribe(stalled, "s", TITLES, {"id": "CASE-1"})
        await subscribe(reader, "r", TITLES, {"id": "CASE-1"})
        await members.until(2)
        await bus_watch.until_active(1)

        # when 300 states go out while one client reads nothing, the other gets each of them as it comes
        for version in range(2, 302):
            services.bus.deliver(PublishedState({**state, "version": version, "title": title}, state["status"]))
            assert await next_frame(reader) == pushed("r", {"caseUpdated": {"version": version, "title": title}})

        # then the stalled client's waiting pushes were coalesced, and once it reads again it ends with the last
        # state, in order, having skipped some in between
        assert metric("case_repository_push_coalesced_total") > coalesced
        versions = [(await next_frame(stalled))["payload"]["data"]["caseUpdated"]["version"]]
        while versions[-1] != 301:
            versions.append((await next_frame(stalled))["payload"]["data"]["caseUpdated"]["version"])
        assert versions == sorted(set(versions)) and len(versions) < 300
        await nothing_more(stalled)


async def test_a_client_that_stays_behind_is_closed_with_a_reason(
    client: TestClient, services: Any, bus_watch: BusWatch, members: Members, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox, "SLOW_SOCKET_SECONDS", 0.2)
    state, title = await fat_states(services)
    closed = metric("case_repository_push_slow_sockets_closed_total")
    async with (signed_in_socket(client, OPERATOR) as stalled, signed_in_socket(client, OPERATOR) as reader):
        await subscribe(stalled, "s", TITLES, {"id": "CASE-1"})
        await subscribe(reader, "r", TITLES, {"id": "CASE-1"})
        await members.until(2)

        # when one client reads nothing for longer than the server waits
        version = 1
        async with asyncio.timeout(TIMEOUT * 4):
            while metric("case_repository_push_slow_sockets_closed_total") == closed:
                version += 1
                services.bus.deliver(PublishedState({**state, "version": version, "title": title}, state["status"]))
                assert (await next_frame(reader))["payload"]["data"]["caseUpdated"]["version"] == version
                await asyncio.sleep(0.02)

        # then it is closed with 4413 and a reason (after the frames it had been sent), and the other is served on
        message = await stalled.receive(timeout=TIMEOUT)
        while message.type is WSMsgType.TEXT:
            message = await stalled.receive(timeout=TIMEOUT)
        assert (message.type, stalled.close_code, message.extra) == (
            WSMsgType.CLOSE, 4413, "too slow: pushes waited over 0.2 s")
        await members.until(1)
        services.bus.deliver(PublishedState({**state, "version": version + 1, "title": "t"}, state["status"]))
        assert await next_frame(reader) == pushed("r", {"caseUpdated": {"version": version + 1, "title": "t"}})


class PushRecords:
    """Stands in for the audit store's append: counts records without keeping them, so the memory measured is the
    push path's own."""

    def __init__(self) -> None:
        self.count = 0

    async def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        self.count += entry["operation"] == "caseUpdated"
        return entry


async def test_memory_stays_flat_over_thousands_of_shared_pushes(
    client: TestClient, services: Any, bus_watch: BusWatch, members: Members, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The group runs one Strawberry subscription: build.FreshPerEventExecutor keeps graphql-core's memo from
    growing with it (measured ~2.4 MB per 1,000 pushes without it)."""
    state, _ = await fat_states(services)
    records = PushRecords()
    monkeypatch.setattr(services.audit, "append", records.append)
    async with signed_in_socket(client, OPERATOR) as ws:
        await subscribe(ws, "1", MEMORY_PROBE, {"id": "CASE-1"})
        await members.until(1)
        await bus_watch.until_active(1)

        async def push(version: int) -> None:
            services.bus.deliver(PublishedState({**state, "version": version}, state["status"]))
            assert (await next_frame(ws))["payload"]["data"]["caseUpdated"]["version"] == version

        for version in range(2, 502):
            await push(version)
        growth = await held_bytes_growth(push, 502, 1000, 2000)

    assert growth < 256 * 1024, f"grew {growth} bytes over 2,000 pushes"
    assert records.count == 3500  # every push was put on record
