"""Bench R6 still runs: at a toy size every side (direct, through the gateway, plain fan-out) gets every push of
every event, on one case and spread over several cases, and the ratios compare each p99 with the plain fan-out's."""
from __future__ import annotations

import pytest

from bench import r6_push


async def test_r6_measures_every_push_on_every_side_and_the_ratios(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(r6_push.EVENTS, 3, 4)
    monkeypatch.setattr(r6_push, "WARM_UP_SECONDS", 0.5)
    monkeypatch.setattr(r6_push, "TRIGGER_SAMPLES", 3)
    # 4 cases, 3 subscriptions on each, 2 per socket: 6 sockets; each case's event once.
    for name, value in (("MANY_CASES", 4), ("MANY_PER_CASE", 3), ("MANY_PER_SOCKET", 2), ("MANY_PASSES", 1)):
        monkeypatch.setattr(r6_push, name, value)

    results = await r6_push.measure((3,), with_many_cases=True)

    assert [(r.side, r.subscribers, r.cases, r.sockets, len(r.seconds), r.missing) for r in results] == [
        ("direct", 3, 1, 3, 12, 0), ("gateway", 3, 1, 3, 12, 0), ("plain fan-out", 3, 1, 3, 12, 0),
        ("direct", 3, 4, 6, 12, 0), ("plain fan-out", 3, 4, 6, 12, 0)]
    assert all(0 < seconds < r6_push.ROUND_SECONDS for r in results for seconds in r.seconds)
    # /proc counts CPU in 10-ms ticks: a toy side may show none.
    assert all(r.server_cpu_us >= 0 and r.client_cpu_us > 0 for r in results)
    direct, gateway, many = r6_push.ratios(results)
    plain_p99 = results[2].p99_ms
    assert (direct.name, direct.measured) == ("R6 push p99 direct / plain fan-out, 3 subscribers",
                                             results[0].p99_ms / plain_p99)
    assert (gateway.name, gateway.measured) == ("R6 push p99 gateway / plain fan-out, 3 subscribers",
                                               results[1].p99_ms / plain_p99)
    assert (many.name, many.measured) == ("R6 push p99 direct / plain fan-out, 3 subscribers on each of 4 cases",
                                          results[3].p99_ms / results[4].p99_ms)
    assert direct.met is (direct.measured <= r6_push.TARGET)


def test_the_many_case_layout_gives_each_case_the_same_number_of_subscriptions_each_socket_distinct_cases() -> None:
    layout = r6_push.many_cases()

    assert (len(layout.sockets), len(layout.cases), len(layout.events)) == (1_000, 100, 200)
    assert {len(set(cases)) for cases in layout.sockets} == {10}
    assert layout.sockets[0] == tuple(f"CASE-R6-{n:03d}" for n in range(0, 100, 10))
    assert sum("CASE-R6-042" in cases for cases in layout.sockets) == 100
    assert layout.events[:2] == ("CASE-R6-000", "CASE-R6-001") and layout.events[100] == "CASE-R6-000"
