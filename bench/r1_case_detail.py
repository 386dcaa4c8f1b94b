"""R1: requests/s of a case-detail GraphQL query over HTTP, against a plain aiohttp handler returning the same bytes.

Both servers run in this process on 127.0.0.1 and read the same case from the same store; the load
generator (bench/load.py: wrk when present) runs in processes of its own on the other CPU. Rounds of 10 s
alternate GraphQL and plain, 3 each; the ratio is of the median rounds. Server CPU per request counts this
process and, on the wire lane, the wire server. Target: GraphQL / plain >= 0.5 with every request executed. As
deployed, repeats are response-cache hits, and the plain handler then keeps its answers as long (a dictionary by
request body): that ratio has no target, it says what a hit's token check, row scope and audit record cost.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp
import orjson
from aiohttp import web

import garbage_collector
from access.scope import case_scope
from bench.caller import bench_context, bench_principal, bench_token, graphql_schema
from bench.events import detailed_case, parsed
from bench.load import LoadResult, generator_name, measure_rate, median_rate, pinned_to_cpu, spread, total
from bench.report import Ratio, rate_line, ratio_line
from bench import store_lanes
from bench.serving import serve
from bench.store_lanes import MONGOMOCK, tagged
from context import Services
from resolvers.pagination import encode_cursor
from server import SERVICES, create_app
from settings import Settings
from stores.case_scope import CaseScope

CASE_ID = "CASE-2026-000123"
HISTORY_PAGE = 20
CONCURRENCY = 32
ROUNDS = 3  # GraphQL and plain alternate, so a busy neighbour on the machine slows both alike
WARMUP_SECONDS = 1.0
DURATION_SECONDS = 10.0  # issue 14: 2-second rounds swung from 420 to 3,000 req/s on this shared machine
IN_PROCESS_REQUESTS = 300
TARGET = 0.5

QUERY = """
query CaseDetail($id: ID!) {
  case(id: $id) {
    id caseType title status stage channel branch sourceSystem createdAt updatedAt closedAt outcome version
    hasOpenIncident
    customer { id name segment }
    product { code name amount currency }
    participants { id role name }
    documents { id name kind status participantId url required }
    tasks { id name formKey candidateGroups assignee participantId dueAt state }
    incidents { id kind message service retryable at state }
    history(first: 20) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id kind actor { type id name } channel at summary } }
    }
  }
}
"""


def _pick(doc: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: doc.get(name) for name in names}


def render_case(doc: dict[str, Any], chosen: list[dict[str, Any]], has_next: bool, total: int) -> dict[str, Any]:
    """What a hand-written REST handler would return for QUERY: same keys, same order, same values; `chosen` is the
    newest page of the case's `total` history rows."""
    cursors = [encode_cursor(entry["at"], entry["id"]) for entry in chosen]
    product = doc.get("product")
    case = {
        "id": doc["_id"], **_pick(doc, "caseType", "title", "status", "stage", "channel", "branch", "sourceSystem",
                                   "createdAt", "updatedAt", "closedAt", "outcome", "version"),
        "hasOpenIncident": bool(doc.get("hasOpenIncident")),
        "customer": _pick(doc["customer"], "id", "name", "segment"),
        "product": _pick(product, "code", "name", "amount", "currency") if product else None,
        "participants": [_pick(p, "id", "role", "name") for p in doc.get("participants", [])],
        "documents": [_pick(d, "id", "name", "kind", "status", "participantId", "url", "required")
                      for d in doc.get("documents", [])],
        "tasks": [{**_pick(t, "id", "name", "formKey"), "candidateGroups": t.get("candidateGroups") or [],
                   **_pick(t, "assignee", "participantId", "dueAt", "state")} for t in doc.get("tasks", [])],
        "incidents": [_pick(i, "id", "kind", "message", "service", "retryable", "at", "state")
                      for i in doc.get("incidents", [])],
        "history": {
            "totalCount": total,
            "pageInfo": {"hasNextPage": has_next,
                         "endCursor": cursors[-1] if cursors else None},
            "edges": [{"cursor": cursor, "node": {
                "id": entry["id"], "kind": entry["kind"],
                "actor": _pick(entry["actor"], "type", "id", "name"),
                "channel": entry.get("channel"), "at": entry["at"], "summary": entry["summary"],
            }} for entry, cursor in zip(chosen, cursors)],
        },
    }
    return {"data": {"case": case}}


async def read_case(services: Services, case_id: str, scope: CaseScope) -> bytes:
    """The plain handler's work: the case (with its task rows), its newest history rows, orjson."""
    doc = await services.cases.get(case_id, scope=scope)
    assert doc is not None
    chosen, has_next = await services.history.page([case_id], HISTORY_PAGE)
    return orjson.dumps(render_case(doc, chosen, has_next, await services.history.count([case_id])))


def plain_app(services: Services, scope: CaseScope, canned: bytes, cache_seconds: float = 0.0) -> web.Application:
    """The baseline: parse the same request body, read the case and its history page from the same stores, encode
    with orjson.

    It reads with the bench caller's row scope (the same store filter the API applies), worked out once:
    no token check, no audit record. With `cache_seconds`, it keeps each answer that long by request body, as
    the API's response cache keeps its answers, so a repeated request is a dictionary lookup. `/canned` answers
    with fixed bytes and no work: its rate is the ceiling of this load generator.
    """
    cached: dict[bytes, tuple[float, bytes]] = {}

    async def case_detail(request: web.Request) -> web.Response:
        raw = await request.read()
        hit = cached.get(raw)
        if hit is not None and hit[0] > time.monotonic():
            return web.Response(body=hit[1], content_type="application/json")
        body = orjson.loads(raw)
        answer = await read_case(services, body["variables"]["id"], scope)
        if cache_seconds:
            cached[raw] = (time.monotonic() + cache_seconds, answer)
        return web.Response(body=answer, content_type="application/json")

    async def canned_answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=canned, content_type="application/json")

    app = web.Application()
    app.router.add_post("/case", case_detail)
    app.router.add_post("/canned", canned_answer)
    return app


async def _per_request_ms(app: web.Application, request: dict[str, Any]) -> tuple[float, float]:
    """In-process time per request: the app's schema.execute, and the plain handler's read + render."""
    services, schema = app[SERVICES], graphql_schema(app)
    scope = case_scope(bench_principal(services.settings))
    variables = request["variables"]

    async def execute() -> None:
        result = await schema.execute(QUERY, variable_values=variables, context_value=bench_context(services))
        if result.errors:
            raise RuntimeError(f"schema.execute failed: {result.errors}")

    async def plain() -> None:
        await read_case(services, variables["id"], scope)

    timings = []
    for run in (execute, plain):
        for _ in range(20):
            await run()
        started = time.perf_counter()
        for _ in range(IN_PROCESS_REQUESTS):
            await run()
        timings.append((time.perf_counter() - started) * 1000 / IN_PROCESS_REQUESTS)
    return timings[0], timings[1]


async def run(lane: str = MONGOMOCK) -> list[Ratio]:
    """Twice: with the response cache off (every request executes) and as deployed (repeats are cache hits)."""
    return [await run_once(cached=False, lane=lane), await run_once(cached=True, lane=lane)]


async def run_once(*, cached: bool, lane: str = MONGOMOCK) -> Ratio:
    settings = Settings(demo_data=False, response_cache_seconds=30.0 if cached else 0.0)
    database = store_lanes.database(lane, f"bench_r1_{'cached' if cached else 'executed'}")
    app = create_app(settings, database)
    services = app[SERVICES]
    request = {"query": QUERY, "operationName": "CaseDetail", "variables": {"id": CASE_ID}}
    body = orjson.dumps(request)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {bench_token(settings)}"}
    scope = case_scope(bench_principal(settings))
    with pinned_to_cpu(0):  # the load generator pins itself to the last CPU
        async with serve(app) as graphql_url:
            await services.pipeline.ingest(parsed(detailed_case(CASE_ID)))
            garbage_collector.settle_after_startup()  # as server.serve does; both servers live in this process
            graphql_body = await _post_once(graphql_url + "/graphql", body, headers)
            payload = orjson.loads(graphql_body)
            if "errors" in payload or payload.get("data", {}).get("case") is None:
                raise RuntimeError(f"the case-detail query failed: {payload}")
            async with serve(plain_app(services, scope, graphql_body, settings.response_cache_seconds)) as plain_url:
                results = await _measure(graphql_url, plain_url, body, headers, len(graphql_body),
                                         [os.getpid(), *store_lanes.store_pids(lane)])
                plain_body = await _post_once(plain_url + "/case", body, headers)
            execute_ms, plain_ms = await _per_request_ms(app, request)
    if plain_body != graphql_body:
        raise RuntimeError("the plain handler's body differs from the GraphQL body: the comparison is void")
    return _print(*results, len(graphql_body), _count_fields(payload), execute_ms, plain_ms, cached, lane)


async def _measure(graphql_url: str, plain_url: str, body: bytes, headers: dict[str, str],
                   expected_length: int, server_pids: list[int]
                   ) -> tuple[list[LoadResult], list[LoadResult], LoadResult]:
    """GraphQL and plain in alternating rounds, then one round of the load generator's ceiling."""
    load: dict[str, Any] = dict(body=body, headers=headers, concurrency=CONCURRENCY, warmup=WARMUP_SECONDS,
                                duration=DURATION_SECONDS, expected_length=expected_length, server_pids=server_pids)
    graphql: list[LoadResult] = []
    plain: list[LoadResult] = []
    for _ in range(ROUNDS):
        graphql.append(await measure_rate(graphql_url + "/graphql", **load))
        plain.append(await measure_rate(plain_url + "/case", **load))
    ceiling = await measure_rate(plain_url + "/canned", **load)
    return graphql, plain, ceiling


async def _post_once(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return await response.read()


def _count_fields(value: Any) -> int:
    """Keys of every object in a GraphQL result; all but the top-level `data` are resolved fields."""
    if isinstance(value, dict):
        return sum(1 + _count_fields(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_fields(v) for v in value)
    return 0


def _print(graphql_rounds: list[LoadResult], plain_rounds: list[LoadResult], ceiling: LoadResult, size: int,
           fields: int, execute_ms: float, plain_ms: float, cached: bool, lane: str = MONGOMOCK) -> Ratio:
    graphql, plain = total(graphql_rounds), total(plain_rounds)
    measured = median_rate(graphql_rounds) / median_rate(plain_rounds)
    mode = ("response cache on, repeats are hits; the plain handler caches too" if cached
            else "response cache off, every request executes")
    # Issue 14 sets a target for executed reads; a hit (token, scope, audit record) against a dictionary lookup
    # is printed for what it is.
    ratio = (Ratio(tagged(f"R1 GraphQL / plain req/s ({mode})", lane), measured, "none: informative", True)
             if cached else
             Ratio(tagged(f"R1 GraphQL / plain req/s ({mode})", lane), measured, f">= {TARGET}", measured >= TARGET))
    print(f"R1 case detail over HTTP ({mode}) on the {lane}: {size:,} identical bytes, {fields - 1} resolved "
          f"fields, {CONCURRENCY} connections, {ROUNDS} alternating rounds of {DURATION_SECONDS:.0f} s each, "
          f"server and load generator ({generator_name()}) on separate CPUs")
    print(rate_line("GraphQL POST /graphql (create_app), median", median_rate(graphql_rounds), "req/s"))
    print(f"    {spread(graphql_rounds)}")
    print(rate_line("plain aiohttp handler (case + history + orjson)" if not cached else
                    "plain aiohttp handler (the same, answers kept 30 s)", median_rate(plain_rounds), "req/s"))
    print(f"    {spread(plain_rounds)}")
    print(rate_line("(load generator ceiling: canned bytes, no work)", ceiling.rate, "req/s"))
    print(f"    {spread([ceiling])}")
    if graphql.failures or plain.failures or ceiling.failures:
        raise RuntimeError(f"failed responses: GraphQL {graphql.failures}, plain {plain.failures}, "
                           f"canned {ceiling.failures}")
    print(f"  in process: schema.execute {execute_ms:.2f} ms/request, "
          f"plain read + render {plain_ms:.3f} ms/request")
    print(ratio_line(ratio))
    return ratio


if __name__ == "__main__":
    asyncio.run(run())
