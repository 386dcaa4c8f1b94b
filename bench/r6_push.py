"""R6: event applied -> `caseUpdated` push, p99 over every subscription, with 1 / 100 / 1,000 subscribers on one
case, then 100 subscribers on each of 100 cases.

Three sides, measured in the same run with the same client (this process, bench/ws_client.py):
- direct: graphql-transport-ws subscribers on our server (`python server.py`, one process, in-memory store);
- gateway: the same on Hive Gateway (deploy/gateway/gateway.mjs, upstream WebSocket to the same server), one-case
  steps only;
- plain fan-out: a bare aiohttp WebSocket server (this module's `--plain-fanout`, its own process) that sends the
  bytes of a direct push, captured in this run, to the sockets of the event's case when it is told to.
The many-case layout is what a back office looks like: 1,000 clerks, each with one socket (graphql-ws multiplexes a
client's subscriptions) and a subscription per case on their list screen, 10 each, so that each of the 100 cases
has 100 subscribers; its events go round the cases twice, one at a time.
Each event's clock starts when the client sends the trigger: `publishCaseEvent` over HTTP to our server (the event
is then validated, applied, staged and relayed to the subscriptions), or the plain server's `POST /publish`; it
stops when a subscription's frame arrives. The next event is sent only once every subscription of the case has
the last one, so the numbers are latency, not a queue. Target (issue 14): direct p99 / plain p99 <= 2 at 1,000
subscribers on one case, and at 100 on each of 100 cases. Every line also gives the serving processes' CPU and
this client's per push. Needs Node and `npm ci` for the gateway side (tests/federation_stack.py); `--direct-only`
runs without.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import ClientSession, TCPConnector, WSMsgType, web

from bench.load import process_cpu
from bench.report import Ratio, ratio_line
from bench.ws_client import WebSocketClient, open_websocket
from tests.factories import PUBLISH_CASE_EVENT, bearer, case_created_data, envelope, publish_input
from tests.child_process import ChildProcess
from tests.federation_stack import ROOT, CaseRepositoryProcess, running_supergraph

SUBSCRIBERS = (1, 100, 1_000)
GRAPHQL_SIDES = ("direct", "gateway")
EVENTS = {1: 40, 100: 15, 1_000: 8}
TARGET = 2.0
CASE_ID = "CASE-R6"
SUBSCRIPTION = """subscription ($id: ID!) { caseUpdated(id: $id) {
  id title status stage version updatedAt customer { id name } } }"""
ROUND_SECONDS = 60.0  # an event whose pushes have not all arrived by then is reported as missing
CONNECT_BATCH = 50
WARM_UP_EVENTS, WARM_UP_SECONDS = 30, 2.0
TRIGGER_SAMPLES = 30
PAUSE_SECONDS = 0.05  # between timed events
MANY_CASES, MANY_PER_CASE, MANY_PER_SOCKET, MANY_PASSES = 100, 100, 10, 2
# A back-office clerk: sees the bench case; the same token for every subscriber, as one team's dashboards.
CALLER = bearer(roles=("back-office", "case-reader", "system-publisher"), channel="BACK_OFFICE", username="r6.bench")


@dataclass
class Round:
    """One event in flight: its marker in the payload, when it was triggered, and each subscription's arrival."""

    marker: bytes
    expected: int
    started: float = 0.0
    arrivals: list[float] | None = None
    done: asyncio.Event | None = None

    def arrived(self, at: float) -> None:
        assert self.arrivals is not None and self.done is not None
        self.arrivals.append(at - self.started)
        if len(self.arrivals) == self.expected:
            self.done.set()


class Subscribers:
    """Sockets carrying subscriptions; each frame that carries the current round's marker is one subscription's push
    (the bench subscribes each socket to a case at most once)."""

    def __init__(self) -> None:
        self.sockets: list[WebSocketClient] = []
        self.per_topic: dict[str, int] = {}  # subscriptions per case
        self.current: Round | None = None
        self.sample: bytes = b""
        self.errors: list[str] = []  # frames that are not pushes: an `error` or `complete` ends a subscription

    @property
    def subscriptions(self) -> int:
        return sum(self.per_topic.values())

    def listen(self, ws: WebSocketClient, topics: list[str]) -> None:
        self.sockets.append(ws)
        for topic in topics:
            self.per_topic[topic] = self.per_topic.get(topic, 0) + 1
        ws.listen(self._read)

    def _read(self, data: bytes, at: float) -> None:
        current = self.current
        if current is not None and current.marker in data:
            self.sample = data
            current.arrived(at)
        elif b'"next"' not in data:
            self.errors.append(data.decode(errors="replace"))

    async def push(self, trigger: Callable[[bytes], Any], marker: str, topic: str = CASE_ID,
                   timeout: float = ROUND_SECONDS) -> list[float]:
        """Trigger one event on `topic`, wait for the push of it to every subscription of that case, return the
        latencies in seconds."""
        current = Round(marker=f'"{marker}"'.encode(), expected=self.per_topic.get(topic, 0), arrivals=[],
                        done=asyncio.Event())
        self.current = current
        current.started = time.perf_counter()
        await trigger(current.marker)
        try:
            await asyncio.wait_for(current.done.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        self.current = None
        return list(current.arrivals or [])

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


async def graphql_subscriber(url: str, subscribers: Subscribers, cases: tuple[str, ...] = (CASE_ID,)) -> None:
    """One socket signed in as the bench caller, with a `caseUpdated` subscription per case (its id the case's)."""
    ws = await open_websocket(url.replace("http://", "ws://"), "graphql-transport-ws")
    ws.send_text(orjson.dumps({"type": "connection_init", "payload": CALLER}))
    ack = orjson.loads(await ws.receive())
    if ack != {"type": "connection_ack"}:
        raise RuntimeError(f"{url} did not acknowledge the connection: {ack}")
    for case_id in cases:
        ws.send_text(orjson.dumps({"id": subscription_id(case_id), "type": "subscribe",
                                   "payload": {"query": SUBSCRIPTION, "variables": {"id": case_id}}}))
    subscribers.listen(ws, list(cases))


def subscription_id(case_id: str) -> str:
    # One id per case: each case's pushes are then the same bytes on every socket, as the plain fan-out sends them.
    return "r6" if case_id == CASE_ID else case_id


async def plain_subscriber(url: str, subscribers: Subscribers, cases: tuple[str, ...] = (CASE_ID,)) -> None:
    """One socket of the plain fan-out, told which cases' frames it takes."""
    ws = await open_websocket(f"{url.replace('http://', 'ws://')}/ws")
    ws.send_text(orjson.dumps(list(cases)))
    subscribers.listen(ws, list(cases))


async def connect(count: int, open_one: Callable[[int], Any]) -> None:
    """`open_one(i)` for i in range(count), `CONNECT_BATCH` at a time."""
    for start in range(0, count, CONNECT_BATCH):
        await asyncio.gather(*(open_one(i) for i in range(start, min(start + CONNECT_BATCH, count))))


class Events:
    """`case.updated` events for the bench cases, each titled with a fresh marker, sent over HTTP."""

    def __init__(self, session: ClientSession, url: str) -> None:
        self._session, self._url, self._number = session, url, 0

    async def send(self, data: dict[str, Any], event_type: str = "case.updated", case_id: str = CASE_ID) -> None:
        self._number += 1
        raw = envelope(event_type, case_id, data, event_id=f"r6-{self._number}", sequence=self._number)
        async with self._session.post(self._url, json={"query": PUBLISH_CASE_EVENT,
                                                       "variables": {"event": publish_input(raw)}},
                                      headers=CALLER) as response:
            body = await response.json()
        if body.get("data", {}).get("publishCaseEvent", {}).get("status") != "APPLIED":
            raise RuntimeError(f"publishCaseEvent did not apply: {body}")

    def titled(self, title: str, case_id: str = CASE_ID) -> Callable[[bytes], Any]:
        return lambda _marker: self.send({"title": title}, case_id=case_id)


async def warm_up(subscribers: Subscribers, events: Events, side: str, cases: tuple[str, ...] = (CASE_ID,)) -> None:
    """Change each case until every subscription has had a push: subscriptions (and the gateway's upstream) are
    lazy."""
    waiting = list(cases)
    for attempt in range(1, WARM_UP_EVENTS + 1):
        behind = []
        for case_id in waiting:
            marker = f"{side} warm-up {case_id} {attempt}"
            arrivals = await subscribers.push(events.titled(marker, case_id), marker, case_id,
                                              timeout=WARM_UP_SECONDS)
            if len(arrivals) < subscribers.per_topic[case_id]:
                behind.append(case_id)
        if not behind:
            await asyncio.sleep(WARM_UP_SECONDS)  # late pushes of earlier warm-up events drain
            return
        waiting = behind
    raise RuntimeError(f"{side}: not every subscription had a push after {WARM_UP_EVENTS} warm-up events; "
                       f"{len(subscribers.errors)} other frames, the first: {subscribers.errors[:1]}")


@dataclass(frozen=True)
class Layout:
    """Who subscribes to what: each socket's cases (a subscription each), and the case of each timed event."""

    name: str
    sockets: tuple[tuple[str, ...], ...]
    events: tuple[str, ...]

    @property
    def cases(self) -> tuple[str, ...]:
        return tuple(sorted({case_id for cases in self.sockets for case_id in cases}))


def one_case(count: int) -> Layout:
    return Layout(f"{count:,} subscribers", ((CASE_ID,),) * count, (CASE_ID,) * EVENTS[count])


def many_case_ids() -> tuple[str, ...]:
    return tuple(f"CASE-R6-{number:03d}" for number in range(MANY_CASES))


def many_cases() -> Layout:
    """`MANY_PER_CASE` subscriptions on each of `MANY_CASES` cases, `MANY_PER_SOCKET` cases per socket (a clerk's
    list screen: one socket, a subscription per case shown); the events go round the cases `MANY_PASSES` times."""
    ids = many_case_ids()
    sockets_count = MANY_CASES * MANY_PER_CASE // MANY_PER_SOCKET
    stride = MANY_CASES // MANY_PER_SOCKET
    sockets = tuple(tuple(ids[(i % MANY_CASES + j * stride) % MANY_CASES] for j in range(MANY_PER_SOCKET))
                    for i in range(sockets_count))
    layout = Layout(f"{MANY_PER_CASE:,} on each of {MANY_CASES:,} cases", sockets, ids * MANY_PASSES)
    per_case = {case_id: sum(case_id in cases for cases in sockets) for case_id in ids}
    assert set(per_case.values()) == {MANY_PER_CASE}, per_case
    return layout


@dataclass(frozen=True)
class Latencies:
    side: str
    subscribers: int  # per case
    seconds: list[float]
    missing: int
    cases: int = 1
    sockets: int = 0
    client_cpu_us: float = 0.0  # this process's CPU per push received, while the side's events ran
    server_cpu_us: float = 0.0  # the serving processes' CPU per push, likewise

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.seconds)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.seconds)

    def line(self) -> str:
        missing = f", {self.missing} missing" if self.missing else ""
        who = (f"{self.subscribers:>5} subscribers" if self.cases == 1 else
               f"{self.subscribers} x {self.cases} cases ({self.sockets:,} sockets)")
        return (f"  {self.side:<14} {who}: p50 {self.p50_ms:8.1f} ms, p99 {self.p99_ms:8.1f} ms "
                f"({len(self.seconds):,} pushes{missing}; CPU per push: server {self.server_cpu_us:.0f} us, "
                f"client {self.client_cpu_us:.0f} us)")


Trigger = Callable[[str, str], Callable[[bytes], Any]]  # (case, marker) -> what sends that event


async def measure_side(side: str, layout: Layout, open_one: Callable[[tuple[str, ...], Subscribers], Any],
                       trigger: Trigger, events: Events | None,
                       servers: tuple[int, ...] = ()) -> tuple[Latencies, bytes]:
    """Connect the layout's sockets, warm them up (GraphQL sides), push its events one at a time, close them."""
    subscribers = Subscribers()
    try:
        await connect(len(layout.sockets), lambda i: open_one(layout.sockets[i], subscribers))
        if events is not None:
            await warm_up(subscribers, events, side, layout.cases)
        seconds: list[float] = []
        missing = 0
        cpu, server_cpu = time.process_time(), sum(process_cpu(pid) for pid in servers)
        for number, case_id in enumerate(layout.events):
            marker = f"{side} {layout.name} push {number}"
            arrivals = await subscribers.push(trigger(case_id, marker), marker, case_id)
            seconds += arrivals
            missing += subscribers.per_topic[case_id] - len(arrivals)
            await asyncio.sleep(PAUSE_SECONDS)
        cpu, server_cpu = time.process_time() - cpu, sum(process_cpu(pid) for pid in servers) - server_cpu
        per_case, pushes = max(subscribers.per_topic.values()), max(len(seconds), 1)
        return Latencies(side, per_case, seconds, missing, len(layout.cases), len(layout.sockets),
                         1e6 * cpu / pushes, 1e6 * server_cpu / pushes), subscribers.sample
    finally:
        await subscribers.close()


@asynccontextmanager
async def plain_fanout() -> AsyncIterator[tuple[str, int]]:
    """The bare aiohttp WebSocket server in its own process; yields its base URL and its pid."""
    process = subprocess.Popen([sys.executable, "-m", "bench.r6_push", "--plain-fanout"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, process.stdout.readline)
        yield orjson.loads(line)["url"], process.pid
    finally:
        process.terminate()
        process.wait(10)


class ProfiledServer(CaseRepositoryProcess):
    """Our server under cProfile (`python -m cProfile -o FILE server.py`): it writes the stats on SIGTERM's clean
    exit."""

    def __init__(self, stats_file: str) -> None:
        super().__init__()
        self._stats_file = stats_file

    def spawn(self, command: list[str], **options: Any) -> None:  # type: ignore[override]
        super().spawn([command[0], "-m", "cProfile", "-o", self._stats_file, *command[1:]], **options)


async def measure(subscriber_counts: tuple[int, ...] = SUBSCRIBERS, sides: tuple[str, ...] = GRAPHQL_SIDES,
                  with_many_cases: bool = False, profile: str | None = None) -> list[Latencies]:
    """The one-case steps on `sides` (each with its plain fan-out), then, if asked, the many-case layout, direct
    only. `profile`: without the gateway, run the server under cProfile, its stats written there when it stops."""
    if "gateway" not in sides:
        server = ProfiledServer(profile) if profile else CaseRepositoryProcess()
        server.start()
        try:
            return await _measure({"direct": server.url}, {"direct": pids(server)}, subscriber_counts, sides,
                                  with_many_cases)
        finally:
            server.stop()
    with running_supergraph() as stack:
        return await _measure({"direct": stack.cases.url, "gateway": stack.gateway.url},
                              {"direct": pids(stack.cases), "gateway": pids(stack.gateway, stack.cases)},
                              subscriber_counts, sides, with_many_cases)


def pids(*processes: ChildProcess) -> tuple[int, ...]:
    return tuple(p.pid for p in processes if p.pid is not None)


async def _measure(urls: dict[str, str], servers: dict[str, tuple[int, ...]], subscriber_counts: tuple[int, ...], sides: tuple[str, ...],
                   with_many_cases: bool) -> list[Latencies]:
    results: list[Latencies] = []
    steps = [(one_case(count), sides) for count in subscriber_counts]
    if with_many_cases:
        steps.append((many_cases(), ("direct",)))
    async with ClientSession(connector=TCPConnector(limit=0)) as session, plain_fanout() as (plain_url, plain_pid):
        events = Events(session, urls["direct"])
        for case_id in (CASE_ID, *(many_case_ids() if with_many_cases else ())):
            await events.send(case_created_data(title=f"R6 case {case_id}"), event_type="case.created",
                              case_id=case_id)
        print(await trigger_alone(session, events, plain_url), flush=True)
        for layout, layout_sides in steps:
            sample = b""
            for side in layout_sides:
                latencies, captured = await measure_side(
                    side, layout, lambda cases, subs, url=urls[side]: graphql_subscriber(url, subs, cases),
                    lambda case_id, marker: events.titled(marker, case_id), events, servers[side])
                if side == "direct":
                    sample = captured
                results.append(latencies)
                print(latencies.line(), flush=True)

            def send_plain(case_id: str, marker: str, frame: dict[str, Any] = orjson.loads(sample)) -> Any:
                async def send(_marker: bytes) -> None:
                    # The direct push's frame for this case, this event's marker as its title: the same bytes, give
                    # or take a digit of the version.
                    frame["id"] = subscription_id(case_id)
                    frame["payload"]["data"]["caseUpdated"].update(id=case_id, title=marker)
                    async with session.post(f"{plain_url}/publish", params={"topic": case_id},
                                            data=orjson.dumps(frame)) as response:
                        response.raise_for_status()
                return send

            latencies, _ = await measure_side(
                "plain fan-out", layout, lambda cases, subs: plain_subscriber(plain_url, subs, cases),
                send_plain, None, (plain_pid,))
            results.append(latencies)
            print(latencies.line(), flush=True)
    return results


async def trigger_alone(session: ClientSession, events: Events, plain_url: str) -> str:
    """What each side's clock includes before any push: the trigger's round trip with no subscriber."""
    async def timed(send: Callable[[], Any]) -> Latencies:
        seconds = []
        for _ in range(TRIGGER_SAMPLES):
            started = time.perf_counter()
            await send()
            seconds.append(time.perf_counter() - started)
        return Latencies("trigger", 0, seconds, 0)

    async def post_plain() -> None:
        async with session.post(f"{plain_url}/publish", params={"topic": "nobody"}, data=b"{}") as response:
            response.raise_for_status()

    ingest = await timed(lambda: events.send({"title": "no subscriber yet"}))
    plain = await timed(post_plain)
    return (f"  with no subscriber: publishCaseEvent round trip p50 {ingest.p50_ms:.1f} ms, "
            f"p99 {ingest.p99_ms:.1f} ms; plain POST /publish p50 {plain.p50_ms:.1f} ms, p99 {plain.p99_ms:.1f} ms")


def ratios(results: list[Latencies], sides: tuple[str, ...] = GRAPHQL_SIDES) -> list[Ratio]:
    """Each side's p99 over the plain fan-out's at the most subscribers on one case, then the many-case layout's."""
    one = {(r.side, r.subscribers): r for r in results if r.cases == 1}
    most = max((subscribers for _, subscribers in one), default=0)
    out = []
    for side in sides if one else ():
        plain = one[("plain fan-out", most)].p99_ms
        value = one[(side, most)].p99_ms / plain
        out.append(Ratio(f"R6 push p99 {side} / plain fan-out, {most:,} subscribers", value, f"<= {TARGET}",
                         value <= TARGET, ".1f"))
    many = {r.side: r for r in results if r.cases > 1}
    if many:
        value = many["direct"].p99_ms / many["plain fan-out"].p99_ms
        out.append(Ratio(f"R6 push p99 direct / plain fan-out, {many['direct'].subscribers:,} subscribers on each "
                         f"of {many['direct'].cases:,} cases", value, f"<= {TARGET}", value <= TARGET, ".1f"))
    return out


async def run() -> list[Ratio]:
    print(f"R6 event -> caseUpdated push: {', '.join(f'{n:,}' for n in SUBSCRIBERS)} subscribers on one case, "
          "our server in one process (in-memory store), Hive Gateway in front, a bare aiohttp fan-out beside; then "
          f"{MANY_PER_CASE:,} subscribers on each of {MANY_CASES:,} cases ({MANY_PER_SOCKET} per socket), direct")
    results = await measure(with_many_cases=True)
    measured = ratios(results)
    for ratio in measured:
        print(ratio_line(ratio))
    return measured


# --- the plain fan-out server (`python -m bench.r6_push --plain-fanout`) ----------------------------------------

def plain_fanout_app() -> web.Application:
    """`GET /ws` subscribes: the socket's first message lists its topics (cases); `POST /publish?topic=T` sends the
    body's bytes to every socket of topic T, then answers."""
    topics: dict[str, set[web.WebSocketResponse]] = {}

    async def subscribe(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        mine: list[str] = []
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT and not mine:
                    mine = orjson.loads(message.data)
                    for topic in mine:
                        topics.setdefault(topic, set()).add(ws)
        finally:
            for topic in mine:
                topics.get(topic, set()).discard(ws)
        return ws

    async def publish(request: web.Request) -> web.Response:
        text = (await request.read()).decode()
        for ws in list(topics.get(request.query["topic"], ())):
            await ws.send_str(text)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/ws", subscribe)
    app.router.add_post("/publish", publish)
    return app


async def serve_plain_fanout() -> None:
    runner = web.AppRunner(plain_fanout_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(orjson.dumps({"url": f"http://{host}:{port}"}).decode(), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plain-fanout", action="store_true", help="serve the plain fan-out (a child of the bench)")
    parser.add_argument("--subscribers", type=int, nargs="*", help="only these one-case steps (default 1 100 1000)")
    parser.add_argument("--many-cases", action="store_true", help="with --subscribers: the many-case layout too")
    parser.add_argument("--direct-only", action="store_true", help="no gateway side (no Node needed)")
    parser.add_argument("--profile-server", metavar="FILE", help="with --direct-only: cProfile the server into FILE")
    arguments = parser.parse_args()
    if arguments.plain_fanout:
        asyncio.run(serve_plain_fanout())
    elif arguments.subscribers is not None or arguments.direct_only:
        sides = ("direct",) if arguments.direct_only else GRAPHQL_SIDES
        counts = SUBSCRIBERS if arguments.subscribers is None else tuple(arguments.subscribers)
        results = asyncio.run(measure(counts, sides, arguments.many_cases,
                                      arguments.profile_server if arguments.direct_only else None))
        for ratio in ratios(results, sides):
            print(ratio_line(ratio))
    else:
        asyncio.run(run())
