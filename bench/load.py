"""Load generator: N concurrent aiohttp clients POSTing one body for a fixed time, in its own process.

Run in a separate process (pinned to its own core when there are two) so that client work does not
share the server's event loop; `measure_rate` starts it and reads its JSON result.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp
import orjson


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    failures: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def __add__(self, other: LoadResult) -> LoadResult:
        return LoadResult(self.requests + other.requests, self.seconds + other.seconds,
                          self.failures + other.failures)


async def _hammer(url: str, body: bytes, headers: dict[str, str], concurrency: int, warmup: float,
                  duration: float, expected_length: int) -> LoadResult:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    counted = {"ok": 0, "failed": 0}
    measuring = False

    async def worker(session: aiohttp.ClientSession, stop_at: float) -> None:
        while time.perf_counter() < stop_at:
            async with session.post(url, data=body, headers=headers) as response:
                payload = await response.read()
            if not measuring:
                continue
            if response.status == 200 and len(payload) == expected_length:
                counted["ok"] += 1
            else:
                counted["failed"] += 1

    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        stop_at = started + warmup + duration
        workers = [asyncio.create_task(worker(session, stop_at)) for _ in range(concurrency)]
        await asyncio.sleep(warmup)
        measuring, began = True, time.perf_counter()
        await asyncio.gather(*workers)
        elapsed = time.perf_counter() - began
    return LoadResult(counted["ok"], elapsed, counted["failed"])


def pin_to_cpu(index: int) -> None:
    """Pin this process to one CPU (counted from the end when negative), if the machine has two or more."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[index]})


@contextmanager
def pinned_to_cpu(index: int) -> Iterator[None]:
    """Pin this process to one CPU for the duration of the block, then give it back every CPU it had."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    original = os.sched_getaffinity(0)
    pin_to_cpu(index)
    try:
        yield
    finally:
        os.sched_setaffinity(0, original)


async def measure_rate(url: str, body: bytes, *, headers: dict[str, str], concurrency: int, warmup: float,
                       duration: float, expected_length: int) -> LoadResult:
    """Run the load generator in a child process against `url` while this process keeps serving."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.load", url, "--concurrency", str(concurrency), "--warmup", str(warmup),
        "--duration", str(duration), "--expected-length", str(expected_length),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate(orjson.dumps({"body": body.decode(), "headers": headers}))
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed with exit code {process.returncode}")
    return LoadResult(**orjson.loads(stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description="POST the body read from stdin to URL for a fixed time")
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--expected-length", type=int, required=True)
    args = parser.parse_args()
    request = orjson.loads(sys.stdin.buffer.read())
    pin_to_cpu(-1)
    result = asyncio.run(_hammer(args.url, request["body"].encode(), request["headers"], args.concurrency,
                                 args.warmup, args.duration, args.expected_length))
    sys.stdout.buffer.write(orjson.dumps(result.__dict__))


if __name__ == "__main__":
    main()
