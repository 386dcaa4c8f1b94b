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
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import itertools
import logging
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
import orjson

from bench.events import many_cases, parsed
from bench.load import _generator_cpus, pin_to_cpu, process_cpu
from bench.r1_case_detail import QUERY as CASE_DETAIL
from bench.report import Ratio, ratio_line

CASES = 1_000
CUSTOMERS = 97
SUBSCRIPTIONS = 200
SECONDS = 60.0
CONNECTIONS = 16
CLIENT_PROCESSES = 2
SEED_BATCH = 2_000
DRAIN_SECONDS = 10.0  # after the load: pushes of the last ingests still on their way
WARM_SECONDS = 30.0
READ, LIST, INGEST, PUSH = "case detail read", "list page", "ingest (publishCaseEvent)", "push delivery"
MIX = ((READ, 0.70), (LIST, 0.20), (INGEST, 0.10))
ERROR_SAMPLES = 5

LIST_PAGE = """
query ListPage($filter: CaseFilter) { cases(filter: $filter, first: 20) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { id title status stage channel updatedAt hasOpenIncident customer { id name } } } } }
"""
LIST_FILTERS: tuple[dict[str, Any], ...] = (
    {"status": ["IN_PROGRESS"], "open": True},
    {"status": ["NEW"]},
    {"channel": ["BRANCH"], "open": True},
    {"caseType": ["MORTGAGE"], "hasOpenIncident": True},
    {"customerId": None},  # one of the CUSTOMERS, drawn per request
)
PUBLISH = "mutation Publish($event: CaseEventInput!) { publishCaseEvent(event: $event) { eventId status } }"
SUBSCRIPTION = """subscription Watch($id: ID!) { caseUpdated(id: $id) {
  id title status stage version updatedAt customer { id name } } }"""
SOURCE = "bench/bpms"  # the seeded events' source: the bench's updates continue the same stream
FIRST_SEQUENCE = 1_000  # above every seeded event's sequence (they go up to 4)


def case_ids(count: int = CASES) -> list[str]:
    """The ids `many_cases` gives its cases."""
    return [f"CASE-{number:06d}" for number in range(count)]


# --- what counts as an error ----------------------------------------------------------------------------------

def request_error(kind: str, status: int, body: Any) -> str | None:
    """Why an answer to a `kind` request is an error, or None when it is a good one."""
    if status != 200:
        return f"{kind}: HTTP {status}"
    if not isinstance(body, dict):
        return f"{kind}: not a JSON object"
    if body.get("errors"):
        return f"{kind}: {orjson.dumps(body['errors'][:1]).decode()[:300]}"
    data = body.get("data") or {}
    if kind == READ and not data.get("case"):
        return f"{kind}: no case in {orjson.dumps(data).decode()[:200]}"
    if kind == LIST and not isinstance((data.get("cases") or {}).get("edges"), list):
        return f"{kind}: no page in {orjson.dumps(data).decode()[:200]}"
    if kind == INGEST and (data.get("publishCaseEvent") or {}).get("status") != "APPLIED":
        return f"{kind}: not applied: {orjson.dumps(data).decode()[:200]}"
    return None


def frame_error(frame: dict[str, Any]) -> str | None:
    """Why a subscription frame is an error (an `error` or `complete` ends the subscription), or None."""
    kind = frame.get("type")
    if kind in ("error", "complete"):
        return f"{PUSH}: {kind} frame {orjson.dumps(frame).decode()[:300]}"
    if kind == "next" and (frame.get("payload") or {}).get("errors"):
        return f"{PUSH}: {orjson.dumps(frame['payload']['errors'][:1]).decode()[:300]}"
    return None


# --- a client process ----------------------------------------------------------------------------------------

@dataclass
class Tally:
    """What one client process measured: latencies (seconds) and errors per operation kind."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in (READ, LIST, INGEST, PUSH)})
    errors: dict[str, int] = field(default_factory=lambda: {k: 0 for k in (READ, LIST, INGEST, PUSH)})
    samples: list[str] = field(default_factory=list)
    pushes_expected: int = 0
    other_pushes: int = 0  # pushes of states the bench did not time (e.g. a coalesced one), not errors
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def error(self, kind: str, reason: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(reason)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def merged(cls, parts: Sequence[dict[str, Any]]) -> Tally:
        tally = cls()
        for part in parts:
            for kind, values in part["latencies"].items():
                tally.latencies[kind] += values
            for kind, count in part["errors"].items():
                tally.errors[kind] += count
            tally.samples += part["samples"][:ERROR_SAMPLES - len(tally.samples)]
            tally.pushes_expected += part["pushes_expected"]
            tally.other_pushes += part["other_pushes"]
            tally.seconds = max(tally.seconds, part["seconds"])
            tally.cpu_seconds += part["cpu_seconds"]
        return tally

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Watcher:
    """The subscriptions of one client: each `caseUpdated` frame titled with a pending marker is that push."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.pending: dict[str, float] = {}  # marker -> when its mutation was sent
        self.warm: set[str] = set()  # cases whose subscription has had a push
        self.timing = False
        self._readers: list[asyncio.Task[None]] = []
        self._sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def subscribe(self, session: aiohttp.ClientSession, ws_url: str, headers: dict[str, str],
                        case_id: str) -> None:
        ws = await session.ws_connect(ws_url, protocols=["graphql-transport-ws"], max_msg_size=0)
        await ws.send_json({"type": "connection_init", "payload": headers})
        ack = await ws.receive_json(timeout=30)
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack for {case_id}: {ack}")
        await ws.send_json({"id": case_id, "type": "subscribe",
                            "payload": {"query": SUBSCRIPTION, "variables": {"id": case_id}}})
        self._sockets.append(ws)
        self._readers.append(asyncio.create_task(self._read(ws, case_id)))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, case_id: str) -> None:
        async for message in ws:
            at = time.perf_counter()
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            frame = orjson.loads(message.data)
            if frame.get("type") == "ping":
                await ws.send_json({"type": "pong"})
                continue
            reason = frame_error(frame)
            if reason is not None:
                self.tally.error(PUSH, reason)
                continue
            if frame.get("type") != "next":
                continue
            title = frame["payload"]["data"]["caseUpdated"]["title"]
            sent = self.pending.pop(title, None)
            if sent is not None:
                self.tally.latencies[PUSH].append(at - sent)
            elif title.startswith("warm "):
                self.warm.add(case_id)
            elif self.timing:
                self.tally.other_pushes += 1
        # Only the server ends this loop (close() cancels the readers first): the subscription is gone.
        self.tally.error(PUSH, f"{PUSH}: the server closed the socket of {case_id} ({ws.close_code})")

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        for ws in self._sockets:
            await ws.close()
        await asyncio.gather(*self._readers, return_exceptions=True)


class Client:
    """One client process's load: HTTP workers drawing from MIX, ingest on its own watched cases."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.url = config["url"] + "/graphql"
        self.reader = {"Authorization": config["reader"]}
        self.publisher = {"Authorization": config["publisher"]}
        self.cases: list[str] = config["cases"]
        self.watched: list[str] = config["watched"]
        self.random = random.Random(config["seed"])
        self.tally = Tally()
        self.watcher = Watcher(self.tally)
        self._round_robin = itertools.cycle(self.watched)
        self._sequence = {case_id: FIRST_SEQUENCE for case_id in self.watched}
        self._markers = itertools.count(1)

    def _publish_body(self, case_id: str, title: str, event_id: str) -> dict[str, Any]:
        self._sequence[case_id] += 1
        event = {"id": event_id, "source": SOURCE, "type": "case.updated", "subject": case_id,
                 "time": datetime.now(timezone.utc).isoformat(), "sequence": str(self._sequence[case_id]),
                 "data": {"title": title}}
        return {"query": PUBLISH, "variables": {"event": event}, "operationName": "Publish"}

    def _draw(self) -> tuple[str, dict[str, Any], dict[str, str]]:
        roll, kind = self.random.random(), INGEST
        for candidate, share in MIX:
            if roll < share:
                kind = candidate
                break
            roll -= share
        if kind == READ:
            body = {"query": CASE_DETAIL, "variables": {"id": self.random.choice(self.cases)},
                    "operationName": "CaseDetail"}
            return kind, body, self.reader
        if kind == LIST:
            chosen = dict(self.random.choice(LIST_FILTERS))
            if "customerId" in chosen:
                chosen["customerId"] = f"CUST-{self.random.randrange(CUSTOMERS):05d}"
            return kind, {"query": LIST_PAGE, "variables": {"filter": chosen}, "operationName": "ListPage"}, self.reader
        case_id, number = next(self._round_robin), next(self._markers)
        body = self._publish_body(case_id, f"mixed {self.config['index']}-{number}",
                                  f"mixed-{self.config['index']}-{number}")
        return kind, body, self.publisher

    async def _post(self, session: aiohttp.ClientSession, kind: str, body: dict[str, Any],
                    headers: dict[str, str]) -> float | None:
        """One request; its latency in seconds, or None (and the error tallied) when it failed."""
        began = time.perf_counter()
        try:
            async with session.post(self.url, data=orjson.dumps(body),
                                    headers={**headers, "Content-Type": "application/json"}) as response:
                payload = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            self.tally.error(kind, f"{kind}: {type(error).__name__}: {error}")
            return None
        elapsed = time.perf_counter() - began
        try:
            parsed_body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            parsed_body = None
        reason = request_error(kind, status, parsed_body)
        if reason is not None:
            self.tally.error(kind, reason)
            return None
        return elapsed

    async def warm_up(self, session: aiohttp.ClientSession) -> None:
        """Push to every watched case until each subscription has had one (subscriptions start lazily)."""
        deadline = time.perf_counter() + WARM_SECONDS
        attempt = 0
        while time.perf_counter() < deadline:
            cold = [case_id for case_id in self.watched if case_id not in self.watcher.warm]
            if not cold:
                return
            attempt += 1
            for case_id in cold:
                body = self._publish_body(case_id, f"warm {case_id} {attempt}",
                                          f"mixed-warm-{self.config['index']}-{case_id}-{attempt}")
                if await self._post(session, INGEST, body, self.publisher) is None:
                    raise RuntimeError(f"warm-up ingest failed: {self.tally.samples}")
            await asyncio.sleep(1.0)
        raise RuntimeError(f"{len(self.watched) - len(self.watcher.warm)} subscriptions had no push after "
                           f"{WARM_SECONDS} s; {self.tally.samples}")

    async def _worker(self, session: aiohttp.ClientSession, stop_at: float) -> None:
        while time.perf_counter() < stop_at:
            kind, body, headers = self._draw()
            if kind == INGEST:
                # Registered before the request goes out: the push may arrive before the mutation's answer.
                self.watcher.pending[body["variables"]["event"]["data"]["title"]] = time.perf_counter()
                self.tally.pushes_expected += 1
            elapsed = await self._post(session, kind, body, headers)
            if elapsed is not None:
                self.tally.latencies[kind].append(elapsed)
            elif kind == INGEST:
                # A failed ingest is already an error; its push is not expected too.
                self.watcher.pending.pop(body["variables"]["event"]["data"]["title"], None)
                self.tally.pushes_expected -= 1

    async def run(self) -> dict[str, Any]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            ws_url = self.url.replace("http://", "ws://")
            for case_id in self.watched:
                await self.watcher.subscribe(session, ws_url, self.publisher, case_id)
            await self.warm_up(session)
            await asyncio.sleep(1.0)  # late warm-up pushes drain
            _say({"ready": True})
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the parent's "go"
            cpu, began = _cpu_seconds(), time.perf_counter()
            self.watcher.timing = True
            stop_at = began + self.config["seconds"]
            await asyncio.gather(*(self._worker(session, stop_at) for _ in range(self.config["connections"])))
            self.tally.seconds = time.perf_counter() - began
            drain_until = time.perf_counter() + DRAIN_SECONDS
            while self.watcher.pending and time.perf_counter() < drain_until:
                await asyncio.sleep(0.05)
            self.tally.cpu_seconds = _cpu_seconds() - cpu
            for marker in list(self.watcher.pending)[:ERROR_SAMPLES]:
                self.tally.error(PUSH, f"{PUSH}: no push of {marker!r} within {DRAIN_SECONDS} s of the end")
            self.tally.errors[PUSH] += max(0, len(self.watcher.pending) - ERROR_SAMPLES)
            await self.watcher.close()
        return self.tally.as_json()


def client_main(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    config = orjson.loads(sys.stdin.readline())
    try:
        result = asyncio.run(Client(config).run())
    except Exception as error:  # noqa: BLE001 - reported to the parent, which counts it as an error
        result = {"failed": f"{type(error).__name__}: {error}"}
    _say(result)


# --- the server process ----------------------------------------------------------------------------------------

def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


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
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    finally:
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
            f"  generator: {self.clients} client processes on {generator_cores} CPU(s), CPU {self.tally.cpu_seconds:.1f} s "
            f"({self.tally.cpu_seconds / self.seconds:.0%} of a core)",
        ]
        for sample in self.tally.samples + self.client_failures:
            lines.append(f"  error: {sample}")
        lines.append(ratio_line(self.ratio()))
        return "\n".join(lines)


async def _start_server(cases: int) -> tuple[asyncio.subprocess.Process, dict[str, Any], str]:
    log = tempfile.NamedTemporaryFile(prefix="bench-mixed-server-", suffix=".log", delete=False)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.mixed_load", "--serve", "--cases", str(cases), "--log", log.name,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        await process.wait()
        raise RuntimeError(f"the mixed-load server exited with {process.returncode} before serving; see {log.name}")
    return process, orjson.loads(line), log.name


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


async def run() -> Ratio:
    began = time.perf_counter()
    print(f"Mixed load (bench/mixed_load.py): {SECONDS:.0f} s, {CONNECTIONS} HTTP connections from "
          f"{CLIENT_PROCESSES} client processes (70 % case detail, 20 % list pages, 10 % publishCaseEvent), "
          f"{SUBSCRIPTIONS} caseUpdated subscriptions; one app process, {CASES:,} cases on mongomock", flush=True)
    result = await measure()
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
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_main(args.cases, args.log))
        return 0
    if args.client is not None:
        client_main(args.client)
        return 0
    try:
        asyncio.run(run())
    except MixedLoadFailed as failed:
        print(f"  FAILED: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
