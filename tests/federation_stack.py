"""A supergraph as a bank runs it, for the gateway tests and bench R6: our server, the stand-in CRM subgraph
(tests/gateway/crm.mjs) and Hive Gateway (deploy/gateway/gateway.mjs), each a process on a free port, composed with
Apollo's composer from our live `_service { sdl }` and the CRM's SDL.

Node 20 and the npm packages (`npm ci`, run by `make test`) are required: without them the tests fail saying so.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.child_process import ChildProcess
from tests.factories import token

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_DIR = ROOT / "tests" / "gateway"  # the stand-in CRM
# The gateway and the composer, as a deployment runs them (deploy/gateway/Dockerfile, make supergraph).
DEPLOY_GATEWAY_DIR = ROOT / "deploy" / "gateway"
NODE_PACKAGES = ("@apollo/composition", "@graphql-hive/gateway-runtime", "@apollo/server", "@apollo/subgraph")
START_SECONDS = 60.0  # each starts in 1–3 s here; generous for a loaded CI machine
INSTALL_HINT = "install Node 20 with npm (apt-get install nodejs npm) and run `npm ci` (`make test` does)"


def node_binary() -> str:
    """The `node` executable with the gateway's packages installed, or a failed test naming what is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not installed: the gateway tests need it; {INSTALL_HINT}")
    missing = [name for name in NODE_PACKAGES if not (ROOT / "node_modules" / name / "package.json").is_file()]
    if missing:
        pytest.fail(f"npm packages missing from node_modules: {', '.join(missing)}; {INSTALL_HINT}")
    return node


def post_graphql(url: str, query: str, variables: dict[str, Any] | None = None,
                 authorization: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """POST one GraphQL request and return the decoded body, whatever the HTTP status."""
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, orjson.dumps({"query": query, "variables": variables or {}}), headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return orjson.loads(error.read())


def _answers(url: str) -> bool:
    try:
        return "data" in post_graphql(url, "{ __typename }", timeout=2)
    except (OSError, ValueError):
        return False


class CaseRepositoryProcess(ChildProcess):
    """`python server.py` on a free port: dev tokens, in-memory store, no demo data."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        super().__init__("case repository")
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self._extra_env = extra_env or {}

    def start(self) -> None:
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("MONGODB_", "KAFKA_", "AUTH_"))}
        env.update(APP_ENV="dev", DEMO_DATA="0", LOG_LEVEL="WARNING", **self._extra_env)
        self.spawn([sys.executable, str(ROOT / "server.py"), "--host", "127.0.0.1", "--port", str(self.port)],
                   cwd=ROOT, env=env)
        self.wait_answering(lambda: _answers(self.url), START_SECONDS, "answer GraphQL")

    def federation_sdl(self) -> str:
        """The subgraph SDL a router composes from: `_service { sdl }`, as a system client reads it."""
        # `_service` is a system client's call (access/policy.py), as a schema registry or router makes it.
        composer = token(roles=("system-publisher",), system=True, username="gateway-composer")
        result = post_graphql(self.url, "{ _service { sdl } }", authorization=f"Bearer {composer}")
        assert "errors" not in result, result
        return result["data"]["_service"]["sdl"]


class NodeProcess(ChildProcess):
    """A Node script (the CRM stand-in, the gateway), listening on a free port."""

    def __init__(self, name: str, script: Path, *arguments: str) -> None:
        super().__init__(name)
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self._command = [node_binary(), str(script), "--port", str(self.port), *arguments]

    def start(self) -> None:
        self.spawn(self._command, cwd=ROOT, env={**os.environ, "NODE_ENV": "production"})
        self.wait_answering(lambda: _answers(self.url), START_SECONDS, "answer GraphQL")


def run_composer(subgraphs: dict[str, tuple[str, str]]) -> subprocess.CompletedProcess[str]:
    """deploy/gateway/compose.mjs over `{name: (url, sdl)}`: the supergraph on stdout, or errors on stderr and exit 1."""
    with tempfile.TemporaryDirectory(prefix="supergraph-") as work:
        arguments = []
        for name, (url, sdl) in subgraphs.items():
            path = Path(work) / f"{name}.graphql"
            path.write_text(sdl)
            arguments += ["--subgraph", f"{name}={url}={path}"]
        return subprocess.run([node_binary(), str(DEPLOY_GATEWAY_DIR / "compose.mjs"), *arguments],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)


def compose(subgraphs: dict[str, tuple[str, str]]) -> str:
    """The supergraph SDL of `{name: (url, sdl)}`; a composition error fails the test."""
    done = run_composer(subgraphs)
    if done.returncode != 0:
        pytest.fail(f"the supergraph does not compose:\n{done.stderr}")
    return done.stdout


class Supergraph:
    """Our server, the CRM and the gateway, started in that order; `gateway.url` is where clients call."""

    def __init__(self, app_env: dict[str, str] | None = None) -> None:
        self.cases = CaseRepositoryProcess(app_env)
        self.crm = NodeProcess("crm subgraph", GATEWAY_DIR / "crm.mjs")
        self.supergraph_file = Path(tempfile.mkstemp(prefix="supergraph-", suffix=".graphql")[1])
        self.gateway = NodeProcess("gateway", DEPLOY_GATEWAY_DIR / "gateway.mjs", "--supergraph", str(self.supergraph_file))

    def start(self) -> None:
        self.cases.start()
        self.crm.start()
        crm_sdl = (GATEWAY_DIR / "crm.graphql").read_text()
        self.supergraph_file.write_text(compose({
            "cases": (self.cases.url, self.cases.federation_sdl()), "crm": (self.crm.url, crm_sdl)}))
        self.gateway.start()

    def stop(self) -> None:
        for process in (self.gateway, self.crm, self.cases):
            process.stop()
        self.supergraph_file.unlink(missing_ok=True)


@contextmanager
def running_supergraph(app_env: dict[str, str] | None = None) -> Iterator[Supergraph]:
    stack = Supergraph(app_env)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
