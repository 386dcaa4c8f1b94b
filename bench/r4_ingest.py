"""R4: events/s through EventPipeline.ingest against raw bulk upserts/s of the same resulting documents.

The stream is Kafka-like (bench.events.kafka_stream): batches of 500 events, new cases plus follow-ups,
each batch touching 500 distinct cases, so one event = one written case document and the two rates
compare like with like. After each pipeline batch the raw side upserts the documents that batch wrote
(pymongo ReplaceOne through bulk_write) into a fresh in-memory database with the same indexes, so both
rates see the same machine load. The in-memory store scans a collection for every by-id write, so both
rates fall as the collections grow.
Target: pipeline events/s / raw upserts/s >= 0.5.
"""
from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass

from pymongo import ReplaceOne

from bench.events import kafka_stream, parsed
from bench.report import Ratio, rate_line, ratio_line
from consumers.pipeline import IngestStatus
from server import SERVICES, create_app
from settings import Settings
from stores.cases import INDEXES
from stores.database import connect
from stores.memory import memory_client

BATCHES = 10
BATCH_SIZE = 500
NEW_PER_BATCH = 100
TARGET = 0.5


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


async def _measure() -> tuple[Timing, Timing]:
    """Each batch through the pipeline, then the documents it wrote as raw upserts: both see the same machine."""
    database = connect(None, "bench_r4_pipeline")
    services = create_app(Settings(demo_data=False), database)[SERVICES]
    await services.cases.ensure_indexes()
    await services.events.ensure_indexes()
    raw_cases = memory_client()["bench_r4_raw"]["cases"]
    await raw_cases.create_indexes(INDEXES)
    pipeline, raw = Timing(), Timing()
    for envelopes in kafka_stream(BATCHES, BATCH_SIZE, NEW_PER_BATCH):
        events = parsed(envelopes)
        started = time.perf_counter()
        results = await services.pipeline.ingest(events)
        pipeline.add(time.perf_counter() - started, sum(1 for r in results if r.status is IngestStatus.APPLIED))
        # Untimed: the documents exactly as this batch left them in the store.
        stored = await services.cases.get_for_update({e.case_id for e in events})
        operations = [ReplaceOne({"_id": doc["_id"]}, copy.deepcopy(doc), upsert=True) for doc in stored.values()]
        started = time.perf_counter()
        await raw_cases.bulk_write(operations, ordered=False)
        raw.add(time.perf_counter() - started, len(operations))
    return pipeline, raw


async def run() -> Ratio:
    pipeline, raw = await _measure()
    expected = BATCHES * BATCH_SIZE
    if pipeline.count != expected:
        raise RuntimeError(f"the pipeline applied {pipeline.count} of {expected} events")
    pipeline_rate, raw_rate = pipeline.rate, raw.rate
    ratio = Ratio("R4 pipeline events/s / raw upserts/s", pipeline_rate / raw_rate, f">= {TARGET}",
                  pipeline_rate / raw_rate >= TARGET)
    print(f"R4 ingest: {BATCHES} batches of {BATCH_SIZE} events ({BATCH_SIZE} distinct cases each; "
          f"{expected - BATCH_SIZE - (BATCHES - 1) * NEW_PER_BATCH:,} follow-ups), in-memory store")
    print(rate_line("EventPipeline.ingest (parsed events)", pipeline_rate, "events/s"))
    print(rate_line("bulk_write ReplaceOne upsert, same documents", raw_rate, "upserts/s"))
    print(ratio_line(ratio))
    return ratio


if __name__ == "__main__":
    asyncio.run(run())
