"""The access log and the request id, as an operator reads them: one JSON line per request on the app's logging
setup (logs.JsonFormatter), the id sent back in `X-Request-Id` and found again in the audit record of that request,
and nothing a client sent as data (variables, tokens, a PESEL) in any line."""
from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from context import Services
from logs import JsonFormatter
from tests.factories import bearer, created

OPERATOR_SUB = "37385a67-5d0a-5005-b168-c89b9f4c6320"  # uuid5 of the dev persona `test.operator`
PESEL = "85031207819"
FIND_CASE = "query FindCase($id: ID!) { case(id: $id) { id } }"


class JsonLog:
    """What the app writes to stdout in production: the root logger through logs.JsonFormatter, at INFO."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.stream.getvalue().splitlines()]

    def access(self) -> list[dict[str, Any]]:
        """The access log lines, without the two values that change per run (`at`, `durationMs`)."""
        found = []
        for line in self.lines():
            if line["logger"] == "case_repository.access":
                assert isinstance(line.pop("durationMs"), float)
                line.pop("at")
                found.append(line)
        return found


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    log, root, aiohttp_access = JsonLog(), logging.getLogger(), logging.getLogger("aiohttp.access")
    handler = logging.StreamHandler(log.stream)
    handler.setFormatter(JsonFormatter())
    levels = root.level, aiohttp_access.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    aiohttp_access.setLevel(logging.WARNING)  # as logs.configure_logging does: ours replaces it
    try:
        yield log
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        aiohttp_access.setLevel(levels[1])


def access_line(**fields: Any) -> dict[str, Any]:
    return {"level": "info", "logger": "case_repository.access", "message": "request", "method": "POST",
            "path": "/graphql", "status": 200, "operation": None, "sub": None, "channel": None, "errorCodes": [],
            **fields}


async def test_a_graphql_request_leaves_one_line_with_its_id_operation_caller_and_channel(
    client: TestClient, services: Services, json_log: JsonLog,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    response = await client.post("/graphql", json={"query": FIND_CASE, "variables": {"id": PESEL}},
                                 headers={**bearer(), "X-Request-Id": "req-2026-abc", "X-Channel": "BRANCH"})

    assert (response.status, response.headers["X-Request-Id"]) == (200, "req-2026-abc")
    assert json_log.access() == [access_line(requestId="req-2026-abc", operation="FindCase", sub=OPERATOR_SUB,
                                             channel="BRANCH")]
    written = json_log.stream.getvalue()
    assert PESEL not in written and "Bearer" not in written and "variables" not in written


async def test_error_codes_are_in_the_line_in_the_order_of_the_errors(client: TestClient, json_log: JsonLog) -> None:
    await client.post("/graphql", json={"query": '{ case(id: "CASE-1") { id } }'}, headers={"X-Request-Id": "r-1"})

    assert json_log.access() == [access_line(requestId="r-1", operation="anonymous", errorCodes=["UNAUTHENTICATED"])]


async def test_a_refused_token_is_logged_with_its_code_and_no_caller(client: TestClient, json_log: JsonLog) -> None:
    response = await client.post("/graphql", json={"query": "{ __typename }"},
                                 headers={"Authorization": "Bearer not-a-jwt", "X-Request-Id": "r-2"})

    assert (response.status, response.headers["X-Request-Id"]) == (401, "r-2")
    assert json_log.access() == [access_line(requestId="r-2", status=401, errorCodes=["UNAUTHENTICATED"])]


async def test_a_guard_refusal_is_logged_with_its_code(client: TestClient, json_log: JsonLog) -> None:
    await client.post("/graphql", data=b"{}", headers={"Content-Type": "text/plain", "X-Request-Id": "r-3"})

    assert json_log.access() == [access_line(requestId="r-3", status=415, errorCodes=["BAD_USER_INPUT"])]


async def test_other_paths_are_logged_without_their_query_string_and_without_long_numbers(
    client: TestClient, json_log: JsonLog,
) -> None:
    await client.get("/healthz", params={"pesel": PESEL}, headers={"X-Request-Id": "r-4"})
    await client.get(f"/customers/{PESEL}", headers={"X-Request-Id": "r-5"})

    assert json_log.access() == [access_line(requestId="r-4", method="GET", path="/healthz"),
                                 access_line(requestId="r-5", method="GET", path="/customers/#", status=404)]
    assert PESEL not in json_log.stream.getvalue()


@pytest.mark.parametrize("offered", ["", "has space", "x" * 129, "zażółć", "tab\there"])
async def test_a_request_id_that_is_empty_too_long_or_not_printable_ascii_is_replaced(
    client: TestClient, json_log: JsonLog, offered: str,
) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": offered.encode().decode("latin-1")})

    drawn = response.headers["X-Request-Id"]
    assert (len(drawn), set(drawn) <= set("0123456789abcdef")) == (32, True)
    assert [line["requestId"] for line in json_log.access()] == [drawn]


async def test_a_request_id_of_128_printable_characters_is_kept(client: TestClient) -> None:
    offered = "A-z0~!" * 21 + "12"

    response = await client.get("/healthz", headers={"X-Request-Id": offered})

    assert response.headers["X-Request-Id"] == offered


async def test_without_a_request_id_one_is_drawn_and_sent_back(client: TestClient, json_log: JsonLog) -> None:
    response = await client.get("/healthz")

    assert [line["requestId"] for line in json_log.access()] == [response.headers["X-Request-Id"]]


async def test_lines_logged_while_serving_a_request_carry_its_id(client: TestClient, json_log: JsonLog) -> None:
    await client.post("/graphql", json={"query": "{ noSuchField }"}, headers={"X-Request-Id": "r-6"})

    assert [(line["logger"], line["message"], line["requestId"]) for line in json_log.lines()] == [
        ("schema.errors", "request refused: invalid document or variables", "r-6"),
        ("case_repository.access", "request", "r-6")]


async def test_the_audit_record_of_a_request_carries_its_request_id(
    client: TestClient, services: Services,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    await client.post("/graphql", json={"query": FIND_CASE, "variables": {"id": "CASE-1"}},
                      headers={**bearer(), "X-Request-Id": "req-audit-1"})
    await client.post("/graphql", json={"query": "{ __typename }"},
                      headers={"Authorization": "Bearer not-a-jwt", "X-Request-Id": "req-audit-2"})

    records = (await services.audit.trail(first=2)).records
    assert [(r["action"], r["operation"], r["requestId"]) for r in records] == [
        ("AUTHENTICATION_FAILED", "http", "req-audit-2"), ("READ", "FindCase", "req-audit-1")]
    assert (await services.audit.verify()).ok


async def test_an_auditor_reads_the_request_id_in_the_trail(client: TestClient, services: Services) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    await client.post("/graphql", json={"query": FIND_CASE, "variables": {"id": "CASE-1"}},
                      headers={**bearer(), "X-Request-Id": "req-read-1"})

    response = await client.post(
        "/graphql", json={"query": '{ auditTrail(caseId: "CASE-1") { edges { node { operation requestId } } } }'},
        headers={**bearer(roles=("auditor",)), "X-Request-Id": "req-trail"})

    assert await response.json() == {"data": {"auditTrail": {"edges": [
        {"node": {"operation": "FindCase", "requestId": "req-read-1"}},
        {"node": {"operation": "applyEvents", "requestId": None}}]}}}


async def test_records_written_outside_a_request_have_no_request_id(services: Services) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    records = (await services.audit.trail(first=5)).records
    assert [r.get("requestId") for r in records] == [None] * len(records)
