"""Live updates as a test sees them: a signed-in graphql-transport-ws socket, its frames, and a watch on the
updates bus so a test changes a case only once a subscription listens. The `bus_watch` fixture is in conftest.
"""
from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import orjson
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from consumers.updates import UpdatesBus

TIMEOUT = 5  # seconds to wait for a frame or a subscription: a failure, never a slow pass


class BusWatch:
    """Counts the subscriptions attached to the updates bus, so a test publishes only once one listens."""

    def __init__(self, bus: UpdatesBus, monkeypatch: pytest.MonkeyPatch) -> None:
        self.active = 0
        self._changed = asyncio.Event()
        attach = bus.subscribe

        @contextmanager
        def subscribe(case_id: str | None = None, **options: Any) -> Iterator[Any]:
            with attach(case_id, **options) as queue:
                self._count(+1)
                try:
                    yield queue
                finally:
                    self._count(-1)

        monkeypatch.setattr(bus, "subscribe", subscribe)

    def _count(self, delta: int) -> None:
        self.active += delta
        self._changed.set()

    async def until_active(self, expected: int) -> None:
        """Wait (at most TIMEOUT) until exactly `expected` subscriptions are attached."""
        async with asyncio.timeout(TIMEOUT):
            while self.active != expected:
                self._changed.clear()
                await self._changed.wait()


class Members:
    """Subscriptions served by shared push groups (edge/fanout.py), which listen to the bus once per group: counted
    from when this was made (the gauge is the process's)."""

    def __init__(self) -> None:
        self._before = self._served()

    @staticmethod
    def _served() -> float:
        return REGISTRY.get_sample_value("case_repository_push_subscribers") or 0.0

    async def until(self, expected: int) -> None:
        """Wait (at most TIMEOUT) until exactly `expected` more subscriptions are served."""
        async with asyncio.timeout(TIMEOUT):
            while self._served() - self._before != expected:
                await asyncio.sleep(0.01)


@asynccontextmanager
async def signed_in_socket(client: TestClient, headers: dict[str, str]) -> AsyncIterator[ClientWebSocketResponse]:
    """A graphql-transport-ws connection initialised with the caller's `Authorization` header and acknowledged."""
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        assert ws.protocol == "graphql-transport-ws"
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": headers["Authorization"]}})
        assert await next_frame(ws) == {"type": "connection_ack"}
        yield ws


async def subscribe(ws: ClientWebSocketResponse, operation_id: str, query: str,
                    variables: dict[str, Any] | None = None) -> None:
    """Send a subscribe message; without `variables` the payload carries none."""
    payload: dict[str, Any] = {"query": query} if variables is None else {"query": query, "variables": variables}
    await ws.send_json({"id": operation_id, "type": "subscribe", "payload": payload})


async def next_frame(ws: ClientWebSocketResponse) -> dict[str, Any]:
    """The next message, decoded; it must be a text frame, as browsers' graphql-ws clients expect."""
    message = await ws.receive(timeout=TIMEOUT)
    assert message.type is WSMsgType.TEXT, message
    return orjson.loads(message.data)


async def held_bytes_growth(push: Callable[[int], Awaitable[None]], first: int, warm_up: int, measured: int) -> int:
    """Bytes still held (after a full collection) by `measured` pushes beyond the first `warm_up`, versions counted
    from `first`: what a subscription keeps per push."""
    def traced() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        for version in range(first, first + warm_up):
            await push(version)
        before = traced()
        for version in range(first + warm_up, first + warm_up + measured):
            await push(version)
        return traced() - before
    finally:
        tracemalloc.stop()
