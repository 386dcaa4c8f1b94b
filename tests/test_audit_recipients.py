"""The pushes a caller received are in its audit trail: a push to several subscribers is one record naming each
recipient (edge/fanout.py), and `auditTrail(actor:)` finds it for every one of them. Read over HTTP as an auditor."""
from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

import audit_verify
from context import Services
from stores.database import Database
from tests.factories import bearer, created, status_changed
from tests.live import BusWatch, Members, next_frame, signed_in_socket, subscribe

AUDITOR = bearer(roles=("auditor",), channel="BACK_OFFICE", username="tomasz.kaminski")
OLA, JAN = bearer(username="ola.operator"), bearer(username="jan.operator")
# The `sub` of those dev tokens (a UUID derived from the username, auth/dev_tokens.py).
OLA_SUBJECT, JAN_SUBJECT = "f1042fc8-0e32-5104-8507-c50be21d387d", "3a69416c-10ca-5867-b037-c7a6f17b3860"
WATCH = 'subscription { caseUpdated(id: "CASE-1") { id status } }'
TRAIL = """query ($actor: String, $after: String) { auditTrail(actor: $actor, first: 1, after: $after) {
  pageInfo { hasNextPage endCursor } edges { node { actor actorName recipients action operation caseIds outcome } } } }"""


async def post(client: TestClient, query: str, headers: dict[str, str],
               variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    return await response.json()


async def trail_of(client: TestClient, actor: str) -> list[tuple[list[dict[str, Any]], bool]]:
    """The auditor's walk through an actor's trail, a record a page: (records, hasNextPage) per page."""
    pages, after = [], None
    while True:
        body = await post(client, TRAIL, AUDITOR, {"actor": actor, "after": after})
        assert "errors" not in body, body
        page = body["data"]["auditTrail"]
        pages.append(([edge["node"] for edge in page["edges"]], page["pageInfo"]["hasNextPage"]))
        if not page["pageInfo"]["hasNextPage"]:
            return pages
        after = page["pageInfo"]["endCursor"]


async def a_push_to_ola_and_jan(client: TestClient, services: Services, bus_watch: BusWatch) -> None:
    """Jan reads the case, then both watch it and get one push (one shared execution, one record)."""
    await services.pipeline.ingest([created("CASE-1")])
    assert "errors" not in await post(client, '{ case(id: "CASE-1") { id } }', JAN)
    members = Members()
    async with signed_in_socket(client, OLA) as ola, signed_in_socket(client, JAN) as jan:
        await subscribe(ola, "1", WATCH)
        await subscribe(jan, "1", WATCH)
        await members.until(2)
        await bus_watch.until_active(1)  # one group: the same document and view

        await services.pipeline.ingest([status_changed("CASE-1", "IN_PROGRESS", "ANALYSIS")])

        for ws in (ola, jan):
            assert (await next_frame(ws))["payload"] == {"data": {"caseUpdated": {"id": "CASE-1",
                                                                                   "status": "IN_PROGRESS"}}}
    await members.until(0)


PUSH = {"actor": "subscribers", "actorName": None, "recipients": [JAN_SUBJECT, OLA_SUBJECT], "action": "READ",
        "operation": "caseUpdated", "caseIds": ["CASE-1"], "outcome": "ok"}


async def test_the_trail_of_a_subscriber_lists_the_push_it_got_with_every_recipient(
    client: TestClient, services: Services, bus_watch: BusWatch,
) -> None:
    await a_push_to_ola_and_jan(client, services, bus_watch)

    # Jan's trail: the push, then his own read of the case (as its actor, so no recipients), newest first
    assert await trail_of(client, JAN_SUBJECT) == [
        ([PUSH], True),
        ([{"actor": JAN_SUBJECT, "actorName": "jan.operator", "recipients": [], "action": "READ", "operation": "case",
           "caseIds": ["CASE-1"], "outcome": "ok"}], False)]
    # Ola's trail: the same record, once
    assert await trail_of(client, OLA_SUBJECT) == [([PUSH], False)]


async def test_a_subscriber_may_not_read_its_own_trail_nor_the_recipients(
    client: TestClient, services: Services, bus_watch: BusWatch,
) -> None:
    await a_push_to_ola_and_jan(client, services, bus_watch)

    response = await client.post("/graphql", json={"query": TRAIL, "variables": {"actor": JAN_SUBJECT}}, headers=JAN)

    body = await response.json()
    assert body["data"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["auditTrail"], "FORBIDDEN")]
    assert OLA_SUBJECT not in await response.text()


async def test_a_chain_holding_a_push_record_with_its_recipients_verifies(
    client: TestClient, services: Services, bus_watch: BusWatch, database: Database,
) -> None:
    await a_push_to_ola_and_jan(client, services, bus_watch)

    result, code = await audit_verify.verify_audit(database)

    # the two ingests, Jan's read and the push
    assert (result["ok"], result["checked"], code) == (True, 4, audit_verify.EXIT_OK)
    [push] = await database.collection("audit").find({"recipients": OLA_SUBJECT}).to_list(None)
    assert push["recipients"] == [JAN_SUBJECT, OLA_SUBJECT]
