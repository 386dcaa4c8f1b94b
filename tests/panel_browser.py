"""What the /panel browser tests stand on: the app in a process of its own with the demo data, Debian's chromium
driven by Playwright (never a browser download), axe-core from npm, and the dev outbox for the SMS codes.

`make test` installs chromium (apt-get) and axe-core (`npm ci`); when either is missing the tests fail saying so.
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.child_process import ChildProcess

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
START_SECONDS = 60.0  # ~2 s here; generous for a loaded CI machine
CODE_SECONDS = 10.0
INSTALL_HINT = "run `make browser-tools` (or `make test`), which installs them"


def required_file(path: Path, what: str) -> Path:
    """`path`, or a failed test naming what is missing: these tests must never pass unseen."""
    if not path.is_file():
        pytest.fail(f"{what} is missing at {path}: {INSTALL_HINT}")
    return path


class PanelServer(ChildProcess):
    """`python server.py` on a free port: dev, in-memory store, demo data, no answer floor (tests stay quick)."""

    def __init__(self) -> None:
        super().__init__("case repository")
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("MONGODB_", "KAFKA_", "AUTH_"))}
        env.update(APP_ENV="dev", DEMO_DATA="1", PANEL_ANSWER_FLOOR_SECONDS="0", LOG_LEVEL="WARNING")
        self.spawn([sys.executable, str(ROOT / "server.py"), "--host", "127.0.0.1", "--port", str(self.port)],
                   cwd=ROOT, env=env)
        self.wait_answering(lambda: self.status("/readyz") == 200, START_SECONDS, "answer /readyz")

    def status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self.base + path, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=5) as response:
            return json.load(response)

    def graphql(self, query: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base + "/graphql", data=json.dumps({"query": query}).encode(),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def commands(self, event_type: str) -> list[dict[str, Any]]:
        """The `data` of the CloudEvents sent on case-commands of `event_type`, oldest first (GET /dev/commands)."""
        return [event["data"] for event in self.get_json(f"/dev/commands?type={event_type}")]

    def codes(self, participant_id: str) -> list[str]:
        return [data["params"]["otp"] for data in self.commands("notification.requested")
                if data["template"] == "panel-otp" and data["params"]["participantId"] == participant_id]

    def new_code(self, participant_id: str, known: int) -> str:
        """The code sent to `participant_id` after the `known` ones, as their phone would show it."""
        deadline = time.monotonic() + CODE_SECONDS
        while time.monotonic() < deadline:
            codes = self.codes(participant_id)
            if len(codes) > known:
                return codes[-1]
            time.sleep(0.05)
        pytest.fail(f"no new panel-otp code for {participant_id} within {CODE_SECONDS} s: {self.log_tail()}")


@pytest.fixture(scope="module")
def panel_server() -> Iterator[PanelServer]:
    server = PanelServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium for the module's tests (each test gets a fresh context, so nothing is shared)."""
    executable = required_file(CHROMIUM, "Debian's chromium (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable))
        yield launched
        launched.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now: every rule axe runs by default, WCAG 2.2 AA among them."""
    # Evaluated over the DevTools protocol, not added as a <script>: the page keeps the CSP it was served with.
    page.evaluate(required_file(AXE, "axe-core (npm ci)").read_text())
    return page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))""")


def keep_screenshot(page: Any, name: str) -> Path:
    """A full-page PNG under tests/artifacts/ (gitignored), kept for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
