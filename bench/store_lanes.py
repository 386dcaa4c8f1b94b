"""The two stores R1, R3, R4 and R5 run on, side by side: mongomock inside the bench's process (its own cost
dominates the plain handler there), and a MongoDB-wire server in a process of its own (`secantusdb`, the test
lane's stand-in for MongoDB 7+, GPL-2.0: installed by the Makefile into `.venv-wire` and run as a separate
process, never imported). One wire server serves the whole bench run, in memory, on a free port."""
from __future__ import annotations

import atexit
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from stores.database import Database, connect

MONGOMOCK, WIRE = "mongomock", "wire server"
LANES = (MONGOMOCK, WIRE)
WIRE_SERVER = Path(__file__).resolve().parent.parent / ".venv-wire" / "bin" / "secantusd-py"
START_SECONDS = 15.0


class _WireServer:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        # An empty config of our own: the server would otherwise read a secantusd.toml from the working directory.
        self._config = tempfile.NamedTemporaryFile(prefix="bench-secantusd-", suffix=".toml", delete=False)
        self._log = tempfile.NamedTemporaryFile(prefix="bench-wire-server-", suffix=".log", delete=False)
        self._process = subprocess.Popen(
            [str(WIRE_SERVER), "--config", self._config.name, "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", ":memory:"], stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_answering()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def _wait_answering(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        with MongoClient(self.uri, serverSelectionTimeoutMS=200, connectTimeoutMS=200) as probe:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(f"the wire server exited with {self._process.returncode}; see {self._log.name}")
                try:
                    probe.admin.command("ping")
                    return
                except PyMongoError:
                    time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the wire server did not answer within {START_SECONDS} s; see {self._log.name}")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process.poll() is None else None

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()


_server: _WireServer | None = None


def available(lane: str) -> bool:
    """Whether the bench can run on `lane` (the wire server is installed by `make .venv-wire/.installed`)."""
    return lane == MONGOMOCK or WIRE_SERVER.is_file()


def _wire_uri() -> str:
    global _server
    if _server is None:
        _server = _WireServer()
        atexit.register(_server.stop)
    return _server.uri


def database(lane: str, name: str) -> Database:
    """A fresh database named `name` on `lane` (the wire server's is dropped first: a bench may run twice)."""
    if lane == MONGOMOCK:
        return connect(None, name)
    uri = _wire_uri()
    with MongoClient(uri) as admin:
        admin.drop_database(name)
    return connect(uri, name)


def raw_database(lane: str, name: str) -> Any:
    """A bare driver database on `lane` (motor's, or mongomock's), for a baseline that skips the stores."""
    if lane == MONGOMOCK:
        from stores.memory import memory_client

        return memory_client()[name]
    from motor.motor_asyncio import AsyncIOMotorClient

    uri = _wire_uri()
    with MongoClient(uri) as admin:
        admin.drop_database(name)
    return AsyncIOMotorClient(uri, tz_aware=True)[name]


def store_pids(lane: str) -> list[int]:
    """The processes that serve `lane`'s store beside the app (the wire server's; none for mongomock, which runs
    inside the app): a bench counts their CPU as the server's."""
    if lane == MONGOMOCK or _server is None or _server.pid is None:
        return []
    return [_server.pid]


def tagged(name: str, lane: str) -> str:
    """A ratio's name with the store it ran on."""
    return f"{name} [{lane}]"
