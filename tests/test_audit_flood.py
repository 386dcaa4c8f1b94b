"""Issue 11 item 7: the audit cannot be flooded or dodged.

Every refusal, however malformed the request, is a 4xx with a coded JSON body and an audit record; requests without a
valid token are limited per client address (429 RATE_LIMITED) and their repeats aggregated into one record with a
count; every value the trail keeps is bounded.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestClient

from context import Services
from settings import DEV_AUTH_SECRET, Settings
from stores.database import Database
from tests.factories import bearer, created

QUERY = '{ case(id: "CASE-1") { id title } }'
LIMIT = 5


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header: bytes, payload: bytes) -> str:
    """A token signed with the dev secret from raw header and payload bytes (JSON a library would not write)."""
    signing_input = f"{b64url(header)}.{b64url(payload)}"
    signature = hmac.new(DEV_AUTH_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def dev_claims(**overrides: Any) -> dict[str, Any]:
    return {"sub": "u-1", "preferred_username": "eve", "exp": int(time.time()) + 300,
            "realm_access": {"roles": ["case-reader"]}, **overrides}


MALFORMED = [
    pytest.param("Bearer abc.def.ghi", id="segments that are not base64 JSON"),
    pytest.param(f"Bearer {b64url(b'not json')}.{b64url(b'{}')}.sig", id="header not JSON"),
    pytest.param(f"Bearer {b64url(b'[1, 2]')}.{b64url(b'{}')}.sig", id="header a JSON list"),
    pytest.param("Bearer " + b64url(b'{"alg":"HS256"}') + "." + b64url(b"%%%") + ".sig", id="payload not JSON"),
    pytest.param("Bearer " + hs256(b'{"alg":"HS256","typ":"JWT"}', json.dumps(dev_claims(exp=1e20)).encode()),
                 id="exp 1e20"),
    pytest.param("Bearer " + hs256(b'{"alg":"HS256","typ":"JWT"}',
                                   json.dumps(dev_claims()).replace('"exp": ', '"exp": 1e400, "x": ').encode()),
                 id="exp infinite"),
    pytest.param("Bearer " + hs256(b'{"alg":"HS256","typ":"JWT"}', json.dumps(dev_claims(exp="soon")).encode()),
                 id="exp a string"),
    pytest.param("Bearer " + jwt.encode(dev_claims(), None, algorithm="none"), id="alg none"),
    pytest.param("Bearer " + jwt.encode(dev_claims(), "k" * 32, algorithm="HS256", headers={"kid": "k" * 5000}),
                 id="huge kid with HS256"),
    pytest.param(f"Bearer {b64url(json.dumps({'alg': 'RS256', 'kid': 'k' * 6000}).encode())}.{b64url(b'{}')}.sig",
                 id="huge kid with RS256"),
    pytest.param("Bearer " + "a" * 8000, id="8 KB of one character"),
    pytest.param("Bearer " + "é" * 40, id="non-ASCII token"),
    pytest.param("Basic dXNlcjpwYXNz", id="not a bearer token"),
]


async def records(database: Database, action: str | None = None) -> list[dict[str, Any]]:
    found = await database.collection("audit").find({}).sort([("_id", 1)]).to_list(None)
    return [r for r in found if r.get("operation") != "applyEvents" and (action is None or r["action"] == action)]


async def post(client: TestClient, authorization: str | None, **headers: str) -> aiohttp.ClientResponse:
    if authorization is not None:
        headers["Authorization"] = authorization
    return await client.post("/graphql", json={"query": QUERY}, headers=headers)


@pytest.mark.parametrize("authorization", MALFORMED)
async def test_a_malformed_token_is_401_json_and_on_record(client: TestClient, services: Services, database: Database,
                                                          authorization: str) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    response = await post(client, authorization)

    assert response.status == 401
    body = await response.json()
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert "data" not in body
    [record] = await records(database)
    assert (record["actor"], record["action"], record["operation"], record["outcome"], record["count"]) == (
        "anonymous", "AUTHENTICATION_FAILED", "http", "denied", 1)
    assert record["reason"].startswith(("invalid token", "the Authorization header"))
    assert authorization[7:] not in repr(record)  # the token itself is never kept


async def raw_request(client: TestClient, header_lines: bytes) -> tuple[int, dict[str, Any]]:
    """An HTTP/1.1 request written byte by byte: header bytes no client library would send."""
    body = json.dumps({"query": QUERY}).encode()
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" + header_lines
                 + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(payload)


@pytest.mark.parametrize("header", [
    pytest.param(b"Authorization: Bearer \xff\xfe\xfd.\xc3\x28.\x80\r\n", id="invalid UTF-8 in the token"),
    pytest.param(b"Authorization: Bearer abc.def.ghi\r\nX-Channel: \xff" + b"B" * 7900 + b"\r\n",
                 id="8 KB X-Channel with invalid UTF-8"),
])
async def test_header_bytes_that_are_not_text_are_401_json_and_on_record_bounded(
        client: TestClient, database: Database, header: bytes) -> None:
    status, body = await raw_request(client, header)

    assert status == 401
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    [record] = await records(database)
    assert (record["action"], record["outcome"], record["reason"]) == (
        "AUTHENTICATION_FAILED", "denied", "invalid token: malformed")
    assert record["channel"] is None or len(record["channel"]) == 64


async def test_an_8_kb_x_channel_header_is_400_and_on_record_with_a_bounded_value(
        client: TestClient, database: Database) -> None:
    response = await client.post("/graphql", json={"query": QUERY}, headers={**bearer(), "X-Channel": "X" * 8000})

    assert response.status == 400
    assert (await response.json())["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}
    [record] = await records(database)
    assert (record["actorName"], record["action"], record["outcome"]) == ("test.operator", "BAD_REQUEST", "denied")
    assert record["channel"] == "X" * 52 + "…[truncated]"


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=False, outbox_relay_seconds=3600.0, unauthenticated_requests_per_minute=LIMIT)


async def test_a_flood_from_one_address_is_429_after_the_limit_and_aggregated_in_one_record(
        client: TestClient, services: Services, database: Database) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    statuses = [(await post(client, "Bearer abc.def.ghi")).status for _ in range(LIMIT + 3)]
    refused = await post(client, "Bearer abc.def.ghi")

    assert statuses == [401] * LIMIT + [429] * 3
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "60"
    assert await refused.json() == {"errors": [{
        "message": "too many requests without a valid token from this address: at most 5 a minute; sign in or try "
                   "again later", "extensions": {"code": "RATE_LIMITED"}}]}
    # The first of each kind is on record at once...
    assert [(r["action"], r["count"]) for r in await records(database)] == [
        ("AUTHENTICATION_FAILED", 1), ("RATE_LIMITED", 1)]

    # ... and the repeats of the window as one record each when it ends.
    written = await services.refusals.flush_due(datetime.now(timezone.utc) + timedelta(seconds=61))

    assert written == 2
    aggregated = [r for r in await records(database) if r.get("aggregated")]
    assert [(r["action"], r["reason"], r["remote"], r["count"]) for r in aggregated] == [
        ("AUTHENTICATION_FAILED", "invalid token: malformed", "127.0.0.1", 4),
        ("RATE_LIMITED", "too many requests without a valid token from this address", "127.0.0.1", 3)]
    assert all(r["firstAt"] <= r["lastAt"] for r in aggregated)
    assert len(await records(database)) == 4  # 9 refusals, 4 records
    assert (await services.audit.verify()).ok


async def test_an_anonymous_flood_is_limited_too_and_a_valid_token_never_is(
        client: TestClient, services: Services, database: Database) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    anonymous = [(await post(client, None)).status for _ in range(LIMIT + 2)]
    signed_in = await post(client, bearer()["Authorization"])

    assert anonymous == [200] * LIMIT + [429] * 2
    assert signed_in.status == 200
    assert (await signed_in.json())["data"]["case"]["id"] == "CASE-1"
    assert [r["action"] for r in await records(database, "RATE_LIMITED")] == ["RATE_LIMITED"]


async def test_another_address_is_not_affected_by_a_flood(client: TestClient, database: Database) -> None:
    for _ in range(LIMIT + 2):
        await post(client, "Bearer abc.def.ghi")
    assert (await post(client, "Bearer abc.def.ghi")).status == 429

    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as other:
        response = await other.post(client.make_url("/graphql"), json={"query": QUERY},
                                    headers={"Authorization": "Bearer abc.def.ghi"})
        assert response.status == 401
        assert (await response.json())["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}

    assert [(r["remote"], r["action"]) for r in await records(database)] == [
        ("127.0.0.1", "AUTHENTICATION_FAILED"), ("127.0.0.1", "RATE_LIMITED"), ("127.0.0.2", "AUTHENTICATION_FAILED")]


async def _sign_in_on_a_socket(client: TestClient, authorization: str) -> dict[str, Any] | int:
    """Open a graphql-transport-ws socket and sign in with `authorization`: the ack, or the close code."""
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": authorization}})
        message = await ws.receive(timeout=10)
        if message.type is aiohttp.WSMsgType.TEXT:
            return json.loads(message.data)
        return ws.close_code or -1


async def test_sockets_that_sign_in_are_never_counted_however_many_come_from_one_address(
        client: TestClient, database: Database) -> None:
    # A gateway or a NAT opens many sockets from one address; each handshake carries no token of its own.
    answers = [await _sign_in_on_a_socket(client, bearer()["Authorization"]) for _ in range(3 * LIMIT)]

    assert answers == [{"type": "connection_ack"}] * (3 * LIMIT)
    assert await records(database, "RATE_LIMITED") == []
    # And the address's HTTP requests without a token are still served up to the limit.
    assert (await post(client, None)).status != 429


async def test_sockets_that_fail_to_sign_in_count_like_refused_requests(
        client: TestClient, services: Services, database: Database) -> None:
    answers = [await _sign_in_on_a_socket(client, "Bearer abc.def.ghi") for _ in range(LIMIT + 2)]

    assert answers == [4403] * (LIMIT + 2)
    assert [(r["action"], r["operation"], r["count"]) for r in await records(database)] == [
        ("AUTHENTICATION_FAILED", "websocket", 1), ("RATE_LIMITED", "websocket", 1)]
    # The address has used its allowance: its next HTTP request without a valid token is refused at once.
    assert (await post(client, "Bearer abc.def.ghi")).status == 429
