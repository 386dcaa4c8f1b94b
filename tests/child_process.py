"""Servers the tests run in processes of their own (the Kafka broker, the wire store, the app itself): each on a
free port, its output kept in a log file, stopped as an orchestrator would (SIGTERM, then SIGKILL)."""
from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest


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

    def log_tail(self) -> str:
        return Path(self._log.name).read_text(errors="replace")[-3000:]
