"""The audit store alone: records appended per second and CPU per record, one caller at a time and many at once.

One caller at a time is the latency every request pays; many at once (as under load, or one event pushed to many
subscribers) is where group commit puts every waiting record into one store write. Runs on the embedded store,
or on the MongoDB at MONGODB_URI (a network round trip per write, where batching matters most).
`python -m bench.audit_append [--records N] [--callers C]`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import datetime, timezone
from typing import Any

from stores.audit import AuditStore
from stores.database import Database, connect

ROUNDS = 3


def _entry(n: int) -> dict[str, Any]:
    return {"at": datetime.now(timezone.utc), "actor": f"user-{n % 40}", "action": "READ", "operation": "CaseDetail",
            "caseIds": [f"CASE-2026-{n % 1500:06d}"], "customerIds": [f"CUST-{n % 7919:05d}"],
            "fields": ["Customer.pesel:masked"], "channel": "BRANCH", "reason": None, "outcome": "ok",
            "eventIds": [], "changes": []}


async def _one_at_a_time(store: AuditStore, records: int) -> None:
    for n in range(records):
        await store.append(_entry(n))


async def _many_at_once(store: AuditStore, records: int, callers: int) -> None:
    async def caller(offset: int) -> None:
        for n in range(offset, records, callers):
            await store.append(_entry(n))

    await asyncio.gather(*(caller(c) for c in range(callers)))


async def _measure(label: str, run: Any, records: int, database: Database) -> None:
    rates, cpu = [], []
    database.round_trips.reset()
    for _ in range(ROUNDS):
        wall, used = time.perf_counter(), time.process_time()
        await run()
        wall, used = time.perf_counter() - wall, time.process_time() - used
        rates.append(records / wall)
        cpu.append(used / records * 1e6)
    rates.sort()
    cpu.sort()
    print(f"  {label:<40} {rates[0]:>9,.0f} / {rates[1]:>9,.0f} / {rates[2]:>9,.0f} records/s (min/median/max), "
          f"{cpu[1]:,.0f} µs CPU per record (median), "
          f"{_writes(database) / (records * ROUNDS):.3f} store writes per record")


def _writes(database: Database) -> int:
    return sum(n for op, n in database.round_trips.by_operation.items() if op.startswith("audit.insert"))


async def run(records: int, callers: int) -> None:
    uri = os.environ.get("MONGODB_URI")
    database = connect(uri, os.environ.get("MONGODB_DATABASE", "audit_append_bench"))
    store = AuditStore(database)
    print(f"audit append on {'MongoDB at MONGODB_URI' if uri else 'the embedded store (mongomock)'}: "
          f"{records:,} records per round, {ROUNDS} rounds")
    try:
        await _measure("one caller at a time", lambda: _one_at_a_time(store, records), records, database)
        await _measure(f"{callers} callers at once", lambda: _many_at_once(store, records, callers), records,
                       database)
        report = await store.verify()
        print(f"  chain verifies: {report.ok}, {report.checked:,} records in {len(report.chains)} chain(s)")
    finally:
        if uri:
            await database.collection("audit").delete_many({"writer": store.writer})
        database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--callers", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(run(args.records, args.callers))


if __name__ == "__main__":
    main()
