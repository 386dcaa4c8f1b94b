"""R6: event applied -> `caseUpdated` push, p99 over every subscriber, with 1 / 100 / 1,000 subscribers on one case.

Three sides, measured in the same run with the same client (this process, one aiohttp session):
- direct: N graphql-transport-ws subscribers on our server (`python server.py`, one process, in-memory store);
- gateway: N subscribers on Hive Gateway (deploy/gateway/gateway.mjs, upstream WebSocket to the same server);
- plain fan-out: a bare aiohttp WebSocket server (this module's `--plain-fanout`, its own process) that sends the
  bytes of a direct push, captured in this run, to its N sockets when it is told to.
Each event's clock starts when the client sends the trigger: `publishCaseEvent` over HTTP to our server (the event
is then validated, applied, staged and relayed to the subscriptions), or the plain server's `POST /publish`; it
stops when a subscriber's frame arrives. The next event is sent only once every subscriber has the last one, so
the numbers are latency, not a queue. Target (issue 14): direct p99 / plain p99 <= 2 at 1,000 subscribers.
Needs Node and `npm ci` for the gateway side (tests/federation_stack.py).
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
from aiohttp import ClientSession, ClientWebSocketResponse, TCPConnector, WSMsgType, web

from bench.report import Ratio, ratio_line
from tests.factories import PUBLISH_CASE_EVENT, bearer, case_created_data, envelope, publish_input
from tests.federation_stack import ROOT, Supergraph, running_supergraph

SUBSCRIBERS = (1, 100, 1_000)
EVENTS = {1: 40, 100: 15, 1_000: 8}
TARGET = 2.0
CASE_ID = "CASE-R6"
SUBSCRIPTION = """subscription ($id: ID!) { caseUpdated(id: $id) {
  id title status stage version updatedAt customer { id name } } }"""
ROUND_SECONDS = 60.0  # an event whose pushes have not all arrived by then is reported as missing
CONNECT_BATCH = 50
WARM_UP_EVENTS, WARM_UP_SECONDS = 30, 2.0
TRIGGER_SAMPLES = 30
# A back-office clerk: sees the bench case; the same token for every subscriber, as one team's dashboards.
CALLER = bearer(roles=("back-office", "case-reader", "system-publisher"), channel="BACK_OFFICE", username="r6.bench")


@dataclass
class Round:
    """One event in flight: its marker in the payload, when it was triggered, and each subscriber's arrival."""

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
    """N sockets; each frame that carries the current round's marker counts as that subscriber's push."""

    def __init__(self) -> None:
        self.sockets: list[ClientWebSocketResponse] = []
        self.current: Round | None = None
        self.sample: bytes = b""
        self.errors: list[str] = []  # frames that are not pushes: an `error` or `complete` ends a subscription
        self._readers: list[asyncio.Task[None]] = []

    def listen(self, ws: ClientWebSocketResponse) -> None:
        self.sockets.append(ws)
        self._readers.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: ClientWebSocketResponse) -> None:
        async for message in ws:
            at = time.perf_counter()
            if message.type is not WSMsgType.TEXT:
                continue
            data = message.data.encode()
            current = self.current
            if current is not None and current.marker in data:
                self.sample = data
                current.arrived(at)
            elif b'"next"' not in data:
                self.errors.append(message.data)

    async def push(self, trigger: Callable[[bytes], Any], marker: str, timeout: float = ROUND_SECONDS) -> list[float]:
        """Trigger one event, wait for every subscriber's push of it, return the latencies in seconds."""
        current = Round(marker=f'"{marker}"'.encode(), expected=len(self.sockets), arrivals=[], done=asyncio.Event())
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
        for ws in self.sockets:
            await ws.close()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


async def graphql_subscriber(session: ClientSession, url: str, subscribers: Subscribers) -> None:
    ws = await session.ws_connect(url, protocols=["graphql-transport-ws"], max_msg_size=0)
    await ws.send_json({"type": "connection_init", "payload": CALLER})
    ack = await ws.receive_json(timeout=30)
    if ack != {"type": "connection_ack"}:
        raise RuntimeError(f"{url} did not acknowledge the connection: {ack}")
    await ws.send_json({"id": "r6", "type": "subscribe",
                        "payload": {"query": SUBSCRIPTION, "variables": {"id": CASE_ID}}})
    subscribers.listen(ws)


async def plain_subscriber(session: ClientSession, url: str, subscribers: Subscribers) -> None:
    subscribers.listen(await session.ws_connect(url, max_msg_size=0))


async def connect(count: int, open_one: Callable[[], Any]) -> None:
    for start in range(0, count, CONNECT_BATCH):
        await asyncio.gather(*(open_one() for _ in range(min(CONNECT_BATCH, count - start))))


class Events:
    """`case.updated` events for the bench case, each titled with a fresh marker, sent over HTTP."""

    def __init__(self, session: ClientSession, url: str) -> None:
        self._session, self._url, self._number = session, url, 0

    async def send(self, data: dict[str, Any], event_type: str = "case.updated") -> None:
        self._number += 1
        raw = envelope(event_type, CASE_ID, data, event_id=f"r6-{self._number}", sequence=self._number)
        async with self._session.post(self._url, json={"query": PUBLISH_CASE_EVENT,
                                                       "variables": {"event": publish_input(raw)}},
                                      headers=CALLER) as response:
            body = await response.json()
        if body.get("data", {}).get("publishCaseEvent", {}).get("status") != "APPLIED":
            raise RuntimeError(f"publishCaseEvent did not apply: {body}")

    def titled(self, title: str) -> Callable[[bytes], Any]:
        return lambda _marker: self.send({"title": title})


async def warm_up(subscribers: Subscribers, events: Events, side: str) -> None:
    """Change the case until every subscriber has had a push: subscriptions (and the gateway's upstream) are lazy."""
    for attempt in range(1, WARM_UP_EVENTS + 1):
        marker = f"{side} warm-up {attempt}"
        arrivals = await subscribers.push(events.titled(marker), marker, timeout=WARM_UP_SECONDS)
        if len(arrivals) == len(subscribers.sockets):
            await asyncio.sleep(WARM_UP_SECONDS)  # late pushes of earlier warm-up events drain
            return
    raise RuntimeError(f"{side}: not every subscriber had a push after {WARM_UP_EVENTS} warm-up events; "
                       f"{len(subscribers.errors)} other frames, the first: {subscribers.errors[:1]}")


@dataclass(frozen=True)
class Latencies:
    side: str
    subscribers: int
    seconds: list[float]
    missing: int

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.seconds)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.seconds)

    def line(self) -> str:
        missing = f", {self.missing} missing" if self.missing else ""
        return (f"  {self.side:<14} {self.subscribers:>5} subscribers: p50 {self.p50_ms:8.1f} ms, "
                f"p99 {self.p99_ms:8.1f} ms ({len(self.seconds):,} pushes{missing})")


async def measure_side(side: str, count: int, open_one: Callable[[Subscribers], Any],
                       trigger: Callable[[str], Callable[[bytes], Any]],
                       events: Events | None) -> tuple[Latencies, bytes]:
    """Connect `count` subscribers, warm them up (GraphQL sides), push `EVENTS[count]` events, close them."""
    subscribers = Subscribers()
    try:
        await connect(count, lambda: open_one(subscribers))
        if events is not None:
            await warm_up(subscribers, events, side)
        seconds: list[float] = []
        missing = 0
        for number in range(EVENTS[count]):
            marker = f"{side} {count} push {number}"
            arrivals = await subscribers.push(trigger(marker), marker)
            seconds += arrivals
            missing += count - len(arrivals)
            await asyncio.sleep(0.05)
        return Latencies(side, count, seconds, missing), subscribers.sample
    finally:
        await subscribers.close()


@asynccontextmanager
async def plain_fanout() -> AsyncIterator[str]:
    """The bare aiohttp WebSocket server in its own process; yields its base URL."""
    process = subprocess.Popen([sys.executable, "-m", "bench.r6_push", "--plain-fanout"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, process.stdout.readline)
        yield orjson.loads(line)["url"]
    finally:
        process.terminate()
        process.wait(10)


async def measure(subscriber_counts: tuple[int, ...] = SUBSCRIBERS) -> list[Latencies]:
    with running_supergraph() as stack:
        return await _measure(stack, subscriber_counts)


async def _measure(stack: Supergraph, subscriber_counts: tuple[int, ...]) -> list[Latencies]:
    results: list[Latencies] = []
    async with ClientSession(connector=TCPConnector(limit=0)) as session, plain_fanout() as plain_url:
        events = Events(session, stack.cases.url)
        await events.send(case_created_data(title="R6 case"), event_type="case.created")
        print(await trigger_alone(session, events, plain_url), flush=True)
        ws_url = {"direct": stack.cases.url, "gateway": stack.gateway.url}
        for count in subscriber_counts:
            sample = b""
            for side in ("direct", "gateway"):
                url = ws_url[side].replace("http://", "ws://")
                latencies, captured = await measure_side(
                    side, count, lambda subs, url=url: graphql_subscriber(session, url, subs),
                    lambda marker: events.titled(marker), events)
                if side == "direct":
                    sample = captured
                results.append(latencies)
                print(latencies.line(), flush=True)

            frame = orjson.loads(sample)

            async def send_plain(marker: bytes, frame: dict[str, Any] = frame) -> None:
                # The direct push's frame with this event's marker as its title: the same bytes, give or take.
                frame["payload"]["data"]["caseUpdated"]["title"] = orjson.loads(marker)
                async with session.post(f"{plain_url}/publish", data=orjson.dumps(frame)) as response:
                    response.raise_for_status()

            latencies, _ = await measure_side(
                "plain fan-out", count, lambda subs: plain_subscriber(session, f"{plain_url}/ws", subs),
                lambda _marker: send_plain, None)
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
        async with session.post(f"{plain_url}/publish", data=b"{}") as response:
            response.raise_for_status()

    ingest = await timed(lambda: events.send({"title": "no subscriber yet"}))
    plain = await timed(post_plain)
    return (f"  with no subscriber: publishCaseEvent round trip p50 {ingest.p50_ms:.1f} ms, "
            f"p99 {ingest.p99_ms:.1f} ms; plain POST /publish p50 {plain.p50_ms:.1f} ms, p99 {plain.p99_ms:.1f} ms")


def ratios(results: list[Latencies]) -> list[Ratio]:
    by_side = {(r.side, r.subscribers): r for r in results}
    most = max(r.subscribers for r in results)
    plain = by_side[("plain fan-out", most)].p99_ms
    out = []
    for side in ("direct", "gateway"):
        value = by_side[(side, most)].p99_ms / plain
        out.append(Ratio(f"R6 push p99 {side} / plain fan-out, {most:,} subscribers", value, f"<= {TARGET}",
                         value <= TARGET, ".1f"))
    return out


async def run() -> list[Ratio]:
    print(f"R6 event -> caseUpdated push: {', '.join(f'{n:,}' for n in SUBSCRIBERS)} subscribers on one case, "
          "our server in one process (in-memory store), Hive Gateway in front, a bare aiohttp fan-out beside")
    results = await measure()
    measured = ratios(results)
    for ratio in measured:
        print(ratio_line(ratio))
    return measured


# --- the plain fan-out server (`python -m bench.r6_push --plain-fanout`) ----------------------------------------

def plain_fanout_app() -> web.Application:
    """`GET /ws` subscribes; `POST /publish` sends its body's bytes to every socket, then answers."""
    sockets: set[web.WebSocketResponse] = set()

    async def subscribe(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            sockets.discard(ws)
        return ws

    async def publish(request: web.Request) -> web.Response:
        text = (await request.read()).decode()
        for ws in list(sockets):
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
    if parser.parse_args().plain_fanout:
        asyncio.run(serve_plain_fanout())
    else:
        asyncio.run(run())
