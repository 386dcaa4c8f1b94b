"""R3: store round trips of `cases(first: N)` with nested customer summary, tasks and incidents.

Counts Database.round_trips (stores/database.py) for N = 1, 10, 100, 500 over 600 cases of 60 customers.
Target: the same count for every N, and at most 4.
"""
from __future__ import annotations

import asyncio
import time

from bench.caller import bench_context, graphql_schema
from bench.events import many_cases, parsed
from bench import store_lanes
from bench.report import Ratio
from bench.store_lanes import MONGOMOCK, tagged
from server import SERVICES, create_app
from settings import Settings

CASES = 600
CUSTOMERS = 60
BATCH = 500
PAGE_SIZES = (1, 10, 100, 500)
MAX_ROUND_TRIPS = 4

QUERY = """
query CaseList($first: Int!) {
  cases(first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id status
      customer { id name summary { open } }
      tasks { id state }
      incidents { id state }
    } }
  }
}
"""


async def run(lane: str = MONGOMOCK) -> Ratio:
    database = store_lanes.database(lane, "bench_r3")
    app = create_app(Settings(demo_data=False), database)
    services = app[SERVICES]
    await services.cases.ensure_indexes()
    await services.events.ensure_indexes()
    events = parsed(many_cases(CASES, CUSTOMERS))
    for start in range(0, len(events), BATCH):
        await services.pipeline.ingest(events[start:start + BATCH])
    schema = graphql_schema(app)
    print(f"R3 store round trips of cases(first: N) with customer {{ summary {{ open }} }}, tasks, incidents "
          f"({CASES} cases, {CUSTOMERS} customers) on the {lane}")
    counts = []
    for first in PAGE_SIZES:
        database.round_trips.reset()
        started = time.perf_counter()
        result = await schema.execute(QUERY, variable_values={"first": first}, context_value=bench_context(services))
        elapsed_ms = (time.perf_counter() - started) * 1000
        if result.errors:
            raise RuntimeError(f"cases(first: {first}) failed: {result.errors}")
        edges = result.data["cases"]["edges"]
        if len(edges) != first:
            raise RuntimeError(f"cases(first: {first}) returned {len(edges)} cases")
        trips = database.round_trips
        counts.append(trips.count)
        operations = ", ".join(f"{name} {n}" for name, n in sorted(trips.by_operation.items()))
        print(f"  N = {first:>3}: {trips.count} round trips ({operations}); {elapsed_ms:,.1f} ms in process")
    worst = max(counts)
    constant = len(set(counts)) == 1
    ratio = Ratio(tagged("R3 round trips, worst N", lane), worst, f"constant, <= {MAX_ROUND_TRIPS}",
                  constant and worst <= MAX_ROUND_TRIPS, value_format="d")
    print(f"  => {ratio.line()}" + ("" if constant else f"; counts by N: {counts}"))
    return ratio


if __name__ == "__main__":
    asyncio.run(run())
