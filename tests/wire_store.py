"""A MongoDB-wire store in a process of its own, for tests in which the app process dies and the store must not.

The server is `secantusdb` (GPL-2.0, beta), installed by `make test` into `.venv-wire`, a virtualenv of its own: it
runs beside the tests as a separate process and is never imported by the app or the tests. Its storage is in memory
where only the app dies; the durability tests give it a data directory, kill -9 it and start it again on the same
directory and port, as a restarted mongod.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from tests.child_process import ROOT, ChildProcess

WIRE_SERVER = ROOT / ".venv-wire" / "bin" / "secantusd-py"
START_SECONDS = 15.0  # ready in ~0.2 s here (NOTES.md); generous for a loaded CI machine


def wire_server_binary() -> Path:
    """The wire server `make test` installs; a missing one fails the test (it must never pass unseen)."""
    if not WIRE_SERVER.is_file():
        pytest.fail(f"the MongoDB-wire test server is missing at {WIRE_SERVER}: run `make .venv-wire/.installed` "
                    "(or `make test`), which installs secantusdb into its own virtualenv")
    return WIRE_SERVER


class WireStore(ChildProcess):
    """One secantusdb process on a free port, with in-memory storage or a data directory (`data_dir`), which
    survives the process: `kill` and `start` again reopen it on the same port."""

    def __init__(self, executable: Path, data_dir: Path | None = None) -> None:
        super().__init__("wire server")
        self._executable = executable
        self._storage = ":memory:" if data_dir is None else str(data_dir)
        # An empty config file of our own: the server would otherwise pick up a secantusd.toml from the
        # working directory, the home directory or /etc.
        self._config = tempfile.NamedTemporaryFile(prefix="secantusd-", suffix=".toml", delete=False)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def client(self) -> MongoClient:
        """A synchronous driver on the store, as an operator's database shell would look at it."""
        return MongoClient(self.uri, tz_aware=True, serverSelectionTimeoutMS=5000)

    def start(self, timeout: float = START_SECONDS) -> None:
        self.spawn([str(self._executable), "--config", self._config.name, "--host", "127.0.0.1",
                    "--port", str(self.port), "--storage-path", self._storage])
        with MongoClient(self.uri, serverSelectionTimeoutMS=200, connectTimeoutMS=200) as probe:
            self.wait_answering(lambda: _pings(probe), timeout, "answer a ping")


def _pings(probe: MongoClient) -> bool:
    try:
        probe.admin.command("ping")
    except PyMongoError:
        return False
    return True


@pytest.fixture
def wire_store() -> Iterator[WireStore]:
    """A fresh wire server for one test, stopped afterwards whatever the test did."""
    store = WireStore(wire_server_binary())
    store.start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def durable_wire_store(tmp_path: Path) -> Iterator[WireStore]:
    """A wire server whose data is in a directory of this test: it can be killed and started again."""
    store = WireStore(wire_server_binary(), data_dir=tmp_path / "store")
    store.start()
    try:
        yield store
    finally:
        store.stop()
