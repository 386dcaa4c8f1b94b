"""Bench R6 still runs: at a toy size every side (direct, through the gateway, plain fan-out) gets every push of
every event, and the ratios compare each p99 with the plain fan-out's."""
from __future__ import annotations

import pytest

from bench import r6_push


async def test_r6_measures_every_push_on_every_side_and_two_ratios(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(r6_push.EVENTS, 3, 4)
    monkeypatch.setattr(r6_push, "WARM_UP_SECONDS", 0.5)
    monkeypatch.setattr(r6_push, "TRIGGER_SAMPLES", 3)

    results = await r6_push.measure((3,))

    assert [(r.side, r.subscribers, len(r.seconds), r.missing) for r in results] == [
        ("direct", 3, 12, 0), ("gateway", 3, 12, 0), ("plain fan-out", 3, 12, 0)]
    assert all(0 < seconds < r6_push.ROUND_SECONDS for r in results for seconds in r.seconds)
    direct, gateway = r6_push.ratios(results)
    plain_p99 = results[2].p99_ms
    assert (direct.name, direct.measured) == ("R6 push p99 direct / plain fan-out, 3 subscribers",
                                             results[0].p99_ms / plain_p99)
    assert (gateway.name, gateway.measured) == ("R6 push p99 gateway / plain fan-out, 3 subscribers",
                                               results[1].p99_ms / plain_p99)
    assert direct.met is (direct.measured <= r6_push.TARGET)
