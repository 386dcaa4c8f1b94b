"""Growth (issue 14): how three reads cost as the store grows from 1,000 to 10,000 cases, on the wire server.

The reads: a filtered page (`cases(filter: {status, open}, first: 20)` with its total), the customer 360 of a
customer who holds 500 cases at every size (summary, first page of cases, timeline page), and `customerByPesel`
for that customer. Each is timed in process (`schema.execute` of the app's own schema, the bench caller's
token scope), the median of a few requests after one warm-up, so the store's cost is not hidden by HTTP.

Seeding through the pipeline on the wire server would take minutes (it writes ~100 events/s, R4), and sealed
fields are bound to their document (stores/protection.py), so documents cannot be cloned under new ids. So the
events go through the pipeline on mongomock, and the case, history and task documents it wrote are copied as
they are into the wire server's database, whose indexes the app's startup creates. The journal, outbox and
audit records are not copied: these reads do not touch them.
"""
from __future__ import annotations

import asyncio
import statistics
import time
from datetime import timedelta
from typing import Any

from bench import store_lanes
from bench.caller import bench_context, graphql_schema
from bench.events import START, CaseScript, parsed
from bench.r5_history import started
from bench.store_lanes import MONGOMOCK, WIRE
from server import SERVICES, create_app
from settings import Settings
from stores import cases as case_rows, history, tasks

SIZES = (1_000, 10_000)
TARGET_CASES = 500  # the 360's customer holds this many at every size
TARGET_CUSTOMER, TARGET_PESEL, OTHER_PESEL = "CUST-TARGET", "85031207819", "90072412344"
REQUESTS = 3
SEED_BATCH = 2_000  # fewer, larger batches: mongomock scans its collections once per batch
COPIED = (case_rows.COLLECTION, history.COLLECTION, tasks.COLLECTION)
COPY_BATCH = 1_000

FILTERED_PAGE = """
query FilteredPage { cases(filter: {status: ["IN_PROGRESS"], open: true}, first: 20) {
  totalCount edges { node { id status stage updatedAt customer { id name } } } } }
"""
CUSTOMER_360 = """
query Customer360($id: ID!) { customer(id: $id) { id name segment
  summary { open closed total byStatus { key count } byChannel { key count } lastContactAt }
  cases(first: 20) { totalCount edges { node { id status stage updatedAt } } }
  timeline(first: 20) { totalCount edges { node { id caseId at } } } } }
"""
BY_PESEL = """
query ByPesel($pesel: String!) { customerByPesel(pesel: $pesel) { id name cases(first: 20) { totalCount } } }
"""
QUERIES = {
    "filtered page, 20 of the open IN_PROGRESS cases": (FILTERED_PAGE, {}),
    f"customer 360 of a customer with {TARGET_CASES} cases": (CUSTOMER_360, {"id": TARGET_CUSTOMER}),
    "customerByPesel, the same customer": (BY_PESEL, {"pesel": TARGET_PESEL}),
}


def _events(count: int) -> list[dict[str, Any]]:
    """`count` cases: the first TARGET_CASES are the target customer's, the rest spread over 97 others."""
    events = []
    for number in range(count):
        script = CaseScript(f"CASE-{number:06d}", START + timedelta(minutes=number))
        created = script.created(number % 97 + 1)
        customer = created["data"]["customer"]
        pesel = TARGET_PESEL if number < TARGET_CASES else OTHER_PESEL
        if number < TARGET_CASES:
            customer["id"], customer["name"] = TARGET_CUSTOMER, "Target Customer"
        customer["pesel"] = created["data"]["participants"][0]["pesel"] = pesel
        events += [created, script.follow_up(1), script.follow_up(2)]
        if number % 3 == 0:
            events.append(script.follow_up(4))  # a status change: a third of the cases are IN_PROGRESS
    return events


async def _seed(size: int, lane: str) -> Any:
    """The app on `lane` with `size` cases, built by the pipeline on mongomock and copied as they are."""
    settings = Settings(demo_data=False, response_cache_seconds=0.0)
    source = store_lanes.database(MONGOMOCK, f"bench_growth_seed_{size}")
    source_app = create_app(settings, source)
    async with started(source_app) as services:
        envelopes = _events(size)
        for begin in range(0, len(envelopes), SEED_BATCH):
            await services.pipeline.ingest(parsed(envelopes[begin:begin + SEED_BATCH]), actor="bench")
    if lane == MONGOMOCK:
        return create_app(settings, source)
    target = store_lanes.database(lane, f"bench_growth_{size}")
    for name in COPIED:
        documents = await source.collection(name).find({}).to_list(None)
        for begin in range(0, len(documents), COPY_BATCH):
            await target.collection(name).insert_many(documents[begin:begin + COPY_BATCH], ordered=False)
    return create_app(settings, target)


async def _median_ms(app: Any, query: str, variables: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    schema = graphql_schema(app)
    timings = []
    for attempt in range(REQUESTS + 1):
        context = bench_context(app[SERVICES])
        began = time.perf_counter()
        result = await schema.execute(query, variable_values=variables, context_value=context)
        elapsed = (time.perf_counter() - began) * 1000
        if result.errors or not result.data or None in result.data.values():
            raise RuntimeError(f"{query.split('{')[0].strip()} failed: {result.errors or result.data}")
        if attempt:  # the first one warms caches and the connection pool
            timings.append(elapsed)
    return statistics.median(timings), result.data


async def measure(sizes: tuple[int, ...] = SIZES, lane: str = WIRE) -> dict[str, list[float]]:
    """Milliseconds per request of each read at each size."""
    table: dict[str, list[float]] = {label: [] for label in QUERIES}
    counted: dict[str, list[int]] = {}
    for size in sizes:
        app = await _seed(size, lane)
        async with started(app):
            for label, (query, variables) in QUERIES.items():
                milliseconds, data = await _median_ms(app, query, variables)
                table[label].append(milliseconds)
                counted.setdefault(label, []).append(_total_count(data))
    print(f"  (totalCount per read and size: {counted})")
    return table


def _total_count(data: dict[str, Any]) -> int:
    """The first totalCount in a result: the read found as many cases as the seed holds for it."""
    value = next(iter(data.values()))
    return value["totalCount"] if "totalCount" in value else value["cases"]["totalCount"]


async def run() -> None:
    lane = WIRE if store_lanes.available(WIRE) else MONGOMOCK
    began = time.perf_counter()
    table = await measure(SIZES, lane)
    sizes = " / ".join(f"{size:,}" for size in SIZES)
    print(f"Growth on the {lane}: ms per request (median of {REQUESTS}, in process) at {sizes} cases "
          f"({time.perf_counter() - began:.0f} s with seeding)")
    for label, values in table.items():
        print(f"  {label:<52} " + " / ".join(f"{value:,.1f}" for value in values) + " ms")


if __name__ == "__main__":
    asyncio.run(run())
