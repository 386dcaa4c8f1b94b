"""One side of R2 in its own process: `python -m bench.side_server secure|insecure [--settings JSON]`.

The child pins itself to the first CPU, builds its app (create_app, or bench/unsecured.py's baseline),
ingests R1's detailed case, serves on 127.0.0.1 and prints {"url"} as its first stdout line. When
its stdin closes it times the query in process and prints its report as its last line: audit records and
garbage-collector time while serving, and the in-process timings. `ServerProcess` is the parent's handle.
With --profile the child runs its event loop under cProfile while serving and writes the top functions to
stderr at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import io
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

import garbage_collector
from auth.tokens import bearer_token
from bench.caller import bench_principal, bench_token, graphql_schema
from bench.events import detailed_case, parsed
from bench.load import pin_to_cpu, quiet_round_ends
from bench.r1_case_detail import CASE_ID, QUERY
from bench.serving import serve, start_child
from bench.unsecured import unscoped_context, unsecured_app
from context import Context
from resolvers.audit import audit_entry
from server import SERVICES, create_app
from settings import Settings
from stores.database import Database, connect

SECURE, INSECURE = "secure", "insecure"
IN_PROCESS_REQUESTS = 200
IN_PROCESS_CHECKS = 2000


def bench_settings(overrides: dict[str, Any]) -> Settings:
    return dataclasses.replace(Settings(demo_data=False), **overrides)


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


async def _audit_records(database: Database) -> int:
    return await database.collection("audit").count_documents({})


async def _mean_seconds(step: Callable[[], Awaitable[Any]], count: int) -> float:
    for _ in range(min(20, count)):
        await step()
    started = time.perf_counter()
    for _ in range(count):
        await step()
    return (time.perf_counter() - started) / count


async def _in_process(side: str, app: web.Application, settings: Settings) -> dict[str, float]:
    """Per-request costs without HTTP: schema.execute on this side; on the secure side also the token and audit."""
    services, schema = app[SERVICES], graphql_schema(app)
    # Worked out once on both sides: over HTTP the secure side's principal is the token check's result.
    principal = bench_principal(settings)

    def secure_context() -> Context:
        return Context(services=services, principal=principal, channel=principal.channel)

    def baseline_context() -> Context:
        return unscoped_context(services, principal)

    new_context = secure_context if side == SECURE else baseline_context

    async def execute() -> None:
        result = await schema.execute(QUERY, variable_values={"id": CASE_ID}, context_value=new_context(),
                                      operation_name="CaseDetail")
        if result.errors:
            raise RuntimeError(f"schema.execute failed on the {side} side: {result.errors}")

    timings = {"executeMs": await _mean_seconds(execute, IN_PROCESS_REQUESTS) * 1000}
    if side == SECURE:
        header = f"Bearer {bench_token(settings)}"

        async def check_token() -> None:
            token = bearer_token(header)
            assert token is not None
            await services.verifier.verify(token)

        async def append_audit() -> None:
            context = secure_context()
            context.audit.cases_returned([{"_id": CASE_ID, "customerId": "CUST-00001"}])
            await services.audit.append(audit_entry(context, action="READ", operation="CaseDetail", outcome="ok"))

        timings["tokenUs"] = await _mean_seconds(check_token, IN_PROCESS_CHECKS) * 1e6
        timings["auditUs"] = await _mean_seconds(append_audit, IN_PROCESS_CHECKS) * 1e6
    return timings


async def serve_side(side: str, overrides: dict[str, Any], profile: bool, top: int) -> None:
    """Serve one side until stdin closes; report the URL first and the audit count and timings last."""
    pin_to_cpu(0)
    quiet_round_ends()
    settings = bench_settings(overrides)
    database = connect(None, f"bench_r2_{side}")
    app = create_app(settings, database) if side == SECURE else unsecured_app(settings, database)
    profiler = cProfile.Profile() if profile else None
    async with serve(app) as url:
        await app[SERVICES].pipeline.ingest(parsed(detailed_case(CASE_ID)))
        garbage_collector.settle_after_startup()  # as server.serve does once the app has started
        before = await _audit_records(database)
        _say({"url": url})
        if profiler is not None:
            profiler.enable()
        with GcPauses() as gc_pauses:
            # The parent closes our stdin when it is done; a thread waits for that so the loop keeps serving.
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
        if profiler is not None:
            profiler.disable()
        audited = await _audit_records(database) - before
        # Frozen, the heap this run grew (e.g. the in-memory audit trail) no longer weighs on the garbage
        # collector, so the in-process figures compare the two code paths alone.
        gc.collect()
        gc.freeze()
        _say({"auditRecords": audited, "gcSeconds": gc_pauses.seconds, **await _in_process(side, app, settings)})
    if profiler is not None:
        _print_profile(profiler, side, top)


class GcPauses:
    """Time spent in the garbage collector while the block runs."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


def _print_profile(profiler: cProfile.Profile, side: str, top: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    out.write(f"\n=== {side} server while serving: top {top} by own time ===\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"=== {side} server while serving: top {top} by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(top)
    sys.stderr.write(out.getvalue())


@dataclass
class ServerProcess:
    """The parent's handle on a child serving one side; `stop()` closes its stdin and collects its report."""

    side: str
    process: asyncio.subprocess.Process
    url: str
    report: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def start(cls, side: str, overrides: dict[str, Any], *, profile: bool = False,
                    top: int = 30) -> ServerProcess:
        arguments = [side, "--settings", orjson.dumps(overrides).decode()]
        arguments += ["--profile", "--top", str(top)] if profile else []
        process, started = await start_child("bench.side_server", *arguments, name=f"{side} server")
        return cls(side, process, started["url"])

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        line = await self.process.stdout.readline()
        await self.process.wait()
        if line:
            self.report = orjson.loads(line)
        if self.process.returncode != 0:
            raise RuntimeError(f"the {self.side} server exited with code {self.process.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=[SECURE, INSECURE])
    parser.add_argument("--settings", default="{}", help="Settings fields to override, as JSON")
    parser.add_argument("--profile", action="store_true", help="run the server under cProfile")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(serve_side(args.side, orjson.loads(args.settings), args.profile, args.top))


if __name__ == "__main__":
    main()
