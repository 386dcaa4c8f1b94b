"""Where a benchmark's time goes: `python -m bench.profile r4_ingest [--top 25]` runs it under cProfile.

Only this process is profiled (for R1: the servers, not the load generator). R2's servers run in child
processes, so `r2_security` profiles its secure server there instead (`python -m bench.r2_security
--profile secure|insecure` chooses the side).
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import pstats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["r1_case_detail", "r2_security", "r3_round_trips", "r4_ingest"])
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    benchmark = importlib.import_module(f"bench.{args.benchmark}")
    if args.benchmark == "r2_security":
        asyncio.run(benchmark.run(profile="secure", top=args.top))
        return
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(benchmark.run())
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs()
    print(f"\nTop {args.top} by own time:")
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"Top {args.top} by cumulative time:")
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
