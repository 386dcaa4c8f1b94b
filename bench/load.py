"""Load generator: `wrk` when the machine has it, else N aiohttp client processes; either in processes of their own.

`wrk` (Debian's package; `make bench` installs it) is C with an event loop per thread, so it is not the bottleneck
the way one Python client process was (issue 14: that one reached half of wrk's rate on canned bytes). Without it,
the fallback runs one aiohttp client process per CPU the server does not use. Either way the generator is pinned to
the last CPU(s) and the server to the first, and each round reports the CPU both used: the generator's (from the
children's rusage), and the server's (from /proc of every process that serves: the app, and the wire server on
that lane), so that a reader sees req/s beside server CPU per request, and whether the generator was saturated.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import Pool

import aiohttp
import orjson

WRK = shutil.which("wrk")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    failures: int
    generator_cpu: float = 0.0  # CPU seconds the load generator used while measuring
    server_cpu: float = 0.0  # CPU seconds the serving processes used over the same interval

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_ms_per_request(self) -> float:
        return self.server_cpu * 1000 / self.requests if self.requests else 0.0

    @property
    def generator_share(self) -> float:
        """The generator's CPU as a share of one core over the round (1.0: one core saturated)."""
        return self.generator_cpu / self.seconds if self.seconds else 0.0

    def __add__(self, other: LoadResult) -> LoadResult:
        return LoadResult(self.requests + other.requests, self.seconds + other.seconds,
                          self.failures + other.failures, self.generator_cpu + other.generator_cpu,
                          self.server_cpu + other.server_cpu)


def total(results: Sequence[LoadResult]) -> LoadResult:
    summed = LoadResult(0, 0.0, 0)
    for result in results:
        summed += result
    return summed


def median_rate(results: Sequence[LoadResult]) -> float:
    return statistics.median(r.rate for r in results)


def spread(results: Sequence[LoadResult]) -> str:
    """`min / median / max req/s` over rounds, then server CPU per request and the generator's CPU."""
    rates = sorted(r.rate for r in results)
    summed = total(results)
    return (f"min / median / max {rates[0]:,.1f} / {statistics.median(rates):,.1f} / {rates[-1]:,.1f} req/s over "
            f"{len(rates)} rounds; server CPU {summed.server_ms_per_request:.2f} ms/request; generator CPU "
            f"{summed.generator_share:.0%} of a core")


def generator_name() -> str:
    return "wrk" if WRK else f"{_client_processes()} aiohttp client process(es)"


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a live process has used."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _servers_cpu(pids: Sequence[int]) -> float:
    return sum(process_cpu(pid) for pid in pids)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _generator_cpus() -> list[int]:
    """Every CPU but the first (where the server is pinned); the only one on a one-CPU machine."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return cpus[1:] or cpus


def _client_processes() -> int:
    return max(1, len(_generator_cpus()))


# --- wrk -----------------------------------------------------------------------------------------------------

_WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or #body ~= %(expected)d then bad = bad + 1 end
end
function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do failed = failed + thread:get("bad") end
  local e = summary.errors
  failed = failed + e.connect + e.read + e.write + e.timeout
  io.write(string.format('\\n{"completed": %%d, "failed": %%d, "micros": %%d}\\n', summary.requests, failed,
                         summary.duration))
end
wrk.method = "POST"
wrk.body = %(body)s
%(headers)s
"""


def _drop_closed_at_round_end(record: logging.LogRecord) -> bool:
    """wrk ends a round by closing its connections, requests in flight included: the server logs each as an error
    ("Connection lost"). That is the round's end, not a failure, and would bury the bench's output."""
    return not (record.exc_info and isinstance(record.exc_info[1], ConnectionResetError))


def quiet_round_ends() -> None:
    """Drop the server's "Connection lost" errors of wrk's round ends in this process (a served side calls it)."""
    server_log = logging.getLogger("aiohttp.server")
    if _drop_closed_at_round_end not in server_log.filters:
        server_log.addFilter(_drop_closed_at_round_end)


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


async def _wrk(url: str, body: bytes, headers: dict[str, str], concurrency: int, seconds: float,
               expected_length: int) -> tuple[int, int, float]:
    """One wrk run: (good responses, failed ones, seconds)."""
    header_lines = "\n".join(f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items())
    script = _WRK_SCRIPT % {"expected": expected_length, "body": _lua_string(body.decode()), "headers": header_lines}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-wrk-") as file:
        file.write(script)
        file.flush()
        cpus = _generator_cpus()
        process = await asyncio.create_subprocess_exec(
            WRK, "-t", str(len(cpus)), "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s", "--timeout", "30s",
            "-s", file.name, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=lambda: os.sched_setaffinity(0, set(cpus)))
        stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed with exit code {process.returncode}: {stderr.decode()[-500:]}")
    lines = stdout.decode().strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise RuntimeError(f"wrk printed no summary: {stdout.decode()[-500:]} {stderr.decode()[-500:]}")
    summary = orjson.loads(lines[-1])
    failed = summary["failed"]
    return summary["completed"] - failed, failed, summary["micros"] / 1e6


# --- the fallback: aiohttp clients in processes of their own ---------------------------------------------------

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


def _client_process(arguments: tuple[str, bytes, dict[str, str], int, float, float, int, int]) -> dict[str, float]:
    url, body, headers, concurrency, warmup, duration, expected_length, cpu = arguments
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    result = asyncio.run(_hammer(url, body, headers, concurrency, warmup, duration, expected_length))
    return {"requests": result.requests, "seconds": result.seconds, "failures": result.failures}


def _clients(url: str, body: bytes, headers: dict[str, str], concurrency: int, warmup: float, duration: float,
             expected_length: int) -> LoadResult:
    """One client process per generator CPU, the connections split between them; rates add up."""
    cpus = _generator_cpus()
    share = max(1, concurrency // len(cpus))
    with Pool(len(cpus)) as pool:
        results = pool.map(_client_process, [(url, body, headers, share, warmup, duration, expected_length, cpu)
                                             for cpu in cpus])
    return LoadResult(sum(int(r["requests"]) for r in results), max(r["seconds"] for r in results),
                      sum(int(r["failures"]) for r in results))


# --- what the benchmarks call --------------------------------------------------------------------------------

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
                       duration: float, expected_length: int, server_pids: Sequence[int] = ()) -> LoadResult:
    """Load `url` for `duration` seconds after a warm-up, from processes of the generator's own, while this process
    keeps serving. Server CPU is counted for `server_pids` (this process when none are given)."""
    pids = list(server_pids) or [os.getpid()]
    if WRK:
        quiet_round_ends()
        if warmup > 0:
            await _wrk(url, body, headers, concurrency, warmup, expected_length)
        generator_before, server_before = _children_cpu(), _servers_cpu(pids)
        requests, failures, seconds = await _wrk(url, body, headers, concurrency, duration, expected_length)
        return LoadResult(requests, seconds, failures, _children_cpu() - generator_before,
                          _servers_cpu(pids) - server_before)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.load", url, "--concurrency", str(concurrency), "--warmup", str(warmup),
        "--duration", str(duration), "--expected-length", str(expected_length),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    # The warm-up is inside the child's run: its CPU is counted too, the server's from the start as well.
    generator_before, server_before = _children_cpu(), _servers_cpu(pids)
    stdout, _ = await process.communicate(orjson.dumps({"body": body.decode(), "headers": headers}))
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed with exit code {process.returncode}")
    fields = orjson.loads(stdout)
    cpu_scale = fields["seconds"] / (fields["seconds"] + warmup)  # the measured part of the child's run
    return LoadResult(fields["requests"], fields["seconds"], fields["failures"],
                      (_children_cpu() - generator_before) * cpu_scale, (_servers_cpu(pids) - server_before) * cpu_scale)


def main() -> None:
    parser = argparse.ArgumentParser(description="POST the body read from stdin to URL for a fixed time")
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--expected-length", type=int, required=True)
    args = parser.parse_args()
    request = orjson.loads(sys.stdin.buffer.read())
    result = _clients(args.url, request["body"].encode(), request["headers"], args.concurrency, args.warmup,
                      args.duration, args.expected_length)
    sys.stdout.buffer.write(orjson.dumps({"requests": result.requests, "seconds": result.seconds,
                                          "failures": result.failures}))


if __name__ == "__main__":
    main()
