"""Nothing acknowledged is lost when the database process is killed (kill -9) and started again on its data.

The store is a MongoDB-wire server with a data directory (tests/wire_store.py); the app (`python server.py`) writes
with its default write concern, `w=majority, j=True` (stores/database.py). "Acknowledged" is what a client was told:
for an event from `case-events`, the consumer's committed offset (committed only after the batch's writes were
acknowledged); for a mutation, its answer. The store is killed right after the last acknowledgement, restarted on
the same directory and port, and read back by a driver of its own and through the app, which kept running.
"""
from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.child_process import AppProcess
from tests.factories import PUBLISH_CASE_EVENT, case_created_data, envelope, publish_input
from tests.kafka.kit import Broker, KafkaProbe, Topics, case_stream, interleave, wait_for
from tests.kafka.processes import (
    app_env, assert_each_event_once, bearer, start_apps, stored_versions, wait_for_stored_versions,
)
from tests.wire_store import WireStore, durable_wire_store  # noqa: F401 - the fixture, with a data directory

pytestmark = pytest.mark.kafka

DATABASE = "case_repository_durable"
CASES = [f"CASE-DUR-{n}" for n in range(1, 9)]
LENGTH = 3
API_CASE = "CASE-DUR-API"
ADD_NOTE = "mutation ($id: ID, $text: String!) { addNote(caseId: $id, text: $text) { id text caseId } }"
CASE_QUERY = "query ($id: ID!) { case(id: $id) { id status version notes { text } } }"


async def _graphql(http: aiohttp.ClientSession, app: AppProcess, query: str, variables: dict[str, Any],
                   headers: dict[str, str]) -> dict[str, Any]:
    async with http.post(f"{app.url}/graphql", json={"query": query, "variables": variables},
                         headers=headers) as response:
        return await response.json()


async def test_writes_acknowledged_before_a_kill_of_the_store_process_are_there_after_its_restart(
    kafka_broker: Broker, topics: Topics, probe: KafkaProbe, durable_wire_store: WireStore,
) -> None:
    store = durable_wire_store
    app = AppProcess(app_env(store, DATABASE, kafka_broker.bootstrap, topics))
    streams = {case_id: case_stream(case_id, LENGTH) for case_id in CASES}
    published = envelope("case.created", API_CASE, case_created_data(), sequence=1)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        try:
            # given events ingested from case-events, their offsets committed (so the broker will not redeliver)
            await start_apps(http, [app])
            await probe.produce_events(topics.events, interleave(streams.values()))
            await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed")
            # and mutations answered: an event published over HTTP and a note on each case
            answer = await _graphql(http, app, PUBLISH_CASE_EVENT, {"event": publish_input(published)},
                                    bearer("system-publisher"))
            assert answer == {"data": {"publishCaseEvent": {"eventId": published["id"], "status": "APPLIED"}}}
            notes = {}
            for case_id in CASES:
                answer = await _graphql(http, app, ADD_NOTE, {"id": case_id, "text": f"Called about {case_id}"},
                                        bearer("advisor"))
                assert "errors" not in answer, answer
                notes[answer["data"]["addNote"]["id"]] = (case_id, f"Called about {case_id}")

            # when the store process is killed at once and started again on its data directory
            store.kill()
            store.start()

            # then every acknowledged write is there: the cases, with one history row and one journal record per
            # event, and one history row per note
            note_rows = {case_id: [f"note:{note_id}"] for note_id, (case_id, _) in notes.items()}
            assert stored_versions(store, DATABASE, [*CASES, API_CASE]) == {
                **{case_id: LENGTH for case_id in CASES}, API_CASE: 1}
            assert_each_event_once(store, DATABASE, {**streams, API_CASE: [published]}, note_rows)
            # and every note
            with store.client() as mongo:
                kept = {row["_id"]: (row["caseId"], row["text"])
                        for row in mongo[DATABASE]["notes"].find({"_id": {"$in": list(notes)}})}
            assert kept == notes

            # and the app, which kept running, serves them from the restarted store
            await app.wait_ready(http)
            answer = await _graphql(http, app, CASE_QUERY, {"id": CASES[0]}, bearer("advisor"))
            assert answer == {"data": {"case": {"id": CASES[0], "status": f"STEP-{LENGTH}", "version": LENGTH,
                                                "notes": [{"text": f"Called about {CASES[0]}"}]}}}
            # and it goes on ingesting into it
            await probe.produce_events(topics.events, case_stream(f"{API_CASE}-AFTER", 1))
            await wait_for_stored_versions(store, DATABASE, {f"{API_CASE}-AFTER": 1})
        finally:
            app.kill()
