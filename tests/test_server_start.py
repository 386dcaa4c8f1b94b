"""`python server.py` as an operator starts it: "started" is logged once the port accepts connections, a taken port
is one clear line and exit code 1 (no traceback), and SIGTERM stops it cleanly."""
from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

import orjson

from tests.child_process import ChildProcess

REPOSITORY = Path(__file__).resolve().parent.parent


class Server(ChildProcess):
    def __init__(self, name: str, port: int | None = None) -> None:
        super().__init__(name)
        if port is not None:
            self.port = port

    def start(self) -> None:
        env = {**os.environ, "APP_ENV": "dev", "DEMO_DATA": "0", "LOG_LEVEL": "INFO"}
        for name in ("PORT", "HOST", "MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS"):
            env.pop(name, None)
        self.spawn([sys.executable, "server.py", "--port", str(self.port)], cwd=REPOSITORY, env=env)

    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def json_lines(self) -> list[dict[str, object]]:
        """The log lines (the dev tokens' Headers-tab lines are JSON too, but no log's)."""
        lines = [orjson.loads(line) for line in self.output().splitlines() if line.startswith("{")]
        return [line for line in lines if "logger" in line]


def healthz(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return response.status


def started(server: Server) -> bool:
    return any(line.get("message") == "case repository started" for line in server.json_lines())


def test_started_is_logged_when_the_port_answers_and_a_second_server_on_it_exits_with_one_line() -> None:
    first = Server("first server")
    first.start()
    try:
        first.wait_answering(lambda: started(first), 60, 'log "case repository started"')
        # The line is written after the bind: the port answers at once, no retry needed.
        assert healthz(first.port) == 200
        line = next(line for line in first.json_lines() if line.get("message") == "case repository started")
        assert {key: line[key] for key in ("level", "host", "port", "store", "kafka")} == {
            "level": "info", "host": "127.0.0.1", "port": first.port, "store": "in-memory", "kafka": "in-process bus"}
        assert f"Case Repository: GraphiQL at http://127.0.0.1:{first.port}/graphql\n" in first.output()

        second = Server("second server", port=first.port)
        second.start()
        assert second._process is not None
        assert second._process.wait(60) == 1
        assert second.output() == (
            f"error: 127.0.0.1:{first.port} is already in use; choose another port with PORT=8001 make run "
            f"(or python server.py --port 8001)\n")
        assert healthz(first.port) == 200  # the first one is untouched
    finally:
        first.stop()

    assert first.returncode == 0
    assert [line["message"] for line in first.json_lines()][-1] == "case repository stopped"
