"""Every refusal of /graphql is GraphQL-shaped JSON with `errors[].extensions.code`, never text/plain, and in the
media type the client asked for (GraphQL over HTTP): `application/graphql-response+json` when Accept names it,
else `application/json`. With the new type a request error (a document that does not parse or validate) is a 400;
with the legacy type it stays a 200, as legacy clients expect.
"""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from settings import Settings

MiB = 1024 * 1024
NEW_TYPE = {"Accept": "application/graphql-response+json, application/json;q=0.9"}


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=False, outbox_relay_seconds=3600.0, request_body_seconds=0.3)


def refusal(message: str, code: str = "BAD_USER_INPUT") -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


async def answer(response: Any) -> tuple[int, str, dict[str, Any]]:
    return response.status, response.content_type, orjson.loads(await response.read())


JSON_ONLY = ("POST /graphql needs Content-Type application/json (or multipart/form-data with an "
             "Apollo-Require-Preflight header)")


@pytest.mark.parametrize(("accept", "media_type"), [
    ({}, "application/json"),
    (NEW_TYPE, "application/graphql-response+json"),
], ids=["legacy", "graphql-response"])
@pytest.mark.parametrize(("send", "status", "expected"), [
    (lambda c, h: c.post("/graphql", data=b'{"query": ', headers={**h, "Content-Type": "application/json"}),
     400, refusal("Unable to parse request body as JSON")),
    (lambda c, h: c.put("/graphql", json={"query": "{ __typename }"}, headers=h),
     405, refusal("GraphQL only supports GET and POST requests.")),
    (lambda c, h: c.get("/graphql", params={"query": "{ __typename }"}, headers=h),
     400, refusal("queries are not allowed when using GET")),
    (lambda c, h: c.get("/graphql", headers={**h, "Accept": h.get("Accept", "application/json")}),
     400, refusal("No GraphQL query found in the request")),
    (lambda c, h: c.post("/graphql", data=b'{"query": "{ __typename }"}', headers={**h, "Content-Type": "text/plain"}),
     415, refusal(JSON_ONLY)),
    (lambda c, h: c.post("/graphql", data=b"x" * (MiB + 1), headers={**h, "Content-Type": "application/json"}),
     413, refusal(f"request body exceeds the limit of {MiB} bytes")),
    (lambda c, h: c.post("/graphql", data=b"[]", headers={**h, "Content-Type": "application/json"}),
     400, refusal("batched operations are not accepted: send one operation per request")),
], ids=["bad-json", "wrong-method", "get-with-a-query", "get-without-a-query", "wrong-content-type",
        "body-too-large", "batch"])
async def test_each_refusal_is_coded_json_in_the_accepted_media_type(
    client: TestClient, send: Any, status: int, expected: dict[str, Any], accept: dict[str, str], media_type: str,
) -> None:
    response = await send(client, accept)

    assert await answer(response) == (status, media_type, expected)


async def test_a_wrong_method_names_the_allowed_ones(client: TestClient) -> None:
    response = await client.delete("/graphql")

    assert (response.status, response.headers["Allow"]) == (405, "GET, POST")


async def test_without_graphiql_a_browser_gets_a_coded_not_found(database: Any) -> None:
    from aiohttp.test_utils import TestServer

    from server import create_app

    app = create_app(Settings(demo_data=False, graphql_introspection=False), database)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})

        assert await answer(response) == (404, "application/json", refusal("Not Found", "NOT_FOUND"))


async def test_a_body_that_does_not_arrive_in_time_is_refused_with_408(client: TestClient) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"query\": ")  # ...and the other 90 bytes never come
    await writer.drain()

    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
    headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if line)
    body = await asyncio.wait_for(reader.readexactly(int(headers["Content-Length"])), 10)
    writer.close()

    assert (head.split("\r\n")[0], headers["Content-Type"], headers["Connection"]) == (
        "HTTP/1.1 408 Request Timeout", "application/json", "close")
    assert orjson.loads(body) == refusal("the request body did not arrive within 0.3 s")


async def test_a_syntax_error_is_a_400_with_the_new_type_and_a_200_with_the_legacy_one(client: TestClient) -> None:
    query = {"query": "{ case(id: "}

    legacy = await client.post("/graphql", json=query)
    new = await client.post("/graphql", json=query, headers=NEW_TYPE)

    expected = {"data": None, "errors": [{"message": "Syntax Error: Unexpected <EOF>.",
                                          "locations": [{"line": 1, "column": 12}],
                                          "extensions": {"code": "BAD_USER_INPUT"}}]}
    assert await answer(legacy) == (200, "application/json", expected)
    assert await answer(new) == (400, "application/graphql-response+json", expected)


async def test_a_document_that_does_not_validate_is_a_400_with_the_new_type(client: TestClient) -> None:
    response = await client.post("/graphql", json={"query": "{ noSuchField }"}, headers=NEW_TYPE)

    assert await answer(response) == (400, "application/graphql-response+json", {"data": None, "errors": [
        {"message": "Cannot query field 'noSuchField' on type 'Query'.", "locations": [{"line": 1, "column": 3}],
         "extensions": {"code": "BAD_USER_INPUT"}}]})


async def test_a_field_error_keeps_200_with_the_new_type(client: TestClient) -> None:
    # Anonymous: the field refuses (UNAUTHENTICATED), the request itself was well formed.
    response = await client.post("/graphql", json={"query": '{ case(id: "CASE-1") { id } }'}, headers=NEW_TYPE)

    status, media_type, body = await answer(response)
    assert (status, media_type, [e["extensions"]["code"] for e in body["errors"]]) == (
        200, "application/graphql-response+json", ["UNAUTHENTICATED"])


@pytest.mark.parametrize(("accept", "media_type"), [
    ("*/*", "application/json"),
    ("application/json", "application/json"),
    ("application/json, application/graphql-response+json;q=0.5", "application/json"),
    ("application/graphql-response+json", "application/graphql-response+json"),
])
async def test_an_answer_comes_in_the_type_the_client_prefers(client: TestClient, accept: str, media_type: str) -> None:
    response = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": accept})

    assert await answer(response) == (200, media_type, {"data": {"__typename": "Query"}})
