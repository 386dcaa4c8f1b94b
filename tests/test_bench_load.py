"""The bench's load generator counts only full answers, and reports its own CPU and the server's, with wrk and with
its fallback (aiohttp client processes)."""
from __future__ import annotations

import os

import pytest
from aiohttp import web

from bench import load
from bench.serving import serve

ANSWER = b'{"data":{"ok":true}}'


def _app() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    app = web.Application()
    app.router.add_post("/canned", answer)
    return app


@pytest.mark.parametrize("generator", ["wrk", "aiohttp clients"])
async def test_a_round_counts_full_answers_and_both_sides_cpu(generator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if generator == "wrk" and load.WRK is None:
        pytest.skip("wrk is not installed (make bench installs it)")
    if generator != "wrk":
        monkeypatch.setattr(load, "WRK", None)
    request = dict(headers={"Content-Type": "application/json"}, concurrency=4, warmup=0.0, duration=1.0)
    async with serve(_app()) as url:
        good = await load.measure_rate(url + "/canned", b'{"query":"{ ok }"}', expected_length=len(ANSWER),
                                       server_pids=[os.getpid()], **request)
        wrong = await load.measure_rate(url + "/canned", b'{"query":"{ ok }"}', expected_length=len(ANSWER) + 1,
                                        **request)

    assert good.requests > 0 and good.failures == 0
    assert 0.9 <= good.seconds <= 2.0
    assert good.server_cpu > 0 and good.generator_cpu > 0
    assert wrong.requests == 0 and wrong.failures > 0


def test_spread_prints_min_median_max_and_cpu_per_request() -> None:
    rounds = [load.LoadResult(1000, 10.0, 0, 2.0, 5.0), load.LoadResult(3000, 10.0, 0, 2.0, 5.0),
              load.LoadResult(2000, 10.0, 0, 2.0, 5.0)]

    assert load.median_rate(rounds) == 200.0
    assert load.spread(rounds) == ("min / median / max 100.0 / 200.0 / 300.0 req/s over 3 rounds; server CPU "
                                   "2.50 ms/request; generator CPU 20% of a core")
