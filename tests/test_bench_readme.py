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
