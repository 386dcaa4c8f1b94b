"""Servers the tests run in processes of their own (the Kafka broker, the wire store, the app itself): each on a
free port, its output kept in a log file, stopped as an orchestrator would (SIGTERM, then SIGKILL)."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Variables of settings.py a test of the app process sets itself or wants at their defaults, whatever the
# caller's shell holds.
APP_SETTINGS = ("MONGODB_", "KAFKA_", "AUTH_", "OUTBOX_", "DEMO_", "APP_", "DATA_ENCRYPTION_", "ALLOW_EMBEDDED",
                "RESPONSE_CACHE_")
READY_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ChildProcess:
    """One server process; `stop` and `start` again keep the same port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self._log = tempfile.NamedTemporaryFile(prefix=f"{name.replace(' ', '-')}-", suffix=".log", delete=False)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def spawn(self, command: Sequence[str], **options: Any) -> None:
        self._process = subprocess.Popen(list(command), stdout=self._log, stderr=subprocess.STDOUT, **options)

    def wait_answering(self, answers: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `answers` until it says yes; fail with the log if the process exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                pytest.fail(f"the {self.name} exited with {self.returncode}: {self.log_tail()}")
            if answers():
                return
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"the {self.name} did not {what} within {timeout} s: {self.log_tail()}")

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, as an orchestrator stops it; SIGKILL if it has not finished within `grace` seconds."""
        if not self.running:
            return
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL (kill -9): gone at once, no shutdown, as in a crash."""
        if self.running:
            assert self._process is not None
            self._process.kill()
            self._process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing is answered, as a hung process."""
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause` (harmless when it is not paused)."""
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def log_tail(self) -> str:
        return self.log_text()[-3000:]


def app_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of an app process: the inherited one minus anything that would point the app elsewhere,
    plus `settings` (variables of settings.py)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(APP_SETTINGS)}
    return inherited | dict(settings)


class AppProcess(ChildProcess):
    """`python server.py --port P` as a deployment runs it: its own process, configured by the environment only."""

    def __init__(self, env: dict[str, str], name: str = "case repository") -> None:
        super().__init__(name)
        self._env = env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self) -> None:
        self.spawn([sys.executable, "server.py", "--host", "127.0.0.1", "--port", str(self.port)],
                   cwd=ROOT, env=self._env)

    async def wait_ready(self, http: aiohttp.ClientSession, timeout: float = READY_SECONDS) -> None:
        """Until /readyz answers 200 (store, keys and Kafka reachable); fails with the log if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                pytest.fail(f"the {self.name} exited with {self.returncode}: {self.log_tail()}")
            try:
                async with http.get(f"{self.url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        pytest.fail(f"/readyz of the {self.name} on port {self.port} did not answer 200 within {timeout} s: "
                    f"{self.log_tail()}")

    async def metrics(self, http: aiohttp.ClientSession) -> str:
        """The process's /metrics text, as Prometheus scrapes it."""
        async with http.get(f"{self.url}/metrics") as response:
            assert response.status == 200, await response.text()
            return await response.text()
