"""Attacks on authentication over real HTTP and WebSocket: forged tokens get 401/4403, nothing else.

Each refusal is checked three ways: the status and error code, that no case data left the server, and
that the refused attempt is on the audit record (and nothing else is: the GraphQL handler never ran).
The identity provider is a real JWKS endpoint on 127.0.0.1 in the test's own event loop.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import WSMsgType, WSServerHandshakeError
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from context import Services
from settings import Settings
from stores.database import Database
from tests.factories import created, token
from tests.identity_provider import AUDIENCE, ISSUER, KID, b64url, hs256_forged, public_pem, signed
from tests.live import next_frame, signed_in_socket, subscribe

ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
DROP = object()

CUSTOMER_PESEL = "85031207819"
PHONE = "+48601200300"
CASE_QUERY = '{ case(id: "CASE-1") { id title customer { name pesel } participants { phone pesel } } }'
SUBSCRIPTION = 'subscription { caseUpdated(id: "CASE-1") { id status customer { pesel } } }'


# --- the identity provider and its tokens -----------------------------------------------------------------

@pytest.fixture
def settings(jwks_url: str) -> Settings:
    """Dev, as `make run` with Keycloak configured: dev tokens still honoured, but iss/aud are checked."""
    return Settings(demo_data=False, auth_jwks_url=jwks_url, auth_issuer=ISSUER, auth_audience=AUDIENCE)


def claims(**overrides: Any) -> dict[str, Any]:
    """A Keycloak access token of a Kraków advisor; override or DROP any claim."""
    now = int(time.time())
    base = {
        "iss": ISSUER, "aud": [AUDIENCE, "account"], "sub": "0b0c7d4e-advisor", "azp": "case-ui", "typ": "Bearer",
        "iat": now, "exp": now + 300, "jti": "jti-1", "preferred_username": "anna.nowak",
        "realm_access": {"roles": ["case-reader", "advisor"]}, "channel": "BRANCH", "branch": "KRK-01",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not DROP}


def hs256_with_public_key() -> str:
    """The classic key-confusion attack: HMAC keyed with the provider's public key, which anyone can fetch."""
    return hs256_forged(public_pem(), claims(realm_access={"roles": ["pii-reader", "case-reader"]}))


def escalated_payload() -> str:
    """A genuine signature kept under a payload that grants more roles."""
    header, _, signature = signed(claims()).split(".")
    payload = b64url(json.dumps(claims(realm_access={"roles": ["pii-reader", "case-reader"]})).encode())
    return f"{header}.{payload}.{signature}"


FORGED: list[Any] = [
    pytest.param(lambda: jwt.encode(claims(), None, algorithm="none", headers={"kid": KID}), id="alg none"),
    pytest.param(lambda: signed(claims(), ATTACKER_KEY), id="wrong key"),
    pytest.param(hs256_with_public_key, id="HS256 signed with the RSA public key"),
    pytest.param(lambda: jwt.encode(claims(), "a-guessed-secret-of-thirty-two-bytes!", algorithm="HS256"),
                 id="HS256 wrong secret"),
    pytest.param(escalated_payload, id="payload changed under a genuine signature"),
    pytest.param(lambda: signed(claims(exp=int(time.time()) - 120)), id="expired"),
    pytest.param(lambda: signed(claims(exp=DROP)), id="no exp"),
    pytest.param(lambda: signed(claims(aud=DROP)), id="missing aud"),
    pytest.param(lambda: signed(claims(aud=["account", "another-api"])), id="wrong aud"),
    pytest.param(lambda: signed(claims(iss=DROP)), id="missing iss"),
    pytest.param(lambda: signed(claims(iss="https://sso.bank.example/realms/customers")), id="wrong iss"),
    pytest.param(lambda: signed(claims(), ATTACKER_KEY, kid="attacker-1"), id="unknown kid"),
    # A development token carries the dev issuer: with AUTH_ISSUER set it is refused even in dev.
    pytest.param(lambda: token(roles=("case-reader", "pii-reader")), id="dev token with the dev issuer"),
    pytest.param(lambda: "not.a.jwt", id="garbage"),
]


# --- helpers ---------------------------------------------------------------------------------------------

async def seed(services: Services) -> None:
    await services.pipeline.ingest([created("CASE-1")])


async def audit_records(database: Database) -> list[dict[str, Any]]:
    return await database.collection("audit").find({}).sort([("_id", 1)]).to_list(None)


async def records_after_seed(database: Database) -> list[dict[str, Any]]:
    """Audit records other than the seed's own WRITE."""
    return [r for r in await audit_records(database) if r.get("operation") != "applyEvents"]


def assert_leaks_nothing(text: str) -> None:
    for secret in (CUSTOMER_PESEL, PHONE, "Mortgage for a flat", "Anna Kowalska"):
        assert secret not in text


def assert_refused_on_record(records: list[dict[str, Any]], operation: str, forged: str) -> None:
    assert [(r["actor"], r["action"], r["operation"], r["outcome"]) for r in records] == [
        ("anonymous", "AUTHENTICATION_FAILED", operation, "denied")]
    assert records[0]["reason"].startswith("invalid token")
    assert forged not in repr(records[0])  # the token itself is never kept


# --- HTTP ------------------------------------------------------------------------------------------------

async def test_a_genuine_keycloak_token_reads_the_case(client: TestClient, services: Services) -> None:
    """The control for every refusal below: the same request with a valid token is served."""
    await seed(services)

    response = await client.post("/graphql", json={"query": CASE_QUERY},
                                 headers={"Authorization": f"Bearer {signed(claims())}"})

    assert response.status == 200
    assert await response.json() == {"data": {"case": {
        "id": "CASE-1", "title": "Mortgage for a flat",
        "customer": {"name": "Anna Kowalska", "pesel": CUSTOMER_PESEL},
        "participants": [{"phone": PHONE, "pesel": CUSTOMER_PESEL}]}}}


@pytest.mark.parametrize("make_token", FORGED)
async def test_a_forged_token_over_http_is_401_with_no_data_and_is_audited(
    client: TestClient, services: Services, database: Database, make_token: Callable[[], str],
) -> None:
    await seed(services)
    forged = make_token()

    response = await client.post("/graphql", json={"query": CASE_QUERY}, headers={"Authorization": f"Bearer {forged}"})

    assert response.status == 401
    body = await response.json()
    assert list(body) == ["errors"]
    assert [e["extensions"] for e in body["errors"]] == [{"code": "UNAUTHENTICATED"}]
    assert body["errors"][0]["message"].startswith("invalid token")
    text = await response.text()
    assert_leaks_nothing(text)
    assert forged not in text
    assert_refused_on_record(await records_after_seed(database), "http", forged)


@pytest.mark.parametrize("header", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer two tokens", "Token abc"])
async def test_an_authorization_header_that_is_not_a_bearer_token_is_401(
    client: TestClient, services: Services, database: Database, header: str,
) -> None:
    await seed(services)

    response = await client.post("/graphql", json={"query": CASE_QUERY}, headers={"Authorization": header})

    assert response.status == 401
    assert await response.json() == {"errors": [{
        "message": "the Authorization header must be `Bearer <token>`", "extensions": {"code": "UNAUTHENTICATED"}}]}
    assert [(r["action"], r["outcome"]) for r in await records_after_seed(database)] == [
        ("AUTHENTICATION_FAILED", "denied")]


async def test_anonymous_reading_a_case_gets_unauthenticated_and_a_null_case(
    client: TestClient, services: Services, database: Database,
) -> None:
    await seed(services)

    response = await client.post("/graphql", json={"query": CASE_QUERY})

    body = await response.json()
    assert body["data"] == {"case": None}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["case"], "UNAUTHENTICATED")]
    assert_leaks_nothing(await response.text())
    assert [(r["actor"], r["action"], r["operation"], r["outcome"], r["caseIds"])
            for r in await records_after_seed(database)] == [("anonymous", "READ", "case", "denied", [])]


async def test_anonymous_cannot_read_a_sensitive_field_through_federation(
    client: TestClient, services: Services, database: Database,
) -> None:
    """`_entities` needs a case-reading role: an anonymous caller is refused before any entity is resolved."""
    await seed(services)

    response = await client.post("/graphql", json={"query": """
        { _entities(representations: [{__typename: "Case", id: "CASE-1"}, {__typename: "Customer", id: "CUST-1"}])
          { ... on Case { id title customer { pesel } } ... on Customer { id name pesel } } }"""})

    assert await response.json() == {"data": None, "errors": [
        {"message": "_entities is not available to this caller", "extensions": {"code": "UNAUTHENTICATED"}}]}
    assert_leaks_nothing(await response.text())
    assert [(r["actor"], r["action"], r["operation"], r["outcome"], r["caseIds"], r["customerIds"])
            for r in await records_after_seed(database)] == [("anonymous", "READ", "_entities", "denied", [], [])]


# --- WebSocket -------------------------------------------------------------------------------------------

async def close_code_after_init(client: TestClient, payload: dict[str, Any]) -> tuple[int | None, list[Any]]:
    """Send connection_init (and a subscribe right behind it); return the close code and any data frames."""
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": payload})
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
        frames = []
        while True:
            message = await ws.receive(timeout=5)
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return ws.close_code, frames
            frames.append(orjson.loads(message.data))


async def test_a_genuine_token_in_connection_init_is_acknowledged(client: TestClient) -> None:
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {signed(claims())}"}})

        assert await next_frame(ws) == {"type": "connection_ack"}


@pytest.mark.parametrize("make_token", FORGED)
async def test_a_forged_token_in_connection_init_closes_the_socket_with_4403(
    client: TestClient, services: Services, database: Database, make_token: Callable[[], str],
) -> None:
    await seed(services)
    forged = make_token()

    code, frames = await close_code_after_init(client, {"Authorization": f"Bearer {forged}"})

    assert code == 4403
    assert frames == []  # no connection_ack, no pushed data
    assert_refused_on_record(await records_after_seed(database), "websocket", forged)


@pytest.mark.parametrize("payload", [{}, {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"token": "abc"}],
                         ids=["no token", "basic auth", "token under another key"])
async def test_connection_init_without_a_bearer_token_closes_the_socket_with_4403(
    client: TestClient, services: Services, payload: dict[str, Any],
) -> None:
    await seed(services)

    code, frames = await close_code_after_init(client, payload)

    assert (code, frames) == (4403, [])


@pytest.mark.parametrize("make_token", FORGED[:3])
async def test_a_forged_token_on_the_websocket_handshake_is_refused_before_the_upgrade(
    client: TestClient, database: Database, make_token: Callable[[], str],
) -> None:
    forged = make_token()

    with pytest.raises(WSServerHandshakeError) as refused:
        async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"],
                                     headers={"Authorization": f"Bearer {forged}"}):
            pass

    assert refused.value.status == 401
    assert_refused_on_record(await records_after_seed(database), "http", forged)


async def frames_of_a_subscription_with(client: TestClient, bearer_token: str) -> list[dict[str, Any]]:
    """Sign in, subscribe to CASE-1 and collect the frames until the server completes the subscription."""
    async with signed_in_socket(client, {"Authorization": f"Bearer {bearer_token}"}) as ws:
        await subscribe(ws, "1", SUBSCRIPTION)
        frames = [await next_frame(ws)]
        while frames[-1]["type"] not in ("complete", "error"):
            frames.append(await next_frame(ws))
        return frames


async def test_a_token_past_its_expiry_within_the_clock_leeway_gets_no_push(
    client: TestClient, services: Services,
) -> None:
    """Accepted at connection_init (30 s of clock skew are tolerated), but its subscriptions end at once."""
    await seed(services)

    frames = await frames_of_a_subscription_with(client, signed(claims(exp=int(time.time()) - 10)))

    assert [f["type"] for f in frames] == ["next", "complete"]
    assert frames[0]["payload"]["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in frames[0]["payload"]["errors"]] == [
        ("the token expired; subscribe again with a fresh one", "UNAUTHENTICATED")]


# --- the legacy `graphql-ws` protocol takes the same door ----------------------------------------------------------

@pytest.mark.parametrize("payload", [{"Authorization": f"Bearer {'x' * 20}"}, {}], ids=["forged token", "no token"])
async def test_the_legacy_graphql_ws_protocol_refuses_a_connection_without_a_valid_token(
    client: TestClient, services: Services, payload: dict[str, Any],
) -> None:
    await seed(services)
    async with client.ws_connect("/graphql", protocols=["graphql-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": payload})
        await ws.send_json({"id": "1", "type": "start", "payload": {"query": SUBSCRIPTION}})

        refusal = await ws.receive(timeout=5)
        closing = await ws.receive(timeout=5)

    assert orjson.loads(refusal.data)["type"] == "connection_error"
    assert closing.type is WSMsgType.CLOSE


async def test_the_legacy_graphql_ws_protocol_refuses_a_subscription_before_connection_init(
    client: TestClient, services: Services,
) -> None:
    await seed(services)
    async with client.ws_connect("/graphql", protocols=["graphql-ws"]) as ws:
        await ws.send_json({"id": "1", "type": "start", "payload": {"query": SUBSCRIPTION}})

        message = await ws.receive(timeout=5)

    assert (message.type, ws.close_code) == (WSMsgType.CLOSE, 4401)
