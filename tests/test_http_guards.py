"""HTTP guards in front of /graphql: CSRF, body size, batching, security headers, WebSocket origins.

The app is server.create_app as it is wired (http_guards after the access log, the view built with
graphql_view_options). A refusal is checked by its status and JSON body, and by the side effect that did
not happen: the publishCaseEvent it carried, sent with a valid system-publisher token, created no case.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import FormData, WSServerHandshakeError
from aiohttp.test_utils import TestClient

from auth.dev_tokens import mint_dev_token
from context import Services
from settings import Settings
from tests.factories import bearer, PUBLISH_CASE_EVENT, case_created_data, envelope, publish_input

PANEL = "https://panel.bank.example"
MiB = 1024 * 1024
NEW_CASE = {"event": publish_input(envelope("case.created", "CASE-9", case_created_data(), event_id="evt-csrf"))}


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=False, ws_allowed_origins=(PANEL,))


@pytest.fixture
def publisher(settings: Settings) -> dict[str, str]:
    """The process engine's token: allowed to publish, so a refusal is the transport's doing."""
    return {"Authorization": f"Bearer {mint_dev_token(settings, 'system-publisher')}"}


def refusal(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]}


async def case_9_titles(services: Services) -> list[str]:
    """What the store holds for the case the refused mutations would have created."""
    return [case["title"] for case in (await services.cases.get_for_update(["CASE-9"])).values()]


JSON_ONLY = refusal("POST /graphql needs Content-Type application/json (or multipart/form-data "
                    "with an Apollo-Require-Preflight header)")


# --- CSRF ---

async def test_a_json_post_runs_the_mutation(client: TestClient, services: Services, publisher: dict[str, str]) -> None:
    response = await client.post("/graphql", json={"query": PUBLISH_CASE_EVENT, "variables": NEW_CASE},
                                 headers=publisher)

    assert (response.status, await response.json()) == (
        200, {"data": {"publishCaseEvent": {"eventId": "evt-csrf", "status": "APPLIED"}}})
    assert await case_9_titles(services) == ["Mortgage for a flat"]


async def test_a_mutation_over_get_is_refused_and_creates_nothing(
    client: TestClient, services: Services, publisher: dict[str, str],
) -> None:
    params = {"query": PUBLISH_CASE_EVENT, "variables": orjson.dumps(NEW_CASE).decode()}

    response = await client.get("/graphql", params=params, headers=publisher)

    assert (response.status, response.content_type, await response.json()) == (
        400, "application/json", refusal("mutations are not allowed when using GET"))
    assert await case_9_titles(services) == []


async def test_a_query_over_get_is_refused_so_no_argument_lands_in_a_url_log(client: TestClient, services) -> None:
    response = await client.get("/graphql", params={"query": '{ customerByPesel(pesel: "85031207819") { id } }'},
                                headers=bearer())

    assert (response.status, response.content_type, await response.json()) == (
        400, "application/json", refusal("queries are not allowed when using GET"))
    assert (await services.audit.trail(first=5)).records == []


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "application/graphql",
    "application/json-seq", "multipart/form-data; boundary=x",
])
async def test_a_post_a_browser_sends_without_preflight_is_refused_and_creates_nothing(
    client: TestClient, services: Services, publisher: dict[str, str], content_type: str,
) -> None:
    body = orjson.dumps({"query": PUBLISH_CASE_EVENT, "variables": NEW_CASE})

    response = await client.post("/graphql", data=body, headers={**publisher, "Content-Type": content_type})

    assert (response.status, await response.json()) == (415, JSON_ONLY)
    assert await case_9_titles(services) == []


async def test_a_post_without_content_type_is_refused(
    client: TestClient, services: Services, publisher: dict[str, str],
) -> None:
    body = orjson.dumps({"query": PUBLISH_CASE_EVENT, "variables": NEW_CASE})

    response = await client.post("/graphql", data=body, headers=publisher, skip_auto_headers=["Content-Type"])

    assert (response.status, await response.json()) == (415, JSON_ONLY)
    assert await case_9_titles(services) == []


def upload_form() -> FormData:
    form = FormData()
    form.add_field("operations", orjson.dumps({"query": PUBLISH_CASE_EVENT, "variables": NEW_CASE}).decode())
    form.add_field("map", '{"0": ["variables.file"]}')
    form.add_field("0", b"%PDF-1.7", filename="income.pdf", content_type="application/pdf")
    return form


@pytest.mark.parametrize("headers", [{}, {"Apollo-Require-Preflight": " "}, {"X-Apollo-Operation-Name": ""}])
async def test_a_multipart_post_without_a_preflight_header_is_refused(
    client: TestClient, services: Services, publisher: dict[str, str], headers: dict[str, str],
) -> None:
    response = await client.post("/graphql", data=upload_form(), headers={**publisher, **headers})

    assert (response.status, await response.json()) == (415, JSON_ONLY)
    assert await case_9_titles(services) == []


@pytest.mark.parametrize("header", ["Apollo-Require-Preflight", "X-Apollo-Operation-Name"])
async def test_a_multipart_post_with_a_preflight_header_reaches_graphql(
    client: TestClient, services: Services, publisher: dict[str, str], header: str,
) -> None:
    response = await client.post("/graphql", data=upload_form(), headers={**publisher, header: "PublishCaseEvent"})

    # Past the guard: the view takes multipart requests (the GraphQL multipart request spec) and runs the operation.
    assert (response.status, await response.json()) == (
        200, {"data": {"publishCaseEvent": {"eventId": "evt-csrf", "status": "APPLIED"}}})
    assert await case_9_titles(services) == ["Mortgage for a flat"]


# --- body size ---

async def test_a_json_body_over_1_mib_is_refused_before_it_is_read(
    client: TestClient, services: Services, publisher: dict[str, str],
) -> None:
    body = orjson.dumps({"query": PUBLISH_CASE_EVENT, "variables": {**NEW_CASE, "padding": "x" * MiB}})

    response = await client.post("/graphql", data=body, headers={**publisher, "Content-Type": "application/json"})

    assert (response.status, await response.json()) == (
        413, refusal(f"request body exceeds the limit of {MiB} bytes"))
    assert await case_9_titles(services) == []


async def test_a_chunked_json_body_over_1_mib_is_refused(
    client: TestClient, services: Services, publisher: dict[str, str],
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield orjson.dumps({"query": PUBLISH_CASE_EVENT, "variables": {**NEW_CASE, "padding": "x" * MiB}})

    response = await client.post("/graphql", data=chunks(), headers={**publisher, "Content-Type": "application/json"})

    assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
    assert (response.status, await response.json()) == (
        413, refusal(f"request body exceeds the limit of {MiB} bytes"))
    assert await case_9_titles(services) == []


async def test_a_json_body_just_under_1_mib_is_answered(client: TestClient) -> None:
    body = {"query": "query($name: String!) { __type(name: $name) { name } }",
            # An unused variable carries the size: a string argument itself is bounded at 10,000 characters.
            "variables": {"name": "NoSuchType", "padding": "x" * (MiB - 150)}}

    response = await client.post("/graphql", json=body)

    assert (response.status, await response.json()) == (200, {"data": {"__type": None}})


# --- batching ---

async def test_a_batch_of_operations_is_refused_and_runs_none_of_them(
    client: TestClient, services: Services, publisher: dict[str, str],
) -> None:
    operation = {"query": PUBLISH_CASE_EVENT, "variables": NEW_CASE}

    response = await client.post("/graphql", data=b" \n" + orjson.dumps([operation, operation]),
                                 headers={**publisher, "Content-Type": "application/json"})

    assert (response.status, await response.json()) == (
        400, refusal("batched operations are not accepted: send one operation per request"))
    assert await case_9_titles(services) == []


# --- security headers ---

async def test_graphql_responses_are_neither_sniffed_nor_stored(client: TestClient) -> None:
    answered = await client.post("/graphql", json={"query": "{ __typename }"})
    refused = await client.post("/graphql", data="{}", headers={"Content-Type": "text/plain"})
    ide = await client.get("/graphql", headers={"Accept": "text/html"})

    for response in (answered, refused, ide):
        assert (response.headers["X-Content-Type-Options"], response.headers["Cache-Control"]) == (
            "nosniff", "no-store")


async def test_other_responses_are_not_sniffed(client: TestClient) -> None:
    health = await client.get("/healthz")
    missing = await client.get("/no-such-page")

    assert [(r.status, r.headers["X-Content-Type-Options"]) for r in (health, missing)] == [
        (200, "nosniff"), (404, "nosniff")]
    assert "Cache-Control" not in health.headers


# --- WebSocket origins (Strawberry's allowed_origins, fed from settings.ws_allowed_origins) ---

async def handshake(client: TestClient, settings: Settings, headers: dict[str, str]) -> dict[str, Any]:
    token = {"Authorization": f"Bearer {mint_dev_token(settings, 'advisor')}"}
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"], headers=headers) as ws:
        await ws.send_json({"type": "connection_init", "payload": token})
        message = await ws.receive(timeout=5)
        return orjson.loads(message.data)


@pytest.mark.parametrize("headers", [{}, {"Origin": PANEL}], ids=["gateway-without-origin", "allowed-origin"])
async def test_a_websocket_without_origin_or_from_an_allowed_origin_is_accepted(
    client: TestClient, settings: Settings, headers: dict[str, str],
) -> None:
    assert await handshake(client, settings, headers) == {"type": "connection_ack"}


async def test_a_websocket_from_the_servers_own_origin_is_accepted(client: TestClient, settings: Settings) -> None:
    own = f"http://{client.host}:{client.port}"

    assert await handshake(client, settings, {"Origin": own}) == {"type": "connection_ack"}


async def test_a_websocket_from_another_origin_is_refused_at_the_handshake(
    client: TestClient, settings: Settings,
) -> None:
    with pytest.raises(WSServerHandshakeError) as refused:
        await handshake(client, settings, {"Origin": "https://evil.example"})

    assert refused.value.status == 403
