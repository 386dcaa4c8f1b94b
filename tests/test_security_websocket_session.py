"""A WebSocket connection is one sign-in for many operations: each operation and each push must still be
checked, scoped and audited on its own."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from auth.dev_tokens import Persona, mint_dev_token
from settings import Settings
from tests.factories import bearer, created, event
from tests.live import next_frame, signed_in_socket, subscribe

CASE_STATUS = '{ case(id: "CASE-1") { id status } }'


async def _answer(ws: Any, operation_id: str, query: str) -> dict[str, Any]:
    await subscribe(ws, operation_id, query)
    frame = await next_frame(ws)
    if frame["type"] == "next":
        assert await next_frame(ws) == {"id": operation_id, "type": "complete"}
    return frame


async def test_the_token_channel_claim_beats_the_handshake_header(client, services) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    advisor_on_the_phone = bearer(roles=("advisor", "case-reader"), channel="CALL_CENTER")

    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"],
                                 headers={"X-Channel": "BRANCH"}) as ws:
        await ws.send_json({"type": "connection_init", "payload": advisor_on_the_phone})
        assert await next_frame(ws) == {"type": "connection_ack"}
        frame = await _answer(ws, "1", '{ me { channel } case(id: "CASE-1") { customer { pesel } } }')

    assert frame["payload"]["data"] == {"me": {"channel": "CALL_CENTER"},
                                        "case": {"customer": {"pesel": "*******7819"}}}


async def test_a_later_query_on_the_same_socket_reads_fresh_data(client, services) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    async with signed_in_socket(client, bearer()) as ws:
        before = await _answer(ws, "1", CASE_STATUS)
        await services.pipeline.ingest([event("case.status_changed", "CASE-1", {"status": "APPROVED"})])
        after = await _answer(ws, "2", CASE_STATUS)

    assert before["payload"]["data"]["case"]["status"] == "NEW"
    assert after["payload"]["data"]["case"]["status"] == "APPROVED"


async def test_a_query_after_the_token_expired_is_refused_on_an_open_socket(client, services) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    # Expired 5 s ago: still within the 30 s clock leeway at sign-in, past its expiry for every operation.
    expired = mint_dev_token(Settings(), Persona("late", "late caller", "late.caller", ("case-reader",)),
                             ttl=timedelta(seconds=-5))

    async with signed_in_socket(client, {"Authorization": f"Bearer {expired}"}) as ws:
        frame = await _answer(ws, "1", CASE_STATUS)

    assert frame == {"id": "1", "type": "next", "payload": {"data": None, "errors": [
        {"message": "the token expired; sign in again", "extensions": {"code": "UNAUTHENTICATED"}}]}}


async def test_each_push_is_audited_with_every_case_and_field_it_showed(client, services, bus_watch) -> None:
    customer = {"id": "CUST-1", "name": "Anna Kowalska", "pesel": "85031207819", "segment": "RETAIL"}
    await services.pipeline.ingest([
        created("CASE-1", data={"customer": customer}),
        created("CASE-2", data={"customer": customer}),
    ])
    back_office = bearer(roles=("back-office", "case-reader"), channel="BACK_OFFICE", username="bo.clerk")
    query = ('subscription { caseUpdated(id: "CASE-1") { id customer { cases(first: 5) { edges { node { id '
             'participants { pesel } } } } } } }')

    async with signed_in_socket(client, back_office) as ws:
        await subscribe(ws, "live", query)
        await bus_watch.until_active(1)
        await services.pipeline.ingest([event("case.status_changed", "CASE-1", {"status": "APPROVED"})])
        push = await next_frame(ws)

    assert push["type"] == "next" and "errors" not in push["payload"]
    page = await services.audit.trail(actor=None, first=20)
    [record] = [r for r in page.records if r["operation"] == "caseUpdated"]
    assert (record["caseIds"], record["fields"], record["outcome"]) == (
        ["CASE-1", "CASE-2"], ["Participant.pesel:full"], "ok")

