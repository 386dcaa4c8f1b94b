"""Bench R5 still runs: its measure, at toy sizes, gives both rates and a cost ratio against its target."""
from __future__ import annotations

from bench.r5_history import TARGET, measure
from bench.report import Ratio


async def test_r5_measures_both_rates_and_a_lower_is_better_ratio() -> None:
    rates = await measure(history=50, rounds=3, per_round=2)

    assert rates.new > 0 and rates.long > 0 and rates.setup_seconds > 0
    ratio = rates.ratio
    assert isinstance(ratio, Ratio)
    assert ratio.measured == rates.new / rates.long
    assert ratio.target == f"<= {TARGET}"
    assert ratio.met is (ratio.measured <= TARGET)
