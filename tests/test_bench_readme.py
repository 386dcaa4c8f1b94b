"""The README's benchmark table has one set of rows per benchmark that `make bench` runs, and no others."""
from __future__ import annotations

import re
from pathlib import Path

from bench.run_all import BENCHMARKS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_has_a_row_for_every_benchmark_make_bench_runs() -> None:
    section = README.read_text().split("\n## Benchmarks\n", 1)[1].split("\n## ", 1)[0]
    in_readme = set(re.findall(r"^\| (R\d+) ", section, flags=re.MULTILINE))
    in_make_bench = {module.__name__.rsplit(".", 1)[1].split("_", 1)[0].upper() for module in BENCHMARKS}

    assert in_make_bench == {"R1", "R2", "R3", "R4", "R5", "R6", "R7"}
    assert in_readme == in_make_bench


def _section() -> str:
    return README.read_text().split("\n## Benchmarks\n", 1)[1].split("\n## ", 1)[0]


def test_every_row_says_which_store_it_ran_on_and_the_both_store_benches_have_a_row_per_store() -> None:
    from bench.run_all import ON_BOTH_STORES
    from bench.store_lanes import LANES

    rows = [(found.group(1), line.split(" | ")[1]) for line in _section().splitlines()
            if (found := re.match(r"^\| (R\d+) ", line))]
    assert all(store in LANES for _, store in rows), [row for row in rows if row[1] not in LANES]
    both = {module.__name__.rsplit(".", 1)[1].split("_", 1)[0].upper() for module in ON_BOTH_STORES}
    assert both == {"R1", "R3", "R4", "R5"}
    for name in both:
        assert {store for ratio, store in rows if ratio == name} == set(LANES), name


def test_the_section_gives_the_wire_sizes_the_growth_reads_and_the_load_average() -> None:
    from bench import growth, r4_ingest, r5_history
    from bench.store_lanes import WIRE

    section = _section()
    r4, r5 = r4_ingest.SIZES[WIRE], r5_history.SIZES[WIRE]
    assert f"{r4.batches} batches of {r4.batch_size}" in section
    assert f"{r5.history:,}-entry case" in section
    assert "load average" in section and "wrk" in section
    header = "| read (`bench/growth.py`) | store | " + " | ".join(f"{size:,} cases" for size in growth.SIZES) + " |"
    assert header in section
    for label in growth.QUERIES:
        assert f"| {label} | " in section, label
