"""A lean WebSocket client for bench R6: asyncio protocols that parse frames themselves.

R6 times a push from its trigger to the subscriber's frame, so the client's own cost per frame lands in both sides'
numbers and squeezes their ratio towards 1. aiohttp's client (a reader task, a message object and a queue hop per
frame) measured about 20 µs per frame here: at 1,000 subscribers the clients, not the servers, set the plain
fan-out's p99. This one reads each arriving chunk once, timestamps it, and splits it into frames with a few slices.
It speaks what the bench needs: the opening handshake (with a subprotocol), masked text frames out, unmasked text
frames in (no fragments, no extensions: both servers send neither), ping answered, close.
"""
from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
HANDSHAKE_SECONDS = 30.0

# Called with a text frame's payload and when the chunk that completed it arrived (time.perf_counter()).
OnText = Callable[[bytes, float], None]


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final frame, masked as RFC 6455 requires of a client."""
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    keystream = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(size, "big")
    return header + mask + masked


class WebSocketClient(asyncio.Protocol):
    """One connection. Text frames wait in `inbox` until `listen` hands the rest to a callback."""

    def __init__(self, request: bytes) -> None:
        self._request = request
        self._buffer = bytearray()
        self._upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._on_text: OnText | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()
        buffer = self._buffer
        buffer += data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[:buffer.find(b"\r\n")])
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(f"no upgrade: {bytes(buffer[:end]).decode(errors='replace')}"))
                assert self.transport is not None
                self.transport.close()
                return
            del buffer[:end + 4]
            self._upgraded = True
            self.opened.set_result(None)
        position, available = 0, len(buffer)
        while available - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            size, start = second & 0x7F, position + 2
            if size == 126:
                if available - position < 4:
                    break
                size, start = int.from_bytes(buffer[position + 2:position + 4], "big"), position + 4
            elif size == 127:
                if available - position < 10:
                    break
                size, start = int.from_bytes(buffer[position + 2:position + 10], "big"), position + 10
            end = start + size
            if end > available:
                break
            payload = bytes(buffer[start:end])
            position = end
            opcode = first & 0x0F
            if opcode == TEXT:
                if self._on_text is not None:
                    self._on_text(payload, at)
                else:
                    self.inbox.put_nowait(payload)
            elif opcode == PING:
                self.send(PONG, payload)
            elif opcode == CLOSE:
                assert self.transport is not None
                self.transport.close()
        del buffer[:position]

    def send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    def send_text(self, text: bytes) -> None:
        self.send(TEXT, text)

    async def receive(self, timeout: float = HANDSHAKE_SECONDS) -> bytes:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    def listen(self, on_text: OnText) -> None:
        """From now on every text frame goes to `on_text`, the ones already waiting first."""
        while not self.inbox.empty():
            on_text(self.inbox.get_nowait(), time.perf_counter())
        self._on_text = on_text

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.send(CLOSE, (1000).to_bytes(2, "big"))
        try:
            await asyncio.wait_for(self.closed.wait(), 5)
        except asyncio.TimeoutError:
            self.transport.abort()


async def open_websocket(url: str, subprotocol: str | None = None) -> WebSocketClient:
    """Connect to `ws://host:port/path` and finish the opening handshake."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    _, client = await asyncio.get_running_loop().create_connection(lambda: WebSocketClient(request), host, port)
    await asyncio.wait_for(client.opened, HANDSHAKE_SECONDS)
    return client
