"""A MongoDB-wire store in a process of its own, for tests in which the app process dies and the store must not.

The server is `secantusdb` (GPL-2.0, beta), installed by `make test` into `.venv-wire`, a virtualenv of its own: it
runs beside the tests as a separate process and is never imported by the app or the tests. Its storage is in memory:
only the app dies in these tests, so nothing has to survive the store itself.
"""
from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

ROOT = Path(__file__).resolve().parent.parent
WIRE_SERVER = ROOT / ".venv-wire" / "bin" / "secantusd-py"
START_SECONDS = 15.0  # ready in ~0.2 s here (NOTES.md); generous for a loaded CI machine


def wire_server_binary() -> Path:
    """The wire server `make test` installs; a missing one fails the test (it must never pass unseen)."""
    if not WIRE_SERVER.is_file():
        pytest.fail(f"the MongoDB-wire test server is missing at {WIRE_SERVER}: run `make .venv-wire/.installed` "
                    "(or `make test`), which installs secantusdb into its own virtualenv")
    return WIRE_SERVER


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WireStore:
    """One secantusdb process on a free port with in-memory storage."""

    def __init__(self, executable: Path) -> None:
        self._executable = executable
        self.port = free_port()
        self._log = tempfile.NamedTemporaryFile(prefix="secantusd-", suffix=".log", delete=False)
        # An empty config file of our own: the server would otherwise pick up a secantusd.toml from the
        # working directory, the home directory or /etc.
        self._config = tempfile.NamedTemporaryFile(prefix="secantusd-", suffix=".toml", delete=False)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def client(self) -> MongoClient:
        """A synchronous driver on the store, as an operator's database shell would look at it."""
        return MongoClient(self.uri, tz_aware=True, serverSelectionTimeoutMS=5000)

    def start(self, timeout: float = START_SECONDS) -> None:
        self._process = subprocess.Popen(
            [str(self._executable), "--config", self._config.name, "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", ":memory:"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        with MongoClient(self.uri, serverSelectionTimeoutMS=200, connectTimeoutMS=200) as probe:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    pytest.fail(f"the wire server exited with {self._process.returncode}: {self.log_tail()}")
                try:
                    probe.admin.command("ping")
                    return
                except PyMongoError:
                    time.sleep(0.05)
        self.stop()
        pytest.fail(f"the wire server did not answer a ping within {timeout} s: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM (it exits within ~1-3 s), then SIGKILL if it lingers."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)

    def log_tail(self) -> str:
        return Path(self._log.name).read_text(errors="replace")[-2000:]


@pytest.fixture
def wire_store() -> Iterator[WireStore]:
    """A fresh wire server for one test, stopped afterwards whatever the test did."""
    store = WireStore(wire_server_binary())
    store.start()
    try:
        yield store
    finally:
        store.stop()
