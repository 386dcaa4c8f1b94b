"""A 60-second mixed load (issue 14 item 5): case-detail reads, list pages and ingest at once, with 200 live
`caseUpdated` subscriptions receiving the ingested changes. `python -m bench.mixed_load`; `run()` from run_all.

- The server: one app process as `python server.py` builds it (`create_app` with the default Settings but demo data,
  mongomock store, the response cache on as deployed, logs to a file), pinned to the first CPU, seeded with
  CASES cases through the pipeline (bench/events.py `many_cases`, batches of 2,000 events), then served.
- The load: CLIENT_PROCESSES client processes on the other CPU(s), CONNECTIONS HTTP workers in all, each looping
  over a weighted draw: 70 % case detail (R1's 326-field query) of a random case of the CASES, 20 % a list page
  (`cases(filter:…, first: 20)`, one of several filters, one of 97 customers for the customer filter), 10 %
  `publishCaseEvent` (a `case.updated` titled with a fresh marker) on one of the SUBSCRIPTIONS watched cases,
  round robin. Every watched case has one graphql-transport-ws subscription in the process that ingests it, so a
  push's delivery time is from just before the mutation is sent to the frame's arrival, on one clock.
- Before the clock starts each subscription has had a push (they are lazy), so none is missed for that reason.
- Errors, which must be 0 (the bench exits 1 and run_all marks it FAILED otherwise): any non-200 answer, a body
  with GraphQL `errors` or without the expected data, an ingest that is not APPLIED, an `error`/`complete` frame
  on a subscription, a push that has not arrived DRAIN_SECONDS after the load stops, or a client exception.
- Reported: throughput, p50 / p99 per operation kind, pushes received, the server's RSS (VmRSS) after seeding, at
  the start and at the end, its CPU seconds, and the generator's (each client's own rusage over the load).
The client processes are bench/mixed_client.py.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.events import many_cases, parsed
from bench.load import _generator_cpus, pin_to_cpu, process_cpu
from bench.mixed_client import CUSTOMERS, INGEST, LIST, PUSH, READ, Tally, _say, client_main
from bench.report import Ratio, ratio_line
from bench.serving import start_child

CASES = 1_000
SUBSCRIPTIONS = 200
SECONDS = 60.0
CONNECTIONS = 16
CLIENT_PROCESSES = 2
SEED_BATCH = 2_000
PROFILE_VARIABLE = "BENCH_MIXED_PROFILE"  # a file path: the server runs under cProfile and writes its top there


def case_ids(count: int = CASES) -> list[str]:
    """The ids `many_cases` gives its cases."""
    return [f"CASE-{number:06d}" for number in range(count)]


# --- the server process ----------------------------------------------------------------------------------------

async def serve_main(cases: int, log_path: str) -> None:
    """Seed, serve until stdin closes. Logs as deployed (JSON lines), into `log_path` so stdout stays ours."""
    from aiohttp import web

    from logs import configure_logging
    from server import SERVICES, create_app
    from settings import Settings
    from stores.database import connect

    pin_to_cpu(0)
    settings = Settings(demo_data=False)
    configure_logging(settings.log_level)
    log_file = open(log_path, "a", buffering=1)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    app = create_app(settings, connect(None, "bench_mixed"))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    began = time.perf_counter()
    envelopes = many_cases(cases, CUSTOMERS)
    pipeline = app[SERVICES].pipeline
    for begin in range(0, len(envelopes), SEED_BATCH):
        await pipeline.ingest(parsed(envelopes[begin:begin + SEED_BATCH]), actor="bench")
    await app[SERVICES].relay.relay_due()
    seeded = time.perf_counter() - began
    # As server.serve does once startup (demo data included) is done.
    gc.collect()
    gc.freeze()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    _say({"url": f"http://{host}:{port}", "seedSeconds": seeded, "events": len(envelopes)})
    profile_path = os.environ.get(PROFILE_VARIABLE)
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    finally:
        if profiler is not None and profile_path:
            profiler.disable()
            with open(profile_path, "w") as out:
                stats = pstats.Stats(profiler, stream=out).strip_dirs()
                stats.sort_stats("tottime").print_stats(40)
                stats.sort_stats("cumulative").print_stats(60)
        await runner.cleanup()


# --- the parent --------------------------------------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    """The process's resident set (VmRSS) in MB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile_ms(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")
               or line.startswith(name + "{"))


@dataclass
class MixedLoad:
    """The run's measurements, with `report()` printing the table."""

    tally: Tally
    seconds: float
    clients: int
    seed_seconds: float
    rss_seeded: float
    rss_start: float
    rss_end: float
    server_cpu: float
    subscriptions: int = SUBSCRIPTIONS
    cache_hits: float = 0.0
    cache_misses: float = 0.0
    coalesced: float = 0.0
    client_failures: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.tally.error_count + len(self.client_failures)

    def ratio(self) -> Ratio:
        return Ratio(f"Mixed load errors over {self.seconds:.0f} s (reads, lists, ingest, {self.subscriptions} "
                     "subscriptions)", float(self.errors), "= 0", self.errors == 0, ".0f")

    def report(self) -> str:
        requests = sum(len(self.tally.latencies[kind]) + self.tally.errors[kind] for kind in (READ, LIST, INGEST))
        lines = [f"  {'operation':<28} {'count':>8} {'per s':>8} {'p50 ms':>8} {'p99 ms':>9} {'errors':>7}"]
        for kind in (READ, LIST, INGEST, PUSH):
            done = self.tally.latencies[kind]
            lines.append(f"  {kind:<28} {len(done):>8,} {len(done) / self.seconds:>8.1f} "
                         f"{percentile_ms(done, 0.5):>8.1f} {percentile_ms(done, 0.99):>9.1f} "
                         f"{self.tally.errors[kind]:>7}")
        served = self.cache_hits + self.cache_misses
        cached = f"{self.cache_hits / served:.0%}" if served else "n/a"
        generator_cores = len(_generator_cpus())
        lines += [
            f"  total: {requests / self.seconds:,.1f} HTTP requests/s ({requests:,} in {self.seconds:.1f} s); "
            f"{len(self.tally.latencies[PUSH]):,} pushes received of {self.tally.pushes_expected:,} ingested "
            f"changes on watched cases (+{self.tally.other_pushes} untimed; {self.coalesced:.0f} coalesced)",
            f"  response cache: {cached} of the cacheable requests answered from it "
            f"({self.cache_hits:,.0f} hits, {self.cache_misses:,.0f} executed)",
            f"  server: RSS {self.rss_seeded:,.0f} MB after seeding ({self.seed_seconds:.0f} s), "
            f"{self.rss_start:,.0f} MB at the start, {self.rss_end:,.0f} MB at the end; CPU {self.server_cpu:.1f} s "
            f"({self.server_cpu / self.seconds:.0%} of a core, "
            f"{self.server_cpu * 1000 / requests if requests else 0:.2f} ms per HTTP request)",
            f"  generator: {self.clients} client processes on {generator_cores} CPU(s), "
            f"CPU {self.tally.cpu_seconds:.1f} s ({self.tally.cpu_seconds / self.seconds:.0%} of a core)",
        ]
        for sample in self.tally.samples + self.client_failures:
            lines.append(f"  error: {sample}")
        lines.append(ratio_line(self.ratio()))
        return "\n".join(lines)


async def _start_server(cases: int) -> tuple[asyncio.subprocess.Process, dict[str, Any], str]:
    log = tempfile.NamedTemporaryFile(prefix="bench-mixed-server-", suffix=".log", delete=False)
    process, started = await start_child("bench.mixed_load", "--serve", "--cases", str(cases), "--log", log.name,
                                         name=f"mixed-load server (see {log.name})")
    return process, started, log.name


async def measure(seconds: float = SECONDS, cases: int = CASES, subscriptions: int = SUBSCRIPTIONS,
                  connections: int = CONNECTIONS, clients: int = CLIENT_PROCESSES) -> MixedLoad:
    from tests.factories import token

    from bench.caller import bench_token
    from settings import Settings

    server, started, log_path = await _start_server(cases)
    processes: list[asyncio.subprocess.Process] = []
    try:
        url = started["url"]
        rss_seeded = rss_mb(server.pid)
        reader = f"Bearer {bench_token(Settings(demo_data=False))}"
        publisher = "Bearer " + token(roles=("back-office", "case-reader", "system-publisher"), channel="BACK_OFFICE",
                                      username="mixed.bench")
        ids = case_ids(cases)
        # The watched cases spread over the seed (every fifth of 1,000), each client its share.
        step = max(1, cases // subscriptions)
        watched = ids[::step][:subscriptions]
        cpus = _generator_cpus()
        for index in range(clients):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.mixed_load", "--client", str(cpus[index % len(cpus)]),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            assert process.stdin is not None
            process.stdin.write(orjson.dumps({
                "url": url, "reader": reader, "publisher": publisher, "cases": ids, "watched": watched[index::clients],
                "connections": max(1, connections // clients), "seconds": seconds, "seed": 14_000 + index,
                "index": index}) + b"\n")
            await process.stdin.drain()
            processes.append(process)
        failures: list[str] = []
        for process in processes:
            assert process.stdout is not None
            ready = orjson.loads(await process.stdout.readline() or b'{"failed": "exited before it was ready"}')
            if "failed" in ready:
                failures.append(ready["failed"])
        if failures:
            raise RuntimeError(f"mixed load: a client could not start: {failures}")
        async with aiohttp.ClientSession() as http:
            metrics_before = await (await http.get(f"{url}/metrics")).text()
            rss_start, cpu_start = rss_mb(server.pid), process_cpu(server.pid)
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(b"go\n")
                await process.stdin.drain()
            await asyncio.sleep(seconds)
            server_cpu = process_cpu(server.pid) - cpu_start
            rss_end = rss_mb(server.pid)
            results = []
            for process in processes:
                assert process.stdout is not None
                results.append(orjson.loads(await process.stdout.readline() or b'{"failed": "no result"}'))
                await process.wait()
            metrics_after = await (await http.get(f"{url}/metrics")).text()
        client_failures = [r["failed"] for r in results if "failed" in r]
        tally = Tally.merged([r for r in results if "failed" not in r])

        def grew(name: str) -> float:
            return _metric(metrics_after, name) - _metric(metrics_before, name)

        return MixedLoad(tally, tally.seconds or seconds, clients, started["seedSeconds"], rss_seeded, rss_start,
                         rss_end, server_cpu, len(watched), grew("case_repository_response_cache_hits_total"),
                         grew("case_repository_response_cache_misses_total"),
                         grew("case_repository_push_coalesced_total"), client_failures)
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if server.stdin is not None:
            server.stdin.close()
        try:
            await asyncio.wait_for(server.wait(), 30)
        except asyncio.TimeoutError:
            server.kill()
            await server.wait()
        if server.returncode not in (0, None):
            print(f"  (the mixed-load server exited with {server.returncode}; its log: {log_path})")


class MixedLoadFailed(RuntimeError):
    """The mixed load had errors (they must be 0)."""


async def run(seconds: float = SECONDS) -> Ratio:
    began = time.perf_counter()
    print(f"Mixed load (bench/mixed_load.py): {seconds:.0f} s, {CONNECTIONS} HTTP connections from "
          f"{CLIENT_PROCESSES} client processes (70 % case detail, 20 % list pages, 10 % publishCaseEvent), "
          f"{SUBSCRIPTIONS} caseUpdated subscriptions; one app process, {CASES:,} cases on mongomock", flush=True)
    result = await measure(seconds)
    print(result.report())
    print(f"  ({time.perf_counter() - began:.0f} s with seeding and warm-up)", flush=True)
    if result.errors:
        raise MixedLoadFailed(f"{result.errors} errors in the mixed load (must be 0)")
    return result.ratio()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="be the app process (a child of the bench)")
    parser.add_argument("--client", type=int, metavar="CPU", help="be a client process on CPU (a child)")
    parser.add_argument("--cases", type=int, default=CASES)
    parser.add_argument("--log", default=os.devnull)
    parser.add_argument("--seconds", type=float, default=SECONDS, help="how long the load runs")
    parser.add_argument("--profile", metavar="PATH", help="run the server under cProfile, its top into PATH")
    args = parser.parse_args()
    if args.profile:
        os.environ[PROFILE_VARIABLE] = os.path.abspath(args.profile)
    if args.serve:
        asyncio.run(serve_main(args.cases, args.log))
        return 0
    if args.client is not None:
        client_main(args.client)
        return 0
    try:
        asyncio.run(run(args.seconds))
    except MixedLoadFailed as failed:
        print(f"  FAILED: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
