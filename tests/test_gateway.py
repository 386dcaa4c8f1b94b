"""A CRM composes us through a real gateway: Hive Gateway over a supergraph composed by Apollo's composer from our
`_service { sdl }` and a stand-in CRM subgraph (tests/gateway/). The caller's token passes through the gateway and
our policy decides what it sees, whichever subgraph the query starts in; `caseUpdated` runs through the gateway
over an upstream WebSocket and its pushes carry the CRM's fields. Node missing fails these tests (never a skip)."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from bench import r6_push
from tests.factories import PUBLISH_CASE_EVENT, bearer, case_created_data, envelope, publish_input
from tests.federation_stack import GATEWAY_DIR, ROOT, Supergraph, post_graphql, run_composer, running_supergraph

CALL_CENTER = bearer(roles=("call-center", "case-reader"), channel="CALL_CENTER", username="ewa.kowalska")
OPERATOR = bearer()
PUSH_SECONDS = 10.0


def publish(stack: Supergraph, raw: dict[str, Any]) -> None:
    """Ingest one event over HTTP straight into our server (the gateway has no business with ingest)."""
    result = post_graphql(stack.cases.url, PUBLISH_CASE_EVENT, {"event": publish_input(raw)},
                          authorization=OPERATOR["Authorization"])
    assert result == {"data": {"publishCaseEvent": {"eventId": raw["id"], "status": "APPLIED"}}}, result


@pytest.fixture(scope="module")
def stack() -> Iterator[Supergraph]:
    with running_supergraph() as supergraph:
        # CASE-1: Anna Kowalska's mortgage, the CRM's GOLD customer; CASE-2: her restricted case, which only
        # team managers may read. The CRM logged a contact about each (tests/gateway/crm.mjs).
        publish(supergraph, envelope("case.created", "CASE-1", case_created_data(), event_id="gw-1"))
        publish(supergraph, envelope("case.created", "CASE-2", case_created_data(
            title="Staff loan", caseType="CASH_LOAN", restricted=True), event_id="gw-2"))
        yield supergraph


def through_gateway(stack: Supergraph, query: str, headers: dict[str, str],
                    variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return post_graphql(stack.gateway.url, query, variables, authorization=headers.get("Authorization"))


def test_the_supergraph_joins_our_entities_with_the_crm_fields(stack: Supergraph) -> None:
    supergraph = stack.supergraph_file.read_text()

    assert f'CASES @join__graph(name: "cases", url: "{stack.cases.url}")' in supergraph
    assert f'CRM @join__graph(name: "crm", url: "{stack.crm.url}")' in supergraph
    assert 'type Customer\n  @join__type(graph: CASES, key: "id")\n  @join__type(graph: CRM, key: "id")' in supergraph
    assert ('type Case\n  @join__type(graph: CASES, key: "id")\n'
            '  @join__type(graph: CRM, key: "id", resolvable: false)') in supergraph


def test_the_exported_schema_composes_with_the_crm_as_make_supergraph_does() -> None:
    done = run_composer({"cases": ("http://127.0.0.1:8000/graphql", (ROOT / "graphql" / "schema.graphql").read_text()),
                         "crm": ("http://127.0.0.1:4001/graphql", (GATEWAY_DIR / "crm.graphql").read_text())})

    assert (done.returncode, done.stderr) == (0, "")
    assert 'CASES @join__graph(name: "cases", url: "http://127.0.0.1:8000/graphql")' in done.stdout
    assert "crmTier: String! @join__field(graph: CRM)" in done.stdout


def test_a_subgraph_on_a_federation_version_hive_refuses_fails_the_composition() -> None:
    sdl = (GATEWAY_DIR / "crm.graphql").read_text().replace("federation/v2.5", "federation/v2.11")

    done = run_composer({"crm": ("http://127.0.0.1:4001/graphql", sdl)})

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "composition error: crm links federation v2.11; Hive Gateway's composer accepts up to v2.9\n"


def test_a_query_spans_both_subgraphs_from_either_side(stack: Supergraph) -> None:
    from_cases = through_gateway(stack, """{ case(id: "CASE-1") { id title status
        customer { id name crmTier relationshipManager { name email } } } }""", OPERATOR)
    from_crm = through_gateway(stack, """{ crmContact(id: "CRM-C-1") { subject at
        case { id title stage customer { name crmTier } } } }""", OPERATOR)

    assert from_cases == {"data": {"case": {
        "id": "CASE-1", "title": "Mortgage for a flat", "status": "NEW",
        "customer": {"id": "CUST-1", "name": "Anna Kowalska", "crmTier": "GOLD",
                     "relationshipManager": {"name": "Jan Kowalczyk", "email": "jan.kowalczyk@bank.example"}}}}}
    assert from_crm == {"data": {"crmContact": {
        "subject": "Asked about the mortgage decision", "at": "2026-11-22T09:00:00Z",
        "case": {"id": "CASE-1", "title": "Mortgage for a flat", "stage": "APPLICATION",
                 "customer": {"name": "Anna Kowalska", "crmTier": "GOLD"}}}}}


def test_the_callers_token_reaches_us_through_the_gateway(stack: Supergraph) -> None:
    signed_in = through_gateway(stack, "{ me { username roles channel } }", CALL_CENTER)
    anonymous = through_gateway(stack, '{ case(id: "CASE-1") { title customer { crmTier } } }', {})

    assert signed_in == {"data": {"me": {
        "username": "ewa.kowalska", "roles": ["call-center", "case-reader"], "channel": "CALL_CENTER"}}}
    assert anonymous["data"] == {"case": None}
    assert [error["extensions"]["code"] for error in anonymous["errors"]] == ["UNAUTHENTICATED"]


def test_a_masked_pesel_stays_masked_for_a_call_center_token_on_every_path(stack: Supergraph) -> None:
    from_cases = through_gateway(stack, """{ case(id: "CASE-1") {
        customer { pesel crmTier } participants { name pesel phone } } }""", CALL_CENTER)
    from_crm = through_gateway(stack, """{ crmContact(id: "CRM-C-1") {
        case { customer { pesel } participants { pesel } } } }""", CALL_CENTER)

    assert from_cases == {"data": {"case": {
        "customer": {"pesel": "*******7819", "crmTier": "GOLD"},
        "participants": [{"name": "Anna Kowalska", "pesel": "*******7819", "phone": "+48601200300"}]}}}
    assert from_crm == {"data": {"crmContact": {"case": {
        "customer": {"pesel": "*******7819"}, "participants": [{"pesel": "*******7819"}]}}}}


def test_entities_never_reveal_a_case_that_case_refuses(stack: Supergraph) -> None:
    # Given the call center may not read the restricted CASE-2, asked for as `case` and as an entity directly
    direct_case = post_graphql(stack.cases.url, '{ case(id: "CASE-2") { title } }',
                               authorization=CALL_CENTER["Authorization"])
    direct_entity = post_graphql(stack.cases.url, """query ($representations: [_Any!]!) {
        _entities(representations: $representations) { ... on Case { title } } }""",
                                 {"representations": [{"__typename": "Case", "id": "CASE-2"}]},
                                 authorization=CALL_CENTER["Authorization"])
    # When the CRM's contact about it is read through the gateway, by the call center and by a team manager
    refused = through_gateway(stack, '{ crmContact(id: "CRM-C-2") { subject case { title status } } }', CALL_CENTER)
    allowed = through_gateway(stack, '{ crmContact(id: "CRM-C-2") { subject case { title status } } }', OPERATOR)

    # Then the entity path shows exactly what `case` shows: nothing, for the call center
    assert direct_case == {"data": {"case": None}}
    assert direct_entity == {"data": {"_entities": [None]}}
    # (Hive Gateway merges the null entity into the CRM's `{id}` reference, so the non-null `title` fails and
    # `case` is nulled; it masks that error's text, which says nothing of the case either way.)
    assert refused == {"data": {"crmContact": {"subject": "Complained about a fee", "case": None}}, "errors": [{
        "message": "Unexpected error.", "locations": [{"line": 1, "column": 46}],
        "path": ["crmContact", "case", "title"], "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}
    assert allowed == {"data": {"crmContact": {"subject": "Complained about a fee",
                                               "case": {"title": "Staff loan", "status": "NEW"}}}}


CASE_UPDATED = """subscription ($id: ID!) { caseUpdated(id: $id) {
  id title customer { id crmTier relationshipManager { name } } } }"""


async def test_case_updated_through_the_gateway_pushes_with_the_crm_fields(stack: Supergraph) -> None:
    publish(stack, envelope("case.created", "CASE-3", case_created_data(title="Car loan"), event_id="gw-3"))
    async with aiohttp.ClientSession() as session, session.ws_connect(
            stack.gateway.url.replace("http://", "ws://"), protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": CALL_CENTER})
        assert await ws.receive_json(timeout=PUSH_SECONDS) == {"type": "connection_ack"}
        await ws.send_json({"id": "1", "type": "subscribe",
                            "payload": {"query": CASE_UPDATED, "variables": {"id": "CASE-3"}}})

        # The gateway opens its upstream socket to us lazily: change the case until the first push arrives, so
        # the change under test is published only once the whole chain listens.
        for attempt in range(1, 51):
            publish(stack, envelope("case.updated", "CASE-3", {"title": f"Warm-up {attempt}"},
                                    event_id=f"gw-warm-{attempt}"))
            try:
                first = await ws.receive_json(timeout=0.2)
                break
            except asyncio.TimeoutError:
                continue
        else:
            pytest.fail("no push through the gateway after 50 changes")
        assert first["type"] == "next", first

        publish(stack, envelope("case.updated", "CASE-3", {"title": "Car loan, 60 months"}, event_id="gw-4"))
        pushes = [await ws.receive_json(timeout=PUSH_SECONDS)]
        while pushes[-1]["payload"]["data"]["caseUpdated"]["title"] != "Car loan, 60 months":
            pushes.append(await ws.receive_json(timeout=PUSH_SECONDS))  # late warm-up pushes come first

    assert pushes[-1] == {"id": "1", "type": "next", "payload": {"data": {"caseUpdated": {
        "id": "CASE-3", "title": "Car loan, 60 months",
        "customer": {"id": "CUST-1", "crmTier": "GOLD", "relationshipManager": {"name": "Jan Kowalczyk"}}}}}}


async def test_a_hundred_and_one_subscribers_with_one_token_all_get_pushes_through_the_gateway(
        stack: Supergraph) -> None:
    # Strawberry refuses a socket's 101st operation; the gateway opens one upstream socket per client socket, so
    # subscribers sharing a token (a team's dashboards on one service token) are not multiplexed past that limit.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        events = r6_push.Events(session, stack.cases.url)
        await events.send(case_created_data(title="Shared dashboards"), event_type="case.created")
        subscribers = r6_push.Subscribers()
        url = stack.gateway.url.replace("http://", "ws://")
        try:
            await r6_push.connect(101, lambda _: r6_push.graphql_subscriber(url, subscribers))
            await r6_push.warm_up(subscribers, events, "gateway")  # fails unless all 101 have had a push
            arrivals = await subscribers.push(events.titled("Shared dashboards, updated"), "Shared dashboards, updated")
        finally:
            await subscribers.close()

    assert (len(arrivals), subscribers.errors) == (101, [])
