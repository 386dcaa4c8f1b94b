"""APP_ENV=prod: refuses to start on development defaults; once started, no dev tokens, no introspection (the
federation SDL only to client-credentials tokens), and no internal detail in an error (only a correlation id that
is in the log).
"""
from __future__ import annotations

import base64
import logging
import os
import re
import time
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from access.policy import ROLES
from auth.dev_tokens import mint_dev_token, persona_claims, PERSONAS_BY_NAME
from context import Services
from schema.build import build_schema
from server import create_app
from settings import DEV_AUTH_SECRET, DEV_ENCRYPTION_KEY, Settings
from stores.database import Database
from tests.factories import created
from tests.identity_provider import AUDIENCE, ISSUER, signed

DATA_KEY = base64.b64encode(os.urandom(32)).decode()
CASE_QUERY = '{ case(id: "CASE-1") { id title customer { pesel } } }'


def prod_settings(jwks_url: str, **changes: Any) -> Settings:
    """A production configuration that may start: real key, identity provider, embedded store accepted."""
    settings = Settings(app_env="prod", demo_data=False, allow_embedded=True, data_encryption_key=DATA_KEY,
                        auth_jwks_url=jwks_url, auth_issuer=ISSUER, auth_audience=AUDIENCE)
    return settings.with_overrides(**changes)


@pytest.fixture
def settings(jwks_url: str) -> Settings:
    return prod_settings(jwks_url)


def signed_by_the_idp(claims: dict[str, Any]) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300} | claims
    return {"Authorization": f"Bearer {signed(claims)}"}


def employee_token(**overrides: Any) -> dict[str, str]:
    return signed_by_the_idp({"sub": "prod-advisor", "preferred_username": "anna.nowak",
                              "realm_access": {"roles": ["case-reader", "advisor"]}, "channel": "BRANCH"} | overrides)


def system_token(**overrides: Any) -> dict[str, str]:
    """A Keycloak client-credentials token of the gateway's service account, without any role (None drops a claim)."""
    claims = {"sub": "svc-api-gateway", "azp": "api-gateway", "client_id": "api-gateway",
              "preferred_username": "service-account-api-gateway"} | overrides
    return signed_by_the_idp({name: value for name, value in claims.items() if value is not None})


async def post(client: TestClient, query: str, headers: dict[str, str],
               operation_name: str | None = None) -> tuple[int, dict[str, Any], str]:
    response = await client.post("/graphql", json={"query": query, "operationName": operation_name}, headers=headers)
    text = await response.text()
    return response.status, orjson.loads(text), text


# --- startup -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "named"), [
    ({"data_encryption_key": DEV_ENCRYPTION_KEY}, "DATA_ENCRYPTION_KEY"),
    ({"data_encryption_key": base64.b64encode(b"short").decode()}, "DATA_ENCRYPTION_KEY"),
    ({"auth_dev_secret": "someone-set-a-dev-secret-in-prod"}, "AUTH_DEV_SECRET"),
    ({"allow_embedded": False}, "MONGODB_URI"),
    ({"auth_jwks_url": None}, "AUTH_JWKS_URL"),
    ({"auth_issuer": None}, "AUTH_ISSUER"),
    ({"auth_audience": None}, "AUTH_AUDIENCE"),
    ({"app_env": "production"}, "APP_ENV"),  # a typo runs with production rules, it does not fall back to dev
], ids=["dev encryption key", "short encryption key", "dev secret set", "in-memory store", "no JWKS URL",
        "no issuer", "no audience", "APP_ENV typo"])
def test_prod_refuses_to_start_on_a_development_default_and_names_the_setting(
    jwks_url: str, database: Database, changes: dict[str, Any], named: str,
) -> None:
    with pytest.raises(SystemExit) as refused:
        create_app(prod_settings(jwks_url, **changes), database)

    assert named in str(refused.value)
    assert str(refused.value).startswith("refusing to start with APP_ENV=")


def test_the_refusal_never_prints_the_secret_it_refuses(jwks_url: str, database: Database) -> None:
    secret = "someone-set-a-dev-secret-in-prod"

    with pytest.raises(SystemExit) as refused:
        create_app(prod_settings(jwks_url, auth_dev_secret=secret, data_encryption_key="bm90LWEta2V5"), database)

    assert secret not in str(refused.value) and "bm90LWEta2V5" not in str(refused.value)


async def test_prod_starts_with_allow_embedded_and_proper_settings(client: TestClient, services: Services) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    health = await client.get("/healthz")
    status, body, _ = await post(client, CASE_QUERY, employee_token())

    assert health.status == 200
    assert (status, body) == (200, {"data": {"case": {"id": "CASE-1", "title": "Mortgage for a flat",
                                                      "customer": {"pesel": "85031207819"}}}})


# --- dev tokens ----------------------------------------------------------------------------------------------

def dev_token_with_prod_claims() -> str:
    """A dev persona token carrying the right iss and aud: only its HS256 signature gives it away."""
    dev = Settings(auth_issuer=ISSUER, auth_audience=AUDIENCE)
    return jwt.encode(persona_claims(dev, PERSONAS_BY_NAME["pii-officer"]), DEV_AUTH_SECRET, algorithm="HS256")


@pytest.mark.parametrize("make_token", [
    dev_token_with_prod_claims,
    lambda: mint_dev_token(Settings(), "advisor"),
], ids=["dev signature with production iss/aud", "persona token as `make run` prints it"])
async def test_in_prod_a_hs256_dev_token_is_unauthenticated(
    client: TestClient, services: Services, database: Database, make_token: Any,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    forged = make_token()

    status, body, text = await post(client, CASE_QUERY, {"Authorization": f"Bearer {forged}"})

    assert (status, body) == (401, {"errors": [{"message": "invalid token: algorithm",
                                                "extensions": {"code": "UNAUTHENTICATED"}}]})
    assert "85031207819" not in text
    refused = await database.collection("audit").find_one({"action": "AUTHENTICATION_FAILED"})
    assert (refused["reason"], refused["outcome"]) == ("invalid token: algorithm", "denied")


async def test_in_prod_a_hs256_dev_token_cannot_open_a_websocket(client: TestClient) -> None:
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init",
                            "payload": {"Authorization": f"Bearer {dev_token_with_prod_claims()}"}})
        message = await ws.receive(timeout=5)

    assert (message.type, ws.close_code) == (WSMsgType.CLOSE, 4403)


# --- introspection and suggestions --------------------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "{ __schema { types { name fields { name } } } }",
    '{ __type(name: "Customer") { fields { name } } }',
    "query IntrospectionQuery { __schema { queryType { name } mutationType { name } } }",
    '{ case(id: "CASE-1") { id } __schema { types { name } } }',
])
async def test_in_prod_introspection_is_refused_even_for_a_signed_in_caller(client: TestClient, query: str) -> None:
    status, body, text = await post(client, query, employee_token())

    assert body.get("data") is None
    assert body["errors"] and all("introspection" in e["message"] for e in body["errors"])
    for schema_name in ("AuditRecord", "CaseConnection", "pesel", "publishCaseEvent"):
        assert schema_name not in text


async def test_in_prod_error_messages_suggest_no_field_names(client: TestClient) -> None:
    _, body, text = await post(client, '{ case(id: "CASE-1") { id customr { pesl } } }', employee_token())

    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert "Did you mean" not in text and "customer" not in text


async def test_in_prod_there_is_no_graphiql_page(client: TestClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})

    assert "graphiql" not in (await response.text()).lower()


# --- unexpected errors ---------------------------------------------------------------------------------------

CORRELATION = re.compile(r"^[0-9a-f]{32}$")


async def test_in_prod_an_unexpected_error_is_internal_with_a_correlation_id_and_nothing_else(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    async def store_breaks(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("mongodb://cases-admin:hunter2@10.1.2.3:27017 cursor exploded in get_many")

    monkeypatch.setattr(services.cases, "get_many", store_breaks)

    with caplog.at_level(logging.ERROR):
        _, body, text = await post(client, CASE_QUERY, employee_token())

    [error] = body["errors"]
    correlation_id = error["extensions"]["correlationId"]
    assert CORRELATION.match(correlation_id)
    assert error["message"] == f"Internal error (correlation id {correlation_id})"
    assert error["extensions"] == {"code": "INTERNAL", "correlationId": correlation_id}
    assert body["data"] == {"case": None}
    for detail in ("hunter2", "10.1.2.3", "get_many", "RuntimeError", "Traceback", "mongodb://"):
        assert detail not in text
    # ... while the operator finds the whole story in the log under that id.
    [logged] = [r for r in caplog.records if getattr(r, "correlation_id", None) == correlation_id]
    assert logged.exc_info is not None and "hunter2" in str(logged.exc_info[1])


async def test_in_prod_a_value_that_fails_to_decrypt_is_internal_without_the_store_path(
    client: TestClient, services: Services, database: Database,
) -> None:
    await services.pipeline.ingest([created("CASE-1"), created("CASE-2", data={
        "customer": {"id": "CUST-2", "name": "Jan Zieliński", "pesel": "44051401359"}})])
    cases = database.collection("cases")
    victim = await cases.find_one({"_id": "CASE-1"})
    await cases.update_one({"_id": "CASE-2"}, {"$set": {"customer.pesel": victim["customer"]["pesel"]}})

    _, body, text = await post(client, '{ case(id: "CASE-2") { customer { pesel } } }', employee_token())

    [error] = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL" and CORRELATION.match(error["extensions"].get("correlationId", ""))
    assert "cases/CASE-2" not in text and "sealed" not in text


# --- the federation SDL --------------------------------------------------------------------------------------

SDL_QUERY = "{ _service { sdl } }"
SCHEMA_NAMES = ("AuditRecord", "customerByPesel", "publishCaseEvent", "type Query")


def sdl_refused(code: str) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": "_service is not available to this caller",
                                      "extensions": {"code": code}}]}


def assert_no_schema_in(text: str) -> None:
    for schema_name in SCHEMA_NAMES:
        assert schema_name not in text


async def test_in_prod_the_federation_sdl_is_not_served_to_an_anonymous_caller(client: TestClient) -> None:
    status, body, text = await post(client, SDL_QUERY, {})

    assert (status, body) == (200, sdl_refused("UNAUTHENTICATED"))
    assert_no_schema_in(text)


@pytest.mark.parametrize("claims", [
    {},
    {"realm_access": {"roles": list(ROLES)}},
    # The policy's sentinel spelled as a role: SYSTEM_CLIENTS is a kind of token, not a role anyone can be given.
    {"realm_access": {"roles": ["@system"]}, "resource_access": {AUDIENCE: {"roles": ["@system"]}}},
    # Every user token has an azp; it does not make the user a client.
    {"azp": "api-gateway"},
], ids=["advisor", "every role", "@system as a realm and client role", "azp of the gateway"])
async def test_in_prod_the_federation_sdl_is_refused_to_an_employee_token(
    client: TestClient, claims: dict[str, Any],
) -> None:
    status, body, text = await post(client, SDL_QUERY, employee_token(**claims))

    assert (status, body) == (200, sdl_refused("FORBIDDEN"))
    assert_no_schema_in(text)


@pytest.mark.parametrize("claims", [
    {},
    {"client_id": None, "clientId": "api-gateway"},  # older Keycloak
    {"client_id": None},  # only the service-account username marks it
], ids=["client_id", "clientId", "service-account username"])
async def test_in_prod_the_federation_sdl_is_served_to_a_system_client(
    client: TestClient, claims: dict[str, Any],
) -> None:
    status, body, _ = await post(client, SDL_QUERY, system_token(**claims))

    assert (status, body) == (200, {"data": {"_service": {"sdl": build_schema().as_str()}}})


FRAGMENTED_SDL_QUERIES = [
    pytest.param("{ ... on Query { _service { sdl } } }", None, id="inline fragment on Query"),
    pytest.param("{ ...Sdl } fragment Sdl on Query { _service { sdl } }", None, id="fragment spread"),
    pytest.param("{ __typename ... on Query { ...Sdl } } fragment Sdl on Query { schema: _service { sdl } }", None,
                 id="aliased, in a spread inside an inline fragment"),
    pytest.param("query Harmless { __typename } query Schema { ... { _service { sdl } } }", "Schema",
                 id="untyped inline fragment in the chosen one of two operations"),
]


@pytest.mark.parametrize(("query", "operation_name"), FRAGMENTED_SDL_QUERIES)
async def test_in_prod_fragments_at_the_root_do_not_get_around_the_sdl_rule(
    client: TestClient, query: str, operation_name: str | None,
) -> None:
    anonymous = await post(client, query, {}, operation_name)
    employee = await post(client, query, employee_token(), operation_name)
    system = await post(client, query, system_token(), operation_name)

    assert anonymous[:2] == (200, sdl_refused("UNAUTHENTICATED"))
    assert employee[:2] == (200, sdl_refused("FORBIDDEN"))
    for _, _, text in (anonymous, employee):
        assert_no_schema_in(text)
    # The control: the same document is valid and served to the caller the rule admits.
    assert "errors" not in system[1] and "type Query" in system[2]


async def test_the_dev_outbox_does_not_exist_in_prod(client: TestClient) -> None:
    response = await client.get("/dev/commands")

    assert response.status == 404
