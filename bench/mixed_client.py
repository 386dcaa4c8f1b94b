"""The mixed load's client process (`python -m bench.mixed_load --client CPU`, config as one JSON line on stdin):
HTTP workers drawing reads, list pages and ingest from MIX, and the subscriptions of the cases it ingests.
What counts as an error is here too (request_error, frame_error): the parent only adds the clients' tallies up.
"""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import random
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
import orjson

from bench.r1_case_detail import QUERY as CASE_DETAIL

CUSTOMERS = 97  # bench/events.py many_cases spreads the seed over this many customers
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


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


