"""`/healthz` keeps answering while the heaviest requests the bounds allow are served (issue 11, item 4).

The attacks of the review, each at the limits a request may reach (schema/limits.py, schema/input_limits.py), sent
to the running server over HTTP while a client on another thread (so not on the server's event loop) polls
`/healthz`: a customer timeline over a case of 30,000 entries, 100 `_entities` representations of long cases, and
an `or` filter of 100 clauses with search texts. The in-memory store computes on its own thread (stores/memory.py),
so the event loop stays free: each health answer must come within HEALTH_BOUND. The bound is generous on purpose:
with the store on the event loop the timeline alone held `/healthz` for over a second per store call (and the
review saw seconds to minutes); this is a test of behaviour, not of speed.
"""
from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.factories import BASE_TIME, action_recorded, bearer, created

HEALTH_BOUND = 1.0  # seconds
LONG_CASES, ACTIONS = 4, 600  # 2,400 history rows in the collection every history read scans
OTHER_CASES = 96
TIMELINE_ROWS = 30_000

# A page of 100: the store's work (a scan of every history row on mongomock) is what is on trial, not the event
# loop's own work of serializing a long page, which a loaded machine stretches too.
TIMELINE = """query { customer(id: "CUST-1") {
  timeline(first: 100) { totalCount edges { node { id summary at } } } } }"""
ENTITIES = """query ($representations: [_Any!]!) { _entities(representations: $representations) {
  ... on Case { id history(first: 50) { totalCount edges { node { id summary } } } } } }"""
FILTERED = """query ($filter: CaseFilter) { cases(filter: $filter, first: 500) {
  totalCount edges { node { id title status } } } }"""

pytestmark = pytest.mark.mongomock_only(reason="it proves that the embedded store's calls run off the event loop")


class HealthProbe(threading.Thread):
    """Asks `/healthz` again and again from its own thread, with a blocking client, and keeps each answer's time."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self._url = url
        self._finished = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self._finished.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self._url, timeout=120) as response:
                    response.read()
                    if response.status != 200:
                        self.failures.append(f"status {response.status}")
            except OSError as error:
                self.failures.append(repr(error))
            self.latencies.append(time.perf_counter() - started)
            self._finished.wait(0.02)

    def finish(self) -> None:
        self._finished.set()
        self.join(timeout=150)


async def _served_with_health_probe(client: TestClient, query: str, variables: dict[str, Any]) -> tuple[
        dict[str, Any], HealthProbe]:
    """The answer to one request, and the probe that polled `/healthz` while it was served."""
    probe = HealthProbe(str(client.make_url("/healthz")))
    probe.start()
    try:
        response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=bearer())
        answer = await response.json()
    finally:
        await asyncio.get_running_loop().run_in_executor(None, probe.finish)
    return answer, probe


def _assert_answered_promptly(name: str, probe: HealthProbe) -> None:
    assert probe.failures == [], name
    assert probe.latencies, f"{name}: /healthz was never asked"
    assert max(probe.latencies) < HEALTH_BOUND, f"{name}: /healthz took {max(probe.latencies):.2f} s"


def _case_ids() -> list[str]:
    return [f"CASE-L{n}" for n in range(LONG_CASES)] + [f"CASE-{n:03d}" for n in range(OTHER_CASES)]


async def test_healthz_answers_within_a_second_during_a_timeline_over_30000_entries(
    client: TestClient, services: Any,
) -> None:
    # A case with 30,000 history rows, written through the history store as the pipeline writes them.
    await services.pipeline.ingest([created("CASE-LONG", event_id="CASE-LONG-created")])
    rows = [{"_id": f"CASE-LONG-a{i}", "id": f"A-{i:05d}", "caseId": "CASE-LONG", "kind": "CALL",
             "channel": "CALL_CENTER", "actor": {"type": "USER", "id": "u-marek", "name": "Marek Lis"},
             "at": BASE_TIME + timedelta(days=1, seconds=i), "summary": "Customer called"}
            for i in range(TIMELINE_ROWS)]
    for start in range(0, TIMELINE_ROWS, 5_000):
        await services.history.append(rows[start:start + 5_000])

    answer, probe = await _served_with_health_probe(client, TIMELINE, {})

    timeline = answer["data"]["customer"]["timeline"]
    assert timeline["totalCount"] == TIMELINE_ROWS + 1
    assert [e["node"]["id"] for e in timeline["edges"][:2]] == ["A-29999", "A-29998"]
    assert len(timeline["edges"]) == 100
    _assert_answered_promptly("customer timeline", probe)


async def test_healthz_answers_within_a_second_during_entities_and_filters_at_the_bounds(
    client: TestClient, services: Any,
) -> None:
    await services.pipeline.ingest([created(case_id, event_id=f"{case_id}-created") for case_id in _case_ids()])
    for n in range(LONG_CASES):
        case_id = f"CASE-L{n}"
        await services.pipeline.ingest([
            action_recorded(case_id, f"A-{n}-{i:04d}", BASE_TIME + timedelta(days=1, seconds=i),
                            summary=f"Customer called about the offer, call {i}", event_id=f"{case_id}-a{i}")
            for i in range(ACTIONS)])
    representations = [{"__typename": "Case", "id": case_id} for case_id in _case_ids()]
    clauses = [{"status": ["NEW", "IN_PROGRESS", f"S{i}"], "text": f"{i:03d}" + "a" * 197} for i in range(99)]
    at_bounds = {"or": [*clauses, {"and": [{"or": [{"status": ["NEW"]}]}]}]}

    entities, entities_probe = await _served_with_health_probe(client, ENTITIES, {"representations": representations})
    filtered, filter_probe = await _served_with_health_probe(client, FILTERED, {"filter": at_bounds})

    found = entities["data"]["_entities"]
    assert [e["id"] for e in found] == _case_ids()
    assert [e["history"]["totalCount"] for e in found[:LONG_CASES + 1]] == [ACTIONS + 1] * LONG_CASES + [1]
    assert found[0]["history"]["edges"][0] == {"node": {"id": "A-0-0599",
                                                        "summary": "Customer called about the offer, call 599"}}
    _assert_answered_promptly("100 _entities representations", entities_probe)
    # No title contains the search texts: the clause without text (status NEW) matches every case.
    assert filtered["data"]["cases"]["totalCount"] == LONG_CASES + OTHER_CASES
    _assert_answered_promptly("an or filter of 100 clauses", filter_probe)
