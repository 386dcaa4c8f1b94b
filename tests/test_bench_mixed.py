"""The mixed-load bench counts every failed answer as an error, and a run with any error fails: fed fake answers
(a 500, a body with GraphQL errors, a null case, an ingest that was not applied, a subscription's error frame)."""
from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bench.mixed_client import (CASE_DETAIL, INGEST, LIST, PUSH, READ, Client, Tally, frame_error,
                                request_error)
from bench.mixed_load import MixedLoad
from bench.serving import serve


def test_an_answer_is_an_error_unless_it_is_200_without_errors_and_with_the_expected_data() -> None:
    assert request_error(READ, 200, {"data": {"case": {"id": "CASE-000001"}}}) is None
    assert request_error(LIST, 200, {"data": {"cases": {"edges": []}}}) is None
    assert request_error(INGEST, 200, {"data": {"publishCaseEvent": {"status": "APPLIED"}}}) is None

    assert request_error(READ, 500, {"data": {"case": {"id": "CASE-000001"}}}) == "case detail read: HTTP 500"
    assert request_error(READ, 200, None) == "case detail read: not a JSON object"
    assert request_error(LIST, 200, {"data": None, "errors": [{"message": "boom"}]}) == \
        'list page: [{"message":"boom"}]'
    assert request_error(READ, 200, {"data": {"case": None}}) == 'case detail read: no case in {"case":null}'
    assert request_error(INGEST, 200, {"data": {"publishCaseEvent": {"status": "DUPLICATE"}}}) == \
        'ingest (publishCaseEvent): not applied: {"publishCaseEvent":{"status":"DUPLICATE"}}'


def test_a_subscription_frame_is_an_error_when_it_ends_the_subscription_or_carries_errors() -> None:
    assert frame_error({"type": "next", "payload": {"data": {"caseUpdated": {"title": "t"}}}}) is None
    assert frame_error({"type": "error", "id": "1", "payload": [{"message": "no"}]}) == \
        'push delivery: error frame {"type":"error","id":"1","payload":[{"message":"no"}]}'
    assert frame_error({"type": "complete", "id": "1"}) == 'push delivery: complete frame {"type":"complete","id":"1"}'
    assert frame_error({"type": "next", "payload": {"data": None, "errors": [{"message": "x"}]}}) == \
        'push delivery: [{"message":"x"}]'


async def test_a_client_counts_fake_failing_answers_and_the_run_fails() -> None:
    answers = iter([
        (500, b"Internal Server Error"),
        (200, orjson.dumps({"data": None, "errors": [{"message": "boom", "extensions": {"code": "INTERNAL"}}]})),
        (200, orjson.dumps({"data": {"case": {"id": "CASE-000000"}}})),
    ])

    async def graphql(request: web.Request) -> web.Response:
        status, body = next(answers)
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/graphql", graphql)
    async with serve(app) as url:
        client = Client({"url": url, "reader": "Bearer r", "publisher": "Bearer p", "cases": ["CASE-000000"],
                         "watched": [], "seed": 1, "index": 0})
        async with aiohttp.ClientSession() as session:
            body: dict[str, Any] = {"query": CASE_DETAIL, "variables": {"id": "CASE-000000"}}
            results = [await client._post(session, READ, body, client.reader) for _ in range(3)]

    assert results[:2] == [None, None] and results[2] is not None and results[2] > 0
    assert client.tally.errors == {READ: 2, LIST: 0, INGEST: 0, PUSH: 0}
    assert client.tally.samples == ["case detail read: HTTP 500",
                                    'case detail read: [{"message":"boom","extensions":{"code":"INTERNAL"}}]']

    merged = Tally.merged([client.tally.as_json(), Tally().as_json()])
    run = MixedLoad(merged, 60.0, 2, 1.0, 100.0, 100.0, 110.0, 30.0, subscriptions=200)
    assert run.errors == 2
    assert (run.ratio().measured, run.ratio().met) == (2.0, False)
    assert "=> Mixed load errors over 60 s (reads, lists, ingest, 200 subscriptions): 2 (target = 0) MISSED" in \
        run.report()

    clean = MixedLoad(Tally(), 60.0, 2, 1.0, 100.0, 100.0, 110.0, 30.0, subscriptions=200)
    assert (clean.errors, clean.ratio().met) == (0, True)
    failed_client = MixedLoad(Tally(), 60.0, 2, 1.0, 100.0, 100.0, 110.0, 30.0, subscriptions=200,
                              client_failures=["RuntimeError: gone"])
    assert failed_client.errors == 1
