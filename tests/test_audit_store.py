"""The audit trail: an append-only hash chain that shows any edited, rewritten or deleted record."""
from __future__ import annotations

import asyncio
import hashlib
import io
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

import audit_verify
from stores.audit import READ, AuditStore, VerifyReport, record_hash
from stores.database import Database, connect

AT = datetime(2026, 11, 21, 10, 15, 0, 123456, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parent.parent


def entry(number: int = 1, **overrides: Any) -> dict[str, Any]:
    """An audit entry for a read of CASE-<number> by u-olga, `number` seconds after AT."""
    values: dict[str, Any] = {
        "at": AT + timedelta(seconds=number), "actor": "u-olga", "action": READ, "operation": "CaseDetail",
        "caseIds": [f"CASE-{number}"], "customerIds": ["CUST-1"], "fields": ["Customer.pesel"],
        "channel": "BRANCH", "reason": "customer visit", "outcome": "OK", "eventIds": [], "changes": [],
    }
    values.update(overrides)
    return values


@pytest.fixture
def audit(database: Database) -> AuditStore:
    return AuditStore(database)


async def append_all(store: AuditStore, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [await store.append(e) for e in entries]


# --- Appending --------------------------------------------------------------------------------------------

async def test_records_are_numbered_and_each_links_to_the_previous_hash(audit: AuditStore) -> None:
    first, second, third = await append_all(audit, [entry(1), entry(2), entry(3)])

    assert [r["_id"] for r in (first, second, third)] == [1, 2, 3]
    assert [r["prev"] for r in (first, second, third)] == ["", first["hash"], second["hash"]]


async def test_the_hash_is_sha256_of_the_sorted_json_without_the_hash(audit: AuditStore) -> None:
    # Spelled out so that an external checker can be written from this test alone.
    record = await audit.append({"at": datetime(2026, 11, 21, 10, 15, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
                                 "actor": "u-olga", "action": "READ", "outcome": "OK"})

    canonical = (b'{"_id":1,"action":"READ","actor":"u-olga","at":{"$date":"2026-11-21T09:15:00.123Z"},'
                 b'"outcome":"OK","prev":""}')
    assert record["hash"] == hashlib.sha256(canonical).hexdigest()


async def test_a_record_reads_back_exactly_as_appended_in_utc_milliseconds(audit: AuditStore,
                                                                            database: Database) -> None:
    appended = await audit.append(entry(1, changes=[{"field": "status", "old": "NEW", "new": "OPEN"}]))

    stored = await database.collection("audit").find_one({"_id": 1})

    assert stored == appended
    assert stored["at"] == datetime(2026, 11, 21, 10, 15, 1, 123000, tzinfo=timezone.utc)


@pytest.mark.parametrize(("bad", "problem"), [
    ({"actor": None}, "audit record: missing actor"),
    ({"outcome": ""}, "audit record: missing outcome"),
    ({"at": "2026-11-21T10:15:00Z"}, "audit record: at must be a datetime"),
    ({"hash": "forged"}, "audit record: hash are set by the store"),
    ({"_id": 7, "prev": ""}, "audit record: _id, prev are set by the store"),
    ({"changes": [{"$set": 1}]}, "audit record: field name '$set' at changes is not allowed"),
    ({"fields": {"Customer.pesel"}}, "audit record: fields has a value of type set that cannot be stored"),
])
async def test_an_incomplete_or_forged_entry_is_refused_and_nothing_is_stored(
        audit: AuditStore, database: Database, bad: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError) as refused:
        await audit.append(entry(1, **bad))

    assert str(refused.value) == problem
    assert await database.collection("audit").count_documents({}) == 0


async def test_appends_after_the_first_cost_one_insert_each(audit: AuditStore, database: Database) -> None:
    await audit.append(entry(1))
    database.round_trips.reset()

    await append_all(audit, [entry(2), entry(3), entry(4)])

    assert database.round_trips.by_operation == {"audit.insert_one": 3}


async def test_a_store_failure_fails_the_append_and_the_next_append_rereads_the_head(database: Database) -> None:
    flaky = FlakyInserts(database)
    audit = AuditStore(flaky)  # type: ignore[arg-type]
    await audit.append(entry(1))
    flaky.fail_next = True

    with pytest.raises(AutoReconnect):
        await audit.append(entry(2))
    await audit.append(entry(3))

    assert [r["caseIds"] for r in await database.collection("audit").find().sort("_id").to_list(None)] == [
        ["CASE-1"], ["CASE-3"]]
    assert (await audit.verify()).ok


class FlakyInserts:
    """A Database whose next audit insert fails as if the connection dropped."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.fail_next = False

    def collection(self, name: str) -> Any:
        real, owner = self._database.collection(name), self

        class Collection:
            def __getattr__(self, operation: str) -> Any:
                return getattr(real, operation)

            async def insert_one(self, document: dict[str, Any]) -> Any:
                if owner.fail_next:
                    owner.fail_next = False
                    raise AutoReconnect("connection reset")
                return await real.insert_one(document)

        return Collection()


async def test_concurrent_appends_from_two_instances_make_one_valid_chain(database: Database) -> None:
    first, second = AuditStore(database), AuditStore(database)
    entries = [entry(n) for n in range(1, 51)]

    await asyncio.gather(*(
        (first if n % 2 else second).append(e) for n, e in enumerate(entries)))

    records = await database.collection("audit").find().sort("_id").to_list(None)
    # The writers did collide (more inserts than records), and every collision was retried.
    assert database.round_trips.by_operation["audit.insert_one"] > 50
    assert [r["_id"] for r in records] == list(range(1, 51))
    assert sorted(r["caseIds"][0] for r in records) == sorted(f"CASE-{n}" for n in range(1, 51))
    assert await first.verify() == VerifyReport(ok=True, checked=50, head_id=50, head_hash=records[-1]["hash"])


async def test_the_instance_that_lost_a_race_rereads_the_head_and_links_to_the_winner(database: Database) -> None:
    first, second = AuditStore(database), AuditStore(database)
    await first.append(entry(1))
    await second.append(entry(2))  # second now knows the head is 2; first still believes it is 1

    third = await first.append(entry(3))

    winner = await database.collection("audit").find_one({"_id": 2})
    assert (third["_id"], third["prev"]) == (3, winner["hash"])


# --- Verifying --------------------------------------------------------------------------------------------

async def test_an_empty_trail_verifies(audit: AuditStore) -> None:
    assert await audit.verify() == VerifyReport(ok=True, checked=0, head_id=0, head_hash="")


async def test_an_untouched_chain_verifies(audit: AuditStore, database: Database) -> None:
    records = await append_all(audit, [entry(n) for n in range(1, 6)])

    assert await AuditStore(database).verify() == VerifyReport(
        ok=True, checked=5, head_id=5, head_hash=records[-1]["hash"])


async def test_an_edited_record_is_named_by_verify(audit: AuditStore, database: Database) -> None:
    records = await append_all(audit, [entry(n) for n in range(1, 6)])

    await database.collection("audit").update_one({"_id": 3}, {"$set": {"outcome": "FORBIDDEN"}})

    assert await AuditStore(database).verify() == VerifyReport(
        ok=False, checked=3, first_broken=3, reason="record 3: hash does not match its content",
        head_id=2, head_hash=records[1]["hash"])


async def test_an_edited_record_with_a_recomputed_hash_breaks_the_next_link(audit: AuditStore,
                                                                            database: Database) -> None:
    records = await append_all(audit, [entry(n) for n in range(1, 6)])
    forged = {**records[2], "reason": "nothing to see"}
    forged["hash"] = record_hash(forged)

    await database.collection("audit").replace_one({"_id": 3}, forged)

    report = await AuditStore(database).verify()
    assert (report.ok, report.first_broken, report.reason) == (
        False, 4, "record 4: prev does not match the hash of record 3")


async def test_a_deleted_record_leaves_a_gap_that_verify_names(audit: AuditStore, database: Database) -> None:
    await append_all(audit, [entry(n) for n in range(1, 6)])

    await database.collection("audit").delete_one({"_id": 3})

    report = await AuditStore(database).verify()
    assert (report.ok, report.first_broken, report.reason) == (False, 3, "record 3 is missing (next is 4)")


async def test_a_removed_tail_shows_in_the_writers_verify_and_in_the_head_anchor(audit: AuditStore,
                                                                                 database: Database) -> None:
    records = await append_all(audit, [entry(n) for n in range(1, 6)])
    anchored = await audit.verify()

    await database.collection("audit").delete_many({"_id": {"$gte": 4}})

    assert await audit.verify() == VerifyReport(
        ok=False, checked=3, first_broken=4, reason="records 4..5 are missing (tail removed)",
        head_id=3, head_hash=records[2]["hash"])
    # A fresh process cannot see the cut by itself; the head it reports differs from the anchored one.
    fresh = await AuditStore(database).verify()
    assert fresh.ok and (fresh.head_id, fresh.head_hash) != (anchored.head_id, anchored.head_hash)


# --- Reading the trail ------------------------------------------------------------------------------------

async def given_a_mixed_trail(audit: AuditStore) -> None:
    await append_all(audit, [
        entry(1, caseIds=["CASE-1"], customerIds=["CUST-1"], actor="u-olga"),
        entry(2, caseIds=["CASE-2"], customerIds=["CUST-2"], actor="u-olga"),
        entry(3, caseIds=["CASE-1", "CASE-2"], customerIds=["CUST-1", "CUST-2"], actor="u-marek"),
        entry(4, caseIds=["CASE-1"], customerIds=["CUST-1"], actor="u-marek", action="FORBIDDEN",
              outcome="FORBIDDEN"),
        entry(5, caseIds=[], customerIds=[], actor="anonymous", action="AUTHENTICATION_FAILED",
              outcome="UNAUTHENTICATED"),
    ])


@pytest.mark.parametrize(("filters", "ids"), [
    ({}, [5, 4, 3, 2, 1]),
    ({"case_id": "CASE-1"}, [4, 3, 1]),
    ({"customer_id": "CUST-2"}, [3, 2]),
    ({"actor": "u-marek"}, [4, 3]),
    ({"case_id": "CASE-2", "actor": "u-olga"}, [2]),
    ({"case_id": "CASE-404"}, []),
])
async def test_the_trail_filters_by_case_customer_and_actor_newest_first(
        audit: AuditStore, filters: dict[str, str], ids: list[int]) -> None:
    await given_a_mixed_trail(audit)

    page = await audit.trail(**filters)

    assert ([r["_id"] for r in page.records], page.has_next) == (ids, False)


async def test_the_trail_pages_after_the_last_record_seen(audit: AuditStore) -> None:
    await given_a_mixed_trail(audit)

    first = await audit.trail(case_id="CASE-1", first=2)
    second = await audit.trail(case_id="CASE-1", first=2, after=first.records[-1]["_id"])

    assert ([r["_id"] for r in first.records], first.has_next) == ([4, 3], True)
    assert ([r["_id"] for r in second.records], second.has_next) == ([1], False)


async def test_the_trail_has_its_indexes(audit: AuditStore, database: Database) -> None:
    await audit.ensure_indexes()

    indexes = await database.collection("audit").index_information()

    assert {name: list(spec["key"]) for name, spec in indexes.items() if name != "_id_"} == {
        "case_newest": [("caseIds", 1), ("_id", -1)], "customer_newest": [("customerIds", 1), ("_id", -1)],
        "actor_newest": [("actor", 1), ("_id", -1)], "at": [("at", 1)], "writes": [("writes", 1)]}


# --- audit_verify.py --------------------------------------------------------------------------------------

async def test_the_verify_command_reports_a_broken_chain_with_exit_code_1(audit: AuditStore,
                                                                         database: Database) -> None:
    await append_all(audit, [entry(1), entry(2)])
    await database.collection("audit").update_one({"_id": 2}, {"$set": {"actor": "someone-else"}})

    result, code = await audit_verify.verify_audit(database)

    assert (code, result["ok"], result["first_broken"], result["reason"]) == (
        1, False, 2, "record 2: hash does not match its content")


async def test_the_verify_command_says_not_checked_with_exit_code_2_when_the_store_is_down() -> None:
    result, code = await audit_verify.verify_audit(Unreachable())  # type: ignore[arg-type]

    assert (code, result) == (2, {"ok": False, "error": "store: ServerSelectionTimeoutError: no servers"})


class Unreachable:
    """A Database whose server cannot be selected."""

    def collection(self, name: str) -> Any:
        class Collection:
            def find(self, *args: Any, **kwargs: Any) -> Any:
                raise ServerSelectionTimeoutError("no servers")

        return Collection()


def test_the_verify_command_prints_one_json_line() -> None:
    database = connect(None, "audit_cli_test")
    asyncio.run(append_all(AuditStore(database), [entry(1), entry(2)]))
    out = io.StringIO()

    code = audit_verify.main(env={}, database=database, out=out)

    lines = out.getvalue().splitlines()
    assert code == 0 and len(lines) == 1
    assert {k: v for k, v in orjson.loads(lines[0]).items() if k != "head_hash"} == {
        "ok": True, "checked": 2, "first_broken": None, "reason": None, "head_id": 2}


def test_python_audit_verify_runs_as_a_command_and_will_not_vouch_for_an_embedded_store() -> None:
    """Without MONGODB_URI there is nothing it can read: the embedded store is inside the server's process, so the
    honest answer is "not checked" (2), never "ok, 0 records"."""
    done = subprocess.run([sys.executable, "audit_verify.py"], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "APP_ENV": "dev"}, timeout=60, check=False)

    assert (done.returncode, done.stdout, done.stderr) == (
        2, '{"ok":false,"error":"MONGODB_URI is not set: the embedded store is inside the server process and '
           'cannot be checked from here"}\n', "")
