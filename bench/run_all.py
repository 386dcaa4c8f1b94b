"""`make bench`: every ratio, one after the other, then a summary. `--strict` exits 1 when a target is missed."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time

from bench import r1_case_detail, r3_round_trips, r4_ingest
from bench.report import Ratio

BENCHMARKS = (r1_case_detail, r3_round_trips, r4_ingest)


async def run_all() -> list[Ratio]:
    ratios = []
    for benchmark in BENCHMARKS:
        ratios.append(await benchmark.run())
        print(flush=True)
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    args = parser.parse_args()
    started = time.perf_counter()
    ratios = asyncio.run(run_all())
    print(f"Summary ({time.perf_counter() - started:.0f} s)")
    for ratio in ratios:
        print(f"  {ratio.line()}")
    return 1 if args.strict and not all(r.met for r in ratios) else 0


if __name__ == "__main__":
    sys.exit(main())
