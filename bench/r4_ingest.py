"""R4: events/s through EventPipeline.ingest against raw bulk writes of the same resulting records.

The stream is Kafka-like (bench.events.kafka_stream): batches of events (10 x 500 on mongomock, 5 x 200 on the
wire server: SIZES), new cases plus follow-ups, each batch touching as many distinct cases as it has events. An
event leaves several records: its case document, its history row, its journal record, its task row (task
events), the case's `case.state_changed` in the outbox, and the batch's audit record. After each pipeline batch the raw side writes exactly the records that batch left in the store
(pymongo ReplaceOne upserts through one bulk_write per collection) into a fresh in-memory database with the
same indexes, so both sides store the same data and see the same machine load; both rates count the batch's
events. What the pipeline adds is everything else: reading and deduplicating, validation already done,
reducing, sealing, staging the effects in the case and relaying them, the guards.
Target: pipeline events/s / raw events/s >= 0.5.
"""
from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass
from typing import Any

from pymongo import ReplaceOne

from bench.events import kafka_stream, parsed
from bench import store_lanes
from bench.report import Ratio, rate_line, ratio_line
from bench.store_lanes import MONGOMOCK, WIRE, tagged
from consumers.pipeline import IngestStatus
from server import SERVICES, create_app
from settings import Settings
from stores import audit, cases, events as journal, history, outbox, tasks

# Each collection the pipeline writes, with its indexes: the raw side keeps the same ones.
COLLECTIONS = {module.COLLECTION: module.INDEXES for module in (cases, history, journal, tasks, outbox, audit)}

TARGET = 0.5


@dataclass(frozen=True)
class Size:
    """How many events a lane's run sends: batches, events per batch, new cases per later batch."""

    batches: int
    batch_size: int
    new_per_batch: int

    @property
    def events(self) -> int:
        return self.batches * self.batch_size


# The wire server spends ~10 ms of its own CPU per event written (it is Python, one core; the pipeline's 13 round
# trips per batch do not grow with the batch), so it gets fewer events: the same stream shape, the same ratio.
SIZES = {MONGOMOCK: Size(10, 500, 100), WIRE: Size(5, 200, 40)}


@dataclass
class Timing:
    seconds: float = 0.0
    count: int = 0

    def add(self, seconds: float, count: int) -> None:
        self.seconds += seconds
        self.count += count

    @property
    def rate(self) -> float:
        return self.count / self.seconds


async def _measure(lane: str = MONGOMOCK, size: Size | None = None) -> tuple[Timing, Timing]:
    """Each batch through the pipeline, then the documents it wrote as raw upserts: both see the same machine and
    the same store."""
    database = store_lanes.database(lane, "bench_r4_pipeline")
    services = create_app(Settings(demo_data=False), database)[SERVICES]
    for store in (services.cases, services.events, services.history, services.tasks, services.outbox,
                  services.audit):
        await store.ensure_indexes()
    raw_db = store_lanes.raw_database(lane, "bench_r4_raw")
    for name, indexes in COLLECTIONS.items():
        await raw_db[name].create_indexes(indexes)
    size = size or SIZES[lane]
    pipeline, raw = Timing(), Timing()
    for envelopes in kafka_stream(size.batches, size.batch_size, size.new_per_batch):
        events = parsed(envelopes)
        started = time.perf_counter()
        results = await services.pipeline.ingest(events)
        applied = sum(1 for r in results if r.status is IngestStatus.APPLIED)
        pipeline.add(time.perf_counter() - started, applied)
        # Untimed: the records exactly as this batch left them in the store.
        written = await _records_of(database, events)
        started = time.perf_counter()
        for name, records in written.items():
            if not records:
                continue
            await raw_db[name].bulk_write(
                [ReplaceOne({"_id": r["_id"]}, copy.deepcopy(r), upsert=True) for r in records], ordered=False)
        raw.add(time.perf_counter() - started, applied)
    return pipeline, raw


async def _records_of(database: Any, events: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Every record the batch of `events` left: by collection, read back raw."""
    case_ids = sorted({e.case_id for e in events})
    event_ids = [e.id for e in events]
    queries = {
        cases.COLLECTION: {"_id": {"$in": case_ids}},
        history.COLLECTION: {"_id": {"$in": event_ids}},
        journal.COLLECTION: {"_id": {"$in": event_ids}},
        tasks.COLLECTION: {"caseId": {"$in": case_ids}},
        outbox.COLLECTION: {"key": {"$in": case_ids}, "status": outbox.SENT, "sentAt": {"$exists": True}},
    }
    written = {name: await database.collection(name).find(query).to_list(None) for name, query in queries.items()}
    # This batch's own state messages and audit record, not those of earlier batches of the same cases.
    latest = {doc["_id"]: doc["version"] for doc in written[cases.COLLECTION]}
    written[outbox.COLLECTION] = [m for m in written[outbox.COLLECTION]
                                  if m["_id"] == f"{m['key']}:{latest.get(m['key'])}"]
    written[audit.COLLECTION] = await database.collection(audit.COLLECTION).find().sort(
        [("_id", -1)]).limit(1).to_list(None)
    return written


async def run(lane: str = MONGOMOCK) -> Ratio:
    size = SIZES[lane]
    pipeline, raw = await _measure(lane, size)
    expected = size.events
    if pipeline.count != expected:
        raise RuntimeError(f"the pipeline applied {pipeline.count} of {expected} events")
    pipeline_rate, raw_rate = pipeline.rate, raw.rate
    ratio = Ratio(tagged("R4 pipeline events/s / raw events/s", lane), pipeline_rate / raw_rate, f">= {TARGET}",
                  pipeline_rate / raw_rate >= TARGET)
    print(f"R4 ingest: {size.batches} batches of {size.batch_size} events ({size.batch_size} distinct cases each; "
          f"{expected - size.batch_size - (size.batches - 1) * size.new_per_batch:,} follow-ups), on the {lane}")
    print(rate_line("EventPipeline.ingest (parsed events)", pipeline_rate, "events/s"))
    print(rate_line("bulk_write ReplaceOne upserts of the same records", raw_rate, "events/s"))
    print(ratio_line(ratio))
    return ratio


if __name__ == "__main__":
    asyncio.run(run())
