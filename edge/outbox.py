"""One WebSocket's outgoing frames: written in order by one writer task, so no sender ever waits on a slow client.

A push of a shared subscription (edge/fanout.py) is queued without waiting. While fewer than `OUTBOX_FRAMES` frames
wait, every push is queued; past that, a subscription's newest waiting push is replaced by the newer state
(coalesced: the client may skip intermediate states, never the last one). A socket whose oldest waiting frame has
waited `SLOW_SOCKET_SECONDS` when another push arrives is closed with `SLOW_CLOSE_CODE`. Every other frame (acks,
pongs, errors, completes, pushes of unshared operations) goes through the same queue and its sender waits until it
is written, as it waited on the socket before.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from prometheus_client import Counter
from strawberry.http.exceptions import WebSocketDisconnected

log = logging.getLogger(__name__)

COALESCED = Counter("case_repository_push_coalesced_total",
                    "Pushes replaced by a newer state of the same subscription before a slow socket took them")
SLOW_CLOSED = Counter("case_repository_push_slow_sockets_closed_total",
                      "WebSockets closed because they stayed behind their pushes (close code 4413)")

OUTBOX_FRAMES = 64
SLOW_SOCKET_SECONDS = 15.0
# Not one of graphql-ws's terminal codes, so its clients reconnect (and start again from the newest state).
SLOW_CLOSE_CODE = 4413
# A client that stopped reading cannot acknowledge the close frame: give up on it after this long.
CLOSE_SECONDS = 10.0


@dataclass(eq=False)
class _Frame:
    subscription: str | None  # set for a coalescible push; its `data` is then the shared `payload` of a next frame
    data: bytes
    queued_at: float
    written: asyncio.Future[None] | None = field(default=None)


def next_frame(subscription_id: str, payload: bytes) -> bytes:
    """The graphql-transport-ws `next` message, byte for byte as Strawberry encodes it with orjson."""
    return b'{"id":' + orjson.dumps(subscription_id) + b',"type":"next","payload":' + payload + b"}"


class SocketOutbox:
    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> None:
        self._ws = ws
        self._transport = transport
        self._frames: deque[_Frame] = deque()
        self._newest: dict[str, _Frame] = {}  # per subscription, its newest frame still waiting
        self._writer: asyncio.Task[None] | None = None
        self.closed = False

    def push(self, subscription_id: str, payload: bytes) -> None:
        """Queue a `next` frame of a shared push; never waits."""
        if self.closed:
            return
        frames = self._frames
        if frames and time.monotonic() - frames[0].queued_at > SLOW_SOCKET_SECONDS:
            self._close_slow()
            return
        if len(frames) >= OUTBOX_FRAMES and (waiting := self._newest.get(subscription_id)) is not None:
            waiting.data = payload
            COALESCED.inc()
            return
        frame = _Frame(subscription_id, payload, time.monotonic())
        self._newest[subscription_id] = frame
        self._append(frame)

    async def send(self, text: str) -> None:
        """Queue any other message and wait until it is written (WebSocketDisconnected if it never will be)."""
        if self.closed:
            raise WebSocketDisconnected()
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._append(_Frame(None, text.encode(), time.monotonic(), written))
        await written

    def _append(self, frame: _Frame) -> None:
        self._frames.append(frame)
        if self._writer is None:
            self._flush()

    def _take(self) -> tuple[_Frame, bytes]:
        frame = self._frames.popleft()
        if frame.subscription is None:
            return frame, frame.data
        if self._newest.get(frame.subscription) is frame:
            del self._newest[frame.subscription]
        return frame, next_frame(frame.subscription, frame.data)

    def _flush(self) -> None:
        """Write waiting frames at once while the socket takes them without waiting (a push to 1,000 sockets then
        schedules nothing); the first send that has to wait for the client, and what follows, go to a writer task."""
        while self._frames:
            frame, data = self._take()
            sending = self._ws.send_frame(data, WSMsgType.TEXT)
            try:
                waiting_on = sending.send(None)
            except StopIteration:
                self._written(frame)
                continue
            except (RuntimeError, ConnectionError):
                self._stop(written=frame.written)
                return
            self._writer = asyncio.create_task(self._write(sending, waiting_on, frame))
            return

    async def _write(self, sending: Coroutine[Any, Any, None], waiting_on: Any, frame: _Frame) -> None:
        """Finish the suspended send, then write the rest, waiting for the client as it reads."""
        try:
            await _finish(sending, waiting_on)
            self._written(frame)
            while self._frames:
                frame, data = self._take()
                await self._ws.send_frame(data, WSMsgType.TEXT)
                self._written(frame)
        except (RuntimeError, ConnectionError):
            self._stop(written=frame.written)
        finally:
            self._writer = None

    @staticmethod
    def _written(frame: _Frame) -> None:
        if frame.written is not None and not frame.written.done():
            frame.written.set_result(None)

    def _stop(self, written: asyncio.Future[None] | None = None) -> None:
        """No more frames: every waiting sender learns that the socket is gone."""
        self.closed = True
        waiting = [written] if written is not None else []
        waiting += [f.written for f in self._frames if f.written is not None]
        self._frames.clear()
        self._newest.clear()
        for future in waiting:
            if not future.done():
                future.set_exception(WebSocketDisconnected())

    def close(self) -> None:
        """The connection ended: stop writing."""
        self._stop()
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()

    def _close_slow(self) -> None:
        SLOW_CLOSED.inc()
        log.info("closing a WebSocket that stayed behind its pushes", extra={"waiting": len(self._frames)})
        self.close()
        task = asyncio.create_task(self._close_with_reason())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _close_with_reason(self) -> None:
        reason = f"too slow: pushes waited over {SLOW_SOCKET_SECONDS:g} s".encode()
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await self._ws.close(code=SLOW_CLOSE_CODE, message=reason)
        except TimeoutError:
            if self._transport is not None:
                self._transport.abort()


async def _finish(coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Run a coroutine that was started by hand (`send(None)`) and is suspended on `waiting_on` to its end, resuming it
    as an asyncio Task would: once what it waits on is done, it reads the outcome itself."""
    try:
        while True:
            try:
                if waiting_on is None:
                    await asyncio.sleep(0)  # a bare yield
                else:
                    # What a Task does with a future its coroutine yields: take over the wait it announced.
                    waiting_on._asyncio_future_blocking = False
                    await waiting_on
            except asyncio.CancelledError:
                raise
            except BaseException:  # noqa: BLE001 - the coroutine reads this outcome itself when resumed
                pass
            waiting_on = coroutine.send(None)
    except StopIteration:
        return
    except asyncio.CancelledError:
        coroutine.close()
        raise
