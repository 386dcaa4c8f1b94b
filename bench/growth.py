"""Growth (issue 14): how three reads cost as the store grows from 1,000 to 10,000 cases on the wire server, and at
100,000 cases on mongomock.

The reads: a filtered page (`cases(filter: {status, open}, first: 20)` with its total), the customer 360 of a
customer who holds 500 cases at every size (summary, first page of cases, timeline page), and `customerByPesel`
for that customer. Each is timed in process (`schema.execute` of the app's own schema, the bench caller's
token scope), the median of a few requests after one warm-up, so the store's cost is not hidden by HTTP.

Seeding through the pipeline on the wire server would take minutes (it writes ~100 events/s, R4), and sealed
fields are bound to their document (stores/protection.py), so documents cannot be cloned under new ids. So the
events go through the pipeline on mongomock, and the case, history and task documents it wrote are copied as
they are into the wire server's database, whose indexes the app's startup creates. The journal, outbox and
audit records are not copied: these reads do not touch them.

100,000 cases do not fit the wire server in a bench run: one pipeline on one mongomock store slows as its
collections grow (the journal lookups scan them per batch: 12,600 cases took 78 s, and it kept slowing), and
10,000 cases seeded and copied into the wire server took 172 s at load average 5. So that size runs on mongomock
only (the table's store column says so), seeded in chunks of CHUNK_CASES cases, each through the pipeline on a
fresh mongomock store in a worker process (the events of a case are the same as in one long run, so are its
documents), and the chunks' case, history and task documents inserted as they are into one store.
BENCH_GROWTH_SIZES (e.g. "1000,10000") picks sizes: the 100,000 row takes many minutes.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
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

SIZES = (1_000, 10_000, 100_000)
# The store each size runs on when the wire server is installed: 100,000 cases on mongomock only (see above).
MONGOMOCK_ONLY = frozenset({100_000})
CHUNK_CASES = 2_000  # a chunk's pipeline stays near the empty store's rate
SEED_PROCESSES = max(1, min(2, os.cpu_count() or 1))
TARGET_CASES = 500  # the 360's customer holds this many at every size
TARGET_CUSTOMER, TARGET_PESEL, OTHER_PESEL = "CUST-TARGET", "85031207819", "90072412344"
REQUESTS = 3
# A read whose warm-up took longer than this is timed once, not REQUESTS times: at 100,000 cases on mongomock the
# 360 took 63 s a request (load average 5), and three more would add minutes for the same number.
SLOW_MS = 5_000.0
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


def _events(count: int, first: int = 0) -> list[dict[str, Any]]:
    """Cases `first` to `first + count - 1` of a seed: the first TARGET_CASES are the target customer's, the rest
    spread over 97 others."""
    events = []
    for number in range(first, first + count):
        # 20 s apart: minutes apart, case 43,000 on would be more than a day ahead of the clock (the pipeline
        # refuses such events).
        script = CaseScript(f"CASE-{number:06d}", START + timedelta(seconds=20 * number))
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


SETTINGS = Settings(demo_data=False, response_cache_seconds=0.0)


async def _chunk_documents(first: int, count: int) -> dict[str, list[dict[str, Any]]]:
    """The case, history and task documents the pipeline writes for cases `first`.. on a fresh mongomock store."""
    source = store_lanes.database(MONGOMOCK, f"bench_growth_chunk_{first}")
    async with started(create_app(SETTINGS, source)) as services:
        envelopes = _events(count, first)
        for begin in range(0, len(envelopes), SEED_BATCH):
            await services.pipeline.ingest(parsed(envelopes[begin:begin + SEED_BATCH]), actor="bench")
    return {name: await source.collection(name).find({}).to_list(None) for name in COPIED}


def _seed_chunk(first: int, count: int) -> dict[str, list[dict[str, Any]]]:
    """A worker process's job: one chunk (its own event loop and store)."""
    return asyncio.run(_chunk_documents(first, count))


async def _seed_in_chunks(size: int) -> Any:
    """The app on mongomock with `size` cases, seeded in chunks by worker processes."""
    target = store_lanes.database(MONGOMOCK, f"bench_growth_{size}")
    loop = asyncio.get_running_loop()
    # Spawned, not forked: a fork of this process would inherit its running event loop.
    with ProcessPoolExecutor(SEED_PROCESSES, mp_context=multiprocessing.get_context("spawn")) as workers:
        chunks = [loop.run_in_executor(workers, _seed_chunk, first, min(CHUNK_CASES, size - first))
                  for first in range(0, size, CHUNK_CASES)]
        for chunk in asyncio.as_completed(chunks):
            documents = await chunk
            for name in COPIED:
                for begin in range(0, len(documents[name]), COPY_BATCH * 10):
                    await target.collection(name).insert_many(documents[name][begin:begin + COPY_BATCH * 10],
                                                              ordered=False)
            del documents
    return create_app(SETTINGS, target)


def lane_of(size: int, lane: str) -> str:
    """The store `size` runs on when the bench runs on `lane`."""
    return MONGOMOCK if size in MONGOMOCK_ONLY else lane


async def _seed(size: int, lane: str) -> Any:
    """The app on `lane` with `size` cases, built by the pipeline on mongomock and copied as they are."""
    if size in MONGOMOCK_ONLY:
        return await _seed_in_chunks(size)
    settings = SETTINGS
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
    timings: list[float] = []
    requests = REQUESTS
    attempt = 0
    while attempt <= requests:
        context = bench_context(app[SERVICES])
        began = time.perf_counter()
        result = await schema.execute(query, variable_values=variables, context_value=context)
        elapsed = (time.perf_counter() - began) * 1000
        if result.errors or not result.data or None in result.data.values():
            raise RuntimeError(f"{query.split('{')[0].strip()} failed: {result.errors or result.data}")
        if attempt:  # the first one warms caches and the connection pool
            timings.append(elapsed)
        elif elapsed > SLOW_MS:
            requests = 1
        attempt += 1
    return statistics.median(timings), result.data


async def measure(sizes: tuple[int, ...] = SIZES, lane: str = WIRE) -> dict[tuple[str, str], list[float | None]]:
    """Milliseconds per request of each read at each size, per (read, store): None where a size ran on another store."""
    table: dict[tuple[str, str], list[float | None]] = {}
    counted: dict[str, list[int]] = {}
    for index, size in enumerate(sizes):
        store = lane_of(size, lane)
        began = time.perf_counter()
        app = await _seed(size, store)
        print(f"  ({size:,} cases seeded on the {store} in {time.perf_counter() - began:.0f} s)", flush=True)
        async with started(app):
            for label, (query, variables) in QUERIES.items():
                milliseconds, data = await _median_ms(app, query, variables)
                table.setdefault((label, store), [None] * len(sizes))[index] = milliseconds
                counted.setdefault(label, []).append(_total_count(data))
        del app
    print(f"  (totalCount per read and size: {counted})")
    return table


def _total_count(data: dict[str, Any]) -> int:
    """The first totalCount in a result: the read found as many cases as the seed holds for it."""
    value = next(iter(data.values()))
    return value["totalCount"] if "totalCount" in value else value["cases"]["totalCount"]


def chosen_sizes() -> tuple[int, ...]:
    """SIZES, or those BENCH_GROWTH_SIZES names (e.g. "1000,10000": the 100,000 row's seeding alone takes minutes)."""
    named = os.environ.get("BENCH_GROWTH_SIZES", "")
    return tuple(size for size in SIZES if str(size) in named.replace("_", "").split(",")) if named else SIZES


async def run() -> None:
    lane = WIRE if store_lanes.available(WIRE) else MONGOMOCK
    began = time.perf_counter()
    chosen = chosen_sizes()
    table = await measure(chosen, lane)
    sizes = " / ".join(f"{size:,}" for size in chosen)
    print(f"Growth: ms per request (median of {REQUESTS}, or 1 when one takes over {SLOW_MS / 1000:.0f} s; in process) "
          f"at {sizes} cases, per store; "
          f"- where a size ran on the other store ({time.perf_counter() - began:.0f} s with seeding)")
    for (label, store), values in table.items():
        print(f"  {label:<52} {store:<12} "
              + " / ".join("-" if value is None else f"{value:,.1f}" for value in values) + " ms")


if __name__ == "__main__":
    asyncio.run(run())
