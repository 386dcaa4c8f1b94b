"""Three server processes, one consumer group, one store: each event applied by exactly one instance, live updates
across instances, and a kill -9 of one instance mid-stream that loses nothing and duplicates no history.

Every piece is a real process: the session's Tansu broker (case-events with 3 partitions), one MongoDB-wire store
(tests/wire_store.py) and three apps (`python server.py`) that share nothing else. The test looks at them from
outside: the store through a driver of its own, each app's /metrics and log, a graphql-transport-ws subscriber, and
`python audit_verify.py` at the end.
"""
from __future__ import annotations

import aiohttp
import pytest

from tests.child_process import AppProcess
from tests.kafka.kit import PARTITIONS, Broker, KafkaProbe, Topics, case_stream, interleave, wait_for, wait_until
from tests.kafka.processes import (
    app_env, applied_by, assert_each_event_once, audit_verify, partition_of, pushes_until, start_apps, subscribed,
    wait_for_split, wait_for_stored_versions,
)
from tests.wire_store import WireStore

pytestmark = pytest.mark.kafka

DATABASE = "case_repository_three"
CASES = [f"CASE-3I-{n:02d}" for n in range(1, 25)]
LENGTH, FIRST_PART, SECOND_PART = 8, 4, 6
# A killed member is noticed when its session times out (consumers/kafka_ingest.py: 10 s), then the group
# rebalances (5-18 s on this broker under load, NOTES.md).
AFTER_KILL_SECONDS = 120.0


async def test_three_instances_apply_each_event_once_share_live_updates_and_survive_a_kill(
    kafka_broker: Broker, topics: Topics, probe: KafkaProbe, wire_store: WireStore,
) -> None:
    env = app_env(wire_store, DATABASE, kafka_broker.bootstrap, topics)
    a, b, c = (AppProcess(env, name=f"instance {n}") for n in "ABC")
    streams = {case_id: case_stream(case_id, LENGTH) for case_id in CASES}
    by_partition = {p: [cid for cid in CASES if partition_of(cid) == p] for p in range(PARTITIONS)}
    assert all(by_partition.values()), by_partition  # the case ids reach every partition
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        try:
            # given three instances of one group that have split the 3 partitions, one each
            await start_apps(http, [a, b, c])
            held_a, held_b, held_c = await wait_for_split([a, b, c], "the three instances to split the partitions")
            # and a subscriber on C of a case that A consumes
            watched = by_partition[min(held_a)][0]
            async with subscribed(http, c, watched) as ws:
                # when the first part of every case's stream arrives
                await probe.produce_events(topics.events, interleave(s[:FIRST_PART] for s in streams.values()))
                await wait_for_stored_versions(wire_store, DATABASE, {cid: FIRST_PART for cid in CASES})

                # then C's subscriber saw the states A applied, in order, up to the newest
                seen = await pushes_until(ws, FIRST_PART)
                assert seen[-1] == ("STEP-4", "ANALYSIS", 4), seen
                assert [version for *_, version in seen] == sorted({version for *_, version in seen}), seen
                # and each instance applied exactly the events of its own partition, and no event twice
                await wait_for(lambda: probe.fully_committed(topics.group, topics.events), "offsets committed")
                counts = [await applied_by(http, app) for app in (a, b, c)]
                assert counts == [(FIRST_PART * len(by_partition[p]), 0)
                                  for [p] in (held_a, held_b, held_c)], (held_a, held_b, held_c)

                # when more of the stream arrives, B is killed (kill -9) once it has applied some of it, and the
                # rest of the stream follows
                await probe.produce_events(topics.events,
                                           interleave(s[FIRST_PART:SECOND_PART] for s in streams.values()))
                await wait_until(lambda: applied_by(http, b), lambda seen: seen[0] > counts[1][0],
                                 "B to apply some of the second part")
                b.kill()
                await probe.produce_events(topics.events, interleave(s[SECOND_PART:] for s in streams.values()))

                # then, after the group rebalanced onto A and C, every case holds every event
                await wait_for_stored_versions(wire_store, DATABASE, {cid: LENGTH for cid in CASES},
                                               AFTER_KILL_SECONDS)
                # and C's subscriber saw the watched case go on to its last state, never back
                seen = await pushes_until(ws, LENGTH)
                assert seen[-1] == ("STEP-8", "ANALYSIS", 8), seen
                assert [version for *_, version in seen] == sorted({version for *_, version in seen}), seen
                assert seen[0][2] > FIRST_PART, seen
            await wait_for(lambda: probe.fully_committed(topics.group, topics.events),
                           "offsets committed to the end")
            assert sorted(p for held in await wait_for_split([a, c], "A and C to hold every partition")
                          for p in held) == [0, 1, 2]

            # and nothing is lost or duplicated: one history row and one journal record per event
            assert_each_event_once(wire_store, DATABASE, streams)
            # and the audit chain verifies, as an operator checks it
            code, report = audit_verify(wire_store, DATABASE)
            assert (code, report["ok"]) == (0, True), report
        finally:
            for app in (a, b, c):
                app.kill()
