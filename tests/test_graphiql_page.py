"""GraphiQL at `GET /graphql`, as an analyst inside the bank's network uses it: no host but this server reachable,
the editor renders from this server's files alone, a dev token pasted into the Headers tab signs the queries in,
the typed query (a PESEL in it) never reaches the URL nor the browser's storage, and a subscription signs in with
the same headers. Screenshots land in tests/artifacts/. How the files are served: tests/test_graphiql_assets.py.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.factories import PUBLISH_CASE_EVENT
from tests.panel_browser import ROOT, PanelServer, browser, keep_screenshot, panel_server, required_file

__all__ = ["browser", "panel_server"]  # fixtures, imported so that pytest finds them here

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
TABS = ["StartHere", "AddNote", "MyCalendar", "CaseDetail", "CaseList", "CaseStatusChanged", "CaseUpdated",
        "ClaimTask", "Customer360", "CustomerCard", "CasesWithOpenIncidents", "MyNotifications", "MyTasks",
        "Installment", "EditNote", "ScheduleAppointment", "UnclaimTask", "UnitTasks"]
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self' data:; img-src 'self' data:; "
       "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
PESEL = "85031207819"  # Anna Kowalska's, in the demo data
MORTGAGE = {"id": "CASE-2026-000123", "title": "Mortgage 350,000 PLN – flat in Kraków", "status": "IN_PROGRESS",
            "stage": "ANALYSIS", "customer": {"name": "Anna Kowalska", "pesel": PESEL}}


def headers_line(persona: str) -> str:
    """The JSON line `python -m auth.dev_tokens` prints for `persona`, as a person copies it from the terminal."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MONGODB_", "KAFKA_", "AUTH_"))}
    printed = subprocess.run([sys.executable, "-m", "auth.dev_tokens"], cwd=ROOT, env={**env, "APP_ENV": "dev"},
                             capture_output=True, text=True, check=True).stdout.splitlines()
    comment = next(i for i, line in enumerate(printed) if line.startswith(f"# {persona}:"))
    return printed[comment + 1]


class Analyst:
    """One browser context on GraphiQL with every non-loopback host blocked, and what the page tried and said."""

    def __init__(self, server: PanelServer, context: Any) -> None:
        self.server = server
        self.blocked: list[str] = []
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        context.route("**/*", self._only_loopback)
        self.page = context.new_page()
        self.page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        self.page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def _only_loopback(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        if urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def open(self) -> None:
        required_file(ROOT / "node_modules" / "graphiql" / "graphiql.min.js", "GraphiQL's npm packages (npm ci)")
        response = self.page.goto(self.server.base + "/graphql")
        assert (response.status, response.headers["content-security-policy"]) == (200, CSP)
        expect(self.page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()

    def tab_titles(self) -> list[str]:
        return self.page.locator(".graphiql-tab").all_inner_texts()

    def editor(self, which: str) -> Any:
        return self.page.locator(f"{which} .CodeMirror >> visible=true").first

    def type_into(self, which: str, text: str) -> None:
        """Select all and type over, as a person pasting would (insert_text: one input, no auto-closed brackets)."""
        self.editor(which).click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.insert_text(text)

    def value(self, which: str) -> str:
        return self.editor(which).evaluate("element => element.CodeMirror.getValue()")

    def run(self) -> dict[str, Any]:
        with self.page.expect_response(lambda r: r.url == self.server.base + "/graphql"
                                       and r.request.method == "POST"):
            self.page.get_by_label("Execute query (Ctrl-Enter)").click()
        expect(self.editor(".result-window")).not_to_have_text(re.compile(r"^\s*$"))
        return json.loads(self.value(".result-window"))


def test_graphiql_offline_runs_a_query_with_a_pasted_dev_token_and_keeps_it_out_of_the_url(
        panel_server: PanelServer, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    analyst = Analyst(panel_server, context)
    page = analyst.page

    analyst.open()
    assert analyst.tab_titles() == TABS
    expect(page.locator("#headers-help")).to_contain_text("python -m auth.dev_tokens")

    # Headers tab (open by default) takes exactly the line the dev tokens command prints.
    advisor = headers_line("advisor")
    analyst.type_into(".graphiql-editor-tool", advisor)
    assert analyst.run() == {"data": {"case": MORTGAGE}}

    # A typed PESEL stays in the editor: neither the address bar nor the browser's storage sees it.
    analyst.type_into(".graphiql-query-editor", f'query ByPesel {{ customerByPesel(pesel: "{PESEL}") {{ id name }} }}')
    expect(page.get_by_role("tab", selected=True).get_by_role("button").first).to_have_text("ByPesel")  # GraphiQL has read the new operation
    assert analyst.run() == {"data": {"customerByPesel": {"id": "CUST-1001", "name": "Anna Kowalska"}}}
    # Another example tab, not opened before, takes the pasted headers; its variables come from the file.
    page.locator(".graphiql-tab", has_text="CaseDetail").click()
    assert analyst.value(".graphiql-editor-tool") == advisor
    page.get_by_role("button", name="Variables").click()
    assert json.loads(analyst.value(".graphiql-editor-tool")) == {"id": "CASE-2026-000123", "historyFirst": 5}
    detail = analyst.run()
    assert (detail["data"]["case"]["title"], len(detail["data"]["case"]["history"]["edges"])) == (
        MORTGAGE["title"], 5)

    assert page.url == panel_server.base + "/graphql"
    assert page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]") == [0, 0, ""]
    assert analyst.blocked == []
    assert {urlsplit(url).netloc for url in analyst.requests} == {urlsplit(panel_server.base).netloc}
    assert analyst.console_errors == []
    keep_screenshot(page, "graphiql")
    context.close()



def test_a_subscription_from_graphiql_signs_in_with_the_headers_tab_and_shows_the_push(
        panel_server: PanelServer, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    analyst = Analyst(panel_server, context)
    page = analyst.page
    frames: list[str] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: frames.append(frame)))
    analyst.open()
    page.locator(".graphiql-tab", has_text="CaseUpdated").click()
    analyst.type_into(".graphiql-editor-tool", headers_line("advisor"))

    page.get_by_label("Execute query (Ctrl-Enter)").click()
    expect(page.get_by_label("Stop query (Ctrl-Enter)")).to_be_visible()  # subscribed: GraphiQL waits for pushes
    wait_until(page, lambda: '{"type":"connection_ack"}' in frames, "the server acknowledged the connection")
    publisher = headers_line("system-publisher")
    assert publish(panel_server, publisher, {
        "id": "GRAPHIQL-e1", "source": "tests/graphiql", "type": "case.status_changed",
        "subject": "CASE-2026-000123", "time": "2026-11-03T09:00:00+00:00",
        "data": {"status": "IN_PROGRESS", "stage": "VALUATION"}}) == {
        "data": {"publishCaseEvent": {"eventId": "GRAPHIQL-e1", "status": "APPLIED"}}}

    expect(analyst.editor(".result-window")).to_contain_text('"stage": "VALUATION"')
    pushed = json.loads(analyst.value(".result-window"))["data"]["caseUpdated"]
    assert (pushed["id"], pushed["status"], pushed["stage"]) == ("CASE-2026-000123", "IN_PROGRESS", "VALUATION")
    assert page.url == panel_server.base + "/graphql"
    assert (analyst.blocked, analyst.console_errors) == ([], [])
    keep_screenshot(page, "graphiql-subscription")
    context.close()


def publish(server: PanelServer, headers_json: str, event: dict[str, Any]) -> dict[str, Any]:
    """publishCaseEvent over HTTP with the headers a persona's line gives."""
    request = urllib.request.Request(server.base + "/graphql", method="POST", data=json.dumps({
        "query": PUBLISH_CASE_EVENT, "variables": {"event": event}}).encode(),
        headers={"Content-Type": "application/json", **json.loads(headers_json)})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def wait_until(page: Any, condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Wait with the page's clock: Playwright delivers events (WebSocket frames) only while it is called."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        page.wait_for_timeout(50)
