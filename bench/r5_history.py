"""R5: the cost of one event on a case with a long history, against one on a brand-new case.

Both sides send `case.action_recorded`, one event per `EventPipeline.ingest` call as a live stream does, through
the same app (started by its own cleanup_ctx, so indexes are whatever startup creates) on the same in-memory
store. The long side sends every event to one case that already holds 10,000 history entries (its
`case.created` and 9,999 actions, ingested in batches of 500); the new side sends each event to a different case
that holds only its `case.created`. The long case and the whole pool of new cases exist before any timing, so
both sides see the same collections; rounds alternate the sides (and which goes first) so noise hits both.
Printed as a cost ratio, new-case events/s / long-case events/s: how many times dearer an event is once its case
has a long history. Target: <= 1.5 - applying an event must not cost in proportion to the case's history.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from bench.events import START, CaseScript, parsed
from bench import store_lanes
from bench.report import Ratio, rate_line, ratio_line
from bench.store_lanes import MONGOMOCK, WIRE, tagged
from consumers.cloudevents import CaseEvent
from consumers.pipeline import EventPipeline, IngestStatus
from context import Services
from server import SERVICES, create_app
from settings import Settings

SETUP_BATCH = 500
TARGET = 1.5


@dataclass(frozen=True)
class Size:
    """A lane's run: the long case's history entries, and rounds x events per round on each side."""

    history: int
    rounds: int
    per_round: int


# The wire server writes ~100 events/s on an idle core (R4), so building a 10,000-entry case there would take
# minutes: it gets a 2,000-entry case, still 2,000 times the new cases' one entry, and fewer timed events.
SIZES = {MONGOMOCK: Size(10_000, 5, 20), WIRE: Size(2_000, 4, 10)}
HISTORY, ROUNDS, PER_ROUND = SIZES[MONGOMOCK].history, SIZES[MONGOMOCK].rounds, SIZES[MONGOMOCK].per_round


@dataclass(frozen=True)
class Rates:
    """Events/s on each side, and how long building the long case and the pool took."""

    new: float
    long: float
    setup_seconds: float
    lane: str = MONGOMOCK

    @property
    def ratio(self) -> Ratio:
        cost = self.new / self.long
        return Ratio(tagged("R5 new-case events/s / long-case events/s", self.lane), cost, f"<= {TARGET}", cost <= TARGET, ".2f")


@asynccontextmanager
async def started(app: web.Application) -> AsyncIterator[Services]:
    """The app's services as its startup leaves them (indexes and all), without serving HTTP."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        yield app[SERVICES]
    finally:
        await runner.cleanup()


async def _apply(pipeline: EventPipeline, events: Sequence[CaseEvent]) -> None:
    results = await pipeline.ingest(events, actor="bench")
    refused = [r for r in results if r.status is not IngestStatus.APPLIED]
    if refused:
        raise RuntimeError(f"the pipeline did not apply {len(refused)} of {len(events)} events: {refused[0]}")


async def _apply_in_batches(pipeline: EventPipeline, envelopes: list[dict[str, Any]]) -> None:
    for start in range(0, len(envelopes), SETUP_BATCH):
        await _apply(pipeline, parsed(envelopes[start:start + SETUP_BATCH]))


async def _timed(pipeline: EventPipeline, event: CaseEvent) -> float:
    started_at = time.perf_counter()
    results = await pipeline.ingest([event], actor="bench")
    elapsed = time.perf_counter() - started_at
    if results[0].status is not IngestStatus.APPLIED:
        raise RuntimeError(f"the pipeline did not apply {event.id}: {results[0]}")
    return elapsed


async def measure(history: int = HISTORY, rounds: int = ROUNDS, per_round: int = PER_ROUND,
                  lane: str = MONGOMOCK) -> Rates:
    """Build the long case and `rounds * per_round` new cases, then time both sides round by round."""
    app = create_app(Settings(demo_data=False), store_lanes.database(lane, "bench_r5"))
    async with started(app) as services:
        pipeline = services.pipeline
        setup_started = time.perf_counter()
        # Its events are 7 minutes apart: started early enough that the last one is not ahead of the clock (the
        # pipeline refuses an event more than a day ahead; 10,000 entries span 48 days).
        long_case = CaseScript("CASE-LONG", START - timedelta(minutes=7 * (history + rounds * per_round + 1)))
        await _apply_in_batches(pipeline, [long_case.created(1)]
                                + [long_case.action(number) for number in range(1, history)])
        new_cases = [CaseScript(f"CASE-NEW-{number:05d}", START + timedelta(minutes=number))
                     for number in range(rounds * per_round)]
        await _apply_in_batches(pipeline, [case.created(number % 97) for number, case in enumerate(new_cases)])
        setup_seconds = time.perf_counter() - setup_started

        sides = {
            "new": parsed([case.action(1) for case in new_cases]),
            "long": parsed([long_case.action(history + number) for number in range(rounds * per_round)]),
        }
        seconds = dict.fromkeys(sides, 0.0)
        for round_number in range(rounds):
            order = ["new", "long"] if round_number % 2 == 0 else ["long", "new"]
            for side in order:
                for event in sides[side][round_number * per_round:(round_number + 1) * per_round]:
                    seconds[side] += await _timed(pipeline, event)
    count = rounds * per_round
    return Rates(new=count / seconds["new"], long=count / seconds["long"], setup_seconds=setup_seconds, lane=lane)


async def run(lane: str = MONGOMOCK) -> Ratio:
    size = SIZES[lane]
    rates = await measure(size.history, size.rounds, size.per_round, lane=lane)
    ratio = rates.ratio
    print(f"R5 history: one case.action_recorded per ingest call, {size.rounds} rounds x {size.per_round} events "
          f"a side, on the {lane}; setup ({size.history:,}-entry case + {size.rounds * size.per_round} new cases) "
          f"{rates.setup_seconds:.1f} s")
    print(rate_line("EventPipeline.ingest, brand-new case", rates.new, "events/s"))
    print(rate_line(f"EventPipeline.ingest, case with {size.history:,} entries", rates.long, "events/s"))
    print(ratio_line(ratio))
    return ratio


if __name__ == "__main__":
    asyncio.run(run())
