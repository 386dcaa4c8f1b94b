"""`make bench`: every ratio, one after the other, then a summary. `--strict` exits 1 when a target is missed."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from bench import (growth, mixed_load, r1_case_detail, r2_security, r3_round_trips, r4_ingest, r5_history,
                   r6_push, r7_my_tasks, store_lanes)
from bench.load import generator_name
from bench.report import Ratio

BENCHMARKS = (r1_case_detail, r2_security, r3_round_trips, r4_ingest, r5_history, r6_push, r7_my_tasks)
# Run on both stores, one right after the other (bench/store_lanes.py); the others on mongomock.
ON_BOTH_STORES = (r1_case_detail, r3_round_trips, r4_ingest, r5_history)


async def run_all(failed: list[str]) -> list[Ratio]:
    """Every benchmark on its stores; those that raised are named in `failed`."""
    ratios: list[Ratio] = []
    for benchmark in BENCHMARKS:
        lanes = store_lanes.LANES if benchmark in ON_BOTH_STORES else (store_lanes.MONGOMOCK,)
        for lane in lanes:
            if not store_lanes.available(lane):
                print(f"{benchmark.__name__}: not run on the {lane}: {store_lanes.WIRE_SERVER} is missing "
                      "(`make .venv-wire/.installed` installs it)\n", flush=True)
                continue
            try:
                measured = await (benchmark.run(lane) if benchmark in ON_BOTH_STORES else benchmark.run())
            except BaseException as error:  # pytest.fail's Failed (a BaseException) included: R6 uses it
                if isinstance(error, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                    raise
                # One benchmark that cannot run (e.g. R6 without node_modules) must not cost the others' numbers.
                failed.append(f"{benchmark.__name__} on the {lane}: {type(error).__name__}: {error}")
                print(f"{benchmark.__name__}: FAILED on the {lane}: {error}\n", flush=True)
                continue
            # A benchmark gives one ratio, or several when it compares more than one configuration (R2).
            ratios.extend(measured if isinstance(measured, list) else [measured])
            print(flush=True)
    # 60 s of reads, lists and ingest at once with 200 subscriptions; any error fails it (mixed_load.run raises).
    try:
        ratios.append(await mixed_load.run())
    except Exception as error:  # noqa: BLE001 - named in the summary as FAILED, the growth tables still run
        failed.append(f"{mixed_load.__name__}: {type(error).__name__}: {error}")
        print(f"{mixed_load.__name__}: FAILED: {error}", flush=True)
    print(flush=True)
    # Tables, not ratios: how three reads grow with the store (on the wire server when it is installed).
    await growth.run()
    print(flush=True)
    return ratios


def load_average() -> str:
    """The machine's 1/5/15-minute load averages and its CPU count: others share it, and the rates depend on it."""
    return "load average " + " / ".join(f"{value:.2f}" for value in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"make bench: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {load_average()}; load generator: "
          f"{generator_name()}\n", flush=True)
    failed: list[str] = []
    ratios = asyncio.run(run_all(failed))
    print(f"Summary ({time.perf_counter() - started:.0f} s; at the end {load_average()})")
    for ratio in ratios:
        print(f"  {ratio.line()}")
    for failure in failed:
        print(f"  FAILED {failure}")
    return 1 if failed or (args.strict and not all(r.met for r in ratios)) else 0


if __name__ == "__main__":
    sys.exit(main())
