"""The audit trail: a hash chain per writer that shows any edited, rewritten, deleted or cut-off record, appended in
group commits (one store write per batch of waiting records)."""
from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

import audit_verify
from errors import StoreUnavailable
from stores.audit import LEGACY, READ, Anchor, AuditStore, ChainReport, VerifyReport, record_hash
from stores.database import Database, connect

AT = datetime(2026, 11, 21, 10, 15, 0, 123456, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parent.parent
WRITER = "app-1"


def entry(number: int = 1, **overrides: Any) -> dict[str, Any]:
    """An audit entry for a read of CASE-<number> by u-olga, `number` seconds after AT."""
    values: dict[str, Any] = {
        "at": AT + timedelta(seconds=number), "actor": "u-olga", "action": READ, "operation": "CaseDetail",
        "caseIds": [f"CASE-{number}"], "customerIds": ["CUST-1"], "fields": ["Customer.pesel"],
        "channel": "BRANCH", "reason": "customer visit", "outcome": "OK", "eventIds": [], "changes": [],
    }
    values.update(overrides)
    return values


def rid(seq: int, writer: str = WRITER) -> str:
    """A record's `_id`, spelled out as the store writes it."""
    return f"{writer}:{seq:012d}"


@pytest.fixture
def audit(database: Database) -> AuditStore:
    return AuditStore(database, writer=WRITER)


async def append_all(store: AuditStore, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One after the other: each append is its own write."""
    return [await store.append(e) for e in entries]


# --- Appending --------------------------------------------------------------------------------------------

async def test_records_are_numbered_per_writer_and_each_links_to_the_previous_hash(audit: AuditStore) -> None:
    first, second, third = await append_all(audit, [entry(1), entry(2), entry(3)])

    assert [(r["_id"], r["writer"], r["seq"]) for r in (first, second, third)] == [
        ("app-1:000000000001", "app-1", 1), ("app-1:000000000002", "app-1", 2), ("app-1:000000000003", "app-1", 3)]
    assert [r["prev"] for r in (first, second, third)] == ["", first["hash"], second["hash"]]


async def test_the_hash_is_sha256_of_the_sorted_json_without_the_hash(audit: AuditStore) -> None:
    # Spelled out so that an external checker can be written from this test alone.
    record = await audit.append({"at": datetime(2026, 11, 21, 10, 15, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
                                 "actor": "u-olga", "action": "READ", "outcome": "OK"})

    canonical = (b'{"_id":"app-1:000000000001","action":"READ","actor":"u-olga",'
                 b'"at":{"$date":"2026-11-21T09:15:00.123Z"},"outcome":"OK","prev":"","seq":1,"writer":"app-1"}')
    assert record["hash"] == hashlib.sha256(canonical).hexdigest()


async def test_a_record_reads_back_exactly_as_appended_in_utc_milliseconds(audit: AuditStore,
                                                                            database: Database) -> None:
    appended = await audit.append(entry(1, changes=[{"field": "status", "old": "NEW", "new": "OPEN"}]))

    stored = await database.collection("audit").find_one({"_id": "app-1:000000000001"})

    assert stored == appended
    assert stored["at"] == datetime(2026, 11, 21, 10, 15, 1, 123000, tzinfo=timezone.utc)


@pytest.mark.parametrize(("given", "stored"), [
    pytest.param({"outcome": "OK", "seen": 3, "masked": True, "ratio": 0.5, "reason": None},
                 {"outcome": "OK", "seen": 3, "masked": True, "ratio": 0.5, "reason": None}, id="plain values"),
    pytest.param({"channel": "C" * 70}, {"channel": "C" * 52 + "…[truncated]"}, id="text over its field's bound"),
    pytest.param({"outcome": "O" * 33}, {"outcome": "O" * 20 + "…[truncated]"}, id="just over the tightest bound"),
    pytest.param({"channel": "O" * 32}, {"channel": "O" * 32}, id="at the tightest bound"),
    pytest.param({"reason": "Zażółć"}, {"reason": "Zażółć"}, id="short text, not ASCII"),
    pytest.param({"channel": "a\udcffb"}, {"channel": "a?b"}, id="a lone surrogate from a header"),
    pytest.param({"fields": ("Customer.pesel", "Case.title")}, {"fields": ["Customer.pesel", "Case.title"]},
                 id="a tuple of names"),
    pytest.param({"fields": ["x" * 2001]}, {"fields": ["x" * 1988 + "…[truncated]"]}, id="a long name in a list"),
    pytest.param({"fields": ["Case.title", "Zażółć"]}, {"fields": ["Case.title", "Zażółć"]}, id="a list, not ASCII"),
    pytest.param({"fields": ["Case.title", 7]}, {"fields": ["Case.title", 7]}, id="a list of mixed kinds"),
    pytest.param({"changes": [{"field": "title", "to": "t" * 2001}]},
                 {"changes": [{"field": "title", "to": "t" * 1988 + "…[truncated]"}]}, id="text in a nested record"),
    pytest.param({"eventIds": []}, {"eventIds": []}, id="an empty list"),
])
async def test_each_kind_of_value_is_stored_as_given_or_bounded(audit: AuditStore, given: dict[str, Any],
                                                                 stored: dict[str, Any]) -> None:
    appended = await audit.append(entry(1, **given))

    assert {name: appended[name] for name in given} == stored


@pytest.mark.parametrize(("bad", "problem"), [
    ({"actor": None}, "audit record: missing actor"),
    ({"outcome": ""}, "audit record: missing outcome"),
    ({"at": "2026-11-21T10:15:00Z"}, "audit record: at must be a datetime"),
    ({"hash": "forged"}, "audit record: hash are set by the store"),
    ({"_id": 7, "prev": ""}, "audit record: _id, prev are set by the store"),
    ({"writer": "app-2", "seq": 1}, "audit record: writer, seq are set by the store"),
    ({"changes": [{"$set": 1}]}, "audit record: field name '$set' at changes is not allowed"),
    ({"fields": {"Customer.pesel"}}, "audit record: fields has a value of type set that cannot be stored"),
])
async def test_an_incomplete_or_forged_entry_is_refused_and_nothing_is_stored(
        audit: AuditStore, database: Database, bad: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError) as refused:
        await audit.append(entry(1, **bad))

    assert str(refused.value) == problem
    assert await database.collection("audit").count_documents({}) == 0


def test_each_process_draws_its_own_writer_id_and_a_bad_one_is_refused(database: Database) -> None:
    drawn = {AuditStore(database).writer for _ in range(3)}

    assert len(drawn) == 3
    assert all(re.fullmatch(rf"[A-Za-z0-9.-]+-{os.getpid()}-[0-9a-f]{{8}}", writer) for writer in drawn)
    for bad in ("a:b", "(legacy)", "", "a;b"):
        with pytest.raises(ValueError):
            AuditStore(database, writer=bad)


async def test_appends_one_after_the_other_cost_one_insert_each(audit: AuditStore, database: Database) -> None:
    database.round_trips.reset()

    await append_all(audit, [entry(1), entry(2), entry(3)])

    assert database.round_trips.by_operation == {"audit.insert_one": 3}


async def test_appends_waiting_together_are_one_insert_many_in_the_order_they_came(audit: AuditStore,
                                                                                   database: Database) -> None:
    database.round_trips.reset()

    records = await asyncio.gather(*(audit.append(entry(n)) for n in range(1, 21)))

    assert database.round_trips.by_operation == {"audit.insert_many": 1}
    assert [(r["seq"], r["caseIds"]) for r in records] == [(n, [f"CASE-{n}"]) for n in range(1, 21)]
    assert (await audit.verify()).ok


async def test_appends_that_arrive_while_a_write_is_in_flight_go_together_into_the_next(database: Database) -> None:
    slow = SlowInserts(database)
    audit = AuditStore(slow, writer=WRITER)  # type: ignore[arg-type]
    first = asyncio.create_task(audit.append(entry(1)))
    await slow.started.wait()  # record 1 is being written

    later = [asyncio.create_task(audit.append(entry(n))) for n in range(2, 12)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in [first, *later])  # nobody has data before its record is durable
    slow.release.set()
    records = [await first] + [await task for task in later]

    assert slow.writes == [1, 10]
    assert [r["seq"] for r in records] == list(range(1, 12))


async def test_a_caller_cancelled_while_its_write_is_in_flight_leaves_the_others_records_to_be_written(
        database: Database) -> None:
    slow = SlowInserts(database)
    audit = AuditStore(slow, writer=WRITER)  # type: ignore[arg-type]
    gone = asyncio.create_task(audit.append(entry(1)))
    await slow.started.wait()
    waiting = asyncio.create_task(audit.append(entry(2)))
    await asyncio.sleep(0.01)

    gone.cancel()
    slow.release.set()
    record = await waiting

    assert gone.cancelled()
    # The cancelled write never reached the store here, so the next one re-read the head and took its place.
    assert (record["seq"], record["caseIds"], slow.writes) == (1, ["CASE-2"], [1, 1])
    assert (await audit.verify()).ok


class SlowInserts:
    """A Database whose audit inserts wait until released, recording how many records each write carried."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.started, self.release = asyncio.Event(), asyncio.Event()
        self.writes: list[int] = []

    def collection(self, name: str) -> Any:
        real, owner = self._database.collection(name), self

        class Collection:
            def __getattr__(self, operation: str) -> Any:
                return getattr(real, operation)

            async def insert_one(self, document: dict[str, Any]) -> Any:
                return await self.insert_many([document])

            async def insert_many(self, documents: list[dict[str, Any]], **options: Any) -> Any:
                owner.writes.append(len(documents))
                owner.started.set()
                await owner.release.wait()
                return await real.insert_many(documents, **options)

        return Collection()


async def test_a_failed_write_fails_every_caller_in_it_and_the_next_write_rereads_the_head(
        database: Database) -> None:
    flaky = FlakyInserts(database)
    audit = AuditStore(flaky, writer=WRITER)  # type: ignore[arg-type]
    await audit.append(entry(1))
    flaky.fail_next = "before"

    outcomes = await asyncio.gather(*(audit.append(entry(n)) for n in (2, 3, 4)), return_exceptions=True)
    database.round_trips.reset()
    after = await audit.append(entry(5))

    assert [type(o) for o in outcomes] == [StoreUnavailable] * 3
    assert str(outcomes[0]) == "audit: the write of 3 record(s) failed: AutoReconnect: connection reset"
    assert database.round_trips.by_operation == {"audit.find_one": 1, "audit.insert_one": 1}
    assert (after["seq"], [r["caseIds"] for r in await database.collection("audit").find().sort("_id").to_list(
        None)]) == (2, [["CASE-1"], ["CASE-5"]])
    assert (await audit.verify()).ok


async def test_a_write_that_landed_though_its_reply_was_lost_is_continued_not_overwritten(
        database: Database) -> None:
    flaky = FlakyInserts(database)
    audit = AuditStore(flaky, writer=WRITER)  # type: ignore[arg-type]
    await audit.append(entry(1))
    flaky.fail_next = "after"

    with pytest.raises(StoreUnavailable):
        await audit.append(entry(2))
    third = await audit.append(entry(3))

    assert third["seq"] == 3
    assert (await audit.verify()).ok


class FlakyInserts:
    """A Database whose next audit insert fails as if the connection dropped, before or after the write landed."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.fail_next: str | None = None

    def collection(self, name: str) -> Any:
        real, owner = self._database.collection(name), self

        class Collection:
            def __getattr__(self, operation: str) -> Any:
                return getattr(real, operation)

            async def _insert(self, operation: str, document: Any, **options: Any) -> Any:
                when, owner.fail_next = owner.fail_next, None
                if when == "before":
                    raise AutoReconnect("connection reset")
                result = await getattr(real, operation)(document, **options)
                if when == "after":
                    raise AutoReconnect("connection reset")
                return result

            async def insert_one(self, document: dict[str, Any]) -> Any:
                return await self._insert("insert_one", document)

            async def insert_many(self, documents: list[dict[str, Any]], **options: Any) -> Any:
                return await self._insert("insert_many", documents, **options)

        return Collection()


async def test_two_instances_append_concurrently_to_two_chains_without_waiting_for_each_other(
        database: Database) -> None:
    first, second = AuditStore(database, writer="app-a"), AuditStore(database, writer="app-b")
    database.round_trips.reset()

    await asyncio.gather(*((first if n % 2 else second).append(entry(n)) for n in range(1, 51)))

    # No collisions, no retries: one write per instance.
    assert database.round_trips.by_operation == {"audit.insert_many": 2}
    records = await database.collection("audit").find().sort("_id").to_list(None)
    assert [r["_id"] for r in records] == [rid(n, "app-a") for n in range(1, 26)] + [
        rid(n, "app-b") for n in range(1, 26)]
    report = await first.verify()
    assert report == VerifyReport(ok=True, checked=50, chains=(
        ChainReport(writer="app-a", ok=True, checked=25, head_seq=25, head_id=rid(25, "app-a"),
                    head_hash=records[24]["hash"]),
        ChainReport(writer="app-b", ok=True, checked=25, head_seq=25, head_id=rid(25, "app-b"),
                    head_hash=records[49]["hash"])))


# --- Verifying --------------------------------------------------------------------------------------------

async def test_an_empty_trail_verifies(audit: AuditStore) -> None:
    assert await audit.verify() == VerifyReport(ok=True, checked=0, chains=())


async def test_an_untouched_chain_verifies(audit: AuditStore, database: Database) -> None:
    records = await append_all(audit, [entry(n) for n in range(1, 6)])

    assert await AuditStore(database).verify() == VerifyReport(ok=True, checked=5, chains=(ChainReport(
        writer="app-1", ok=True, checked=5, head_seq=5, head_id="app-1:000000000005", head_hash=records[-1]["hash"]),))


async def test_an_edited_record_is_named_by_verify(audit: AuditStore, database: Database) -> None:
    records = await append_all(audit, [entry(n) for n in range(1, 6)])

    await database.collection("audit").update_one({"_id": rid(3)}, {"$set": {"outcome": "FORBIDDEN"}})

    assert await AuditStore(database).verify() == VerifyReport(ok=False, checked=3, chains=(ChainReport(
        writer="app-1", ok=False, checked=3, first_broken=3, reason="record 3: hash does not match its content",
        head_seq=2, head_id=rid(2), head_hash=records[1]["hash"]),))


async def test_an_edited_record_with_a_recomputed_hash_breaks_the_next_link(audit: AuditStore,
                                                                            database: Database) -> None:
    records = await append_all(audit, [entry(n) for n in range(1, 6)])
    forged = {**records[2], "reason": "nothing to see"}
    forged["hash"] = record_hash(forged)

    await database.collection("audit").replace_one({"_id": rid(3)}, forged)

    chain = (await AuditStore(database).verify()).chain("app-1")
    assert (chain.ok, chain.first_broken, chain.reason) == (False, 4, "record 4: prev does not match the hash of record 3")


async def test_a_record_moved_to_another_place_in_its_chain_is_named_by_verify(audit: AuditStore,
                                                                                database: Database) -> None:
    records = await append_all(audit, [entry(n) for n in range(1, 4)])
    forged = {**records[1], "seq": 7}
    forged["hash"] = record_hash(forged)

    await database.collection("audit").replace_one({"_id": rid(2)}, forged)

    chain = (await AuditStore(database).verify()).chain("app-1")
    assert (chain.ok, chain.first_broken, chain.reason) == (False, 2, "record 2: writer and seq do not match its _id")


async def test_a_deleted_record_leaves_a_gap_that_verify_names(audit: AuditStore, database: Database) -> None:
    await append_all(audit, [entry(n) for n in range(1, 6)])

    await database.collection("audit").delete_one({"_id": rid(3)})

    chain = (await AuditStore(database).verify()).chain("app-1")
    assert (chain.ok, chain.first_broken, chain.reason) == (False, 3, "record 3 is missing (next is 4)")


async def test_a_removed_tail_shows_in_the_writers_verify_and_against_the_anchored_head(audit: AuditStore,
                                                                                        database: Database) -> None:
    records = await append_all(audit, [entry(n) for n in range(1, 6)])
    anchored = (await audit.verify()).chain("app-1")

    await database.collection("audit").delete_many({"_id": {"$gte": rid(4)}})

    cut = ChainReport(writer="app-1", ok=False, checked=3, first_broken=4, reason="records 4..5 are missing (tail removed)",
                      head_seq=3, head_id=rid(3), head_hash=records[2]["hash"])
    assert await audit.verify() == VerifyReport(ok=False, checked=3, chains=(cut,))
    # A fresh process cannot see the cut by itself; given the anchored head, it can.
    assert (await AuditStore(database).verify()).ok
    assert await AuditStore(database).verify({"app-1": Anchor(anchored.head_seq, anchored.head_hash)}) == VerifyReport(
        ok=False, checked=3, chains=(cut,))


async def test_a_removed_chain_and_a_rewritten_anchored_head_break_against_their_anchors(database: Database) -> None:
    gone, rewritten = AuditStore(database, writer="app-gone"), AuditStore(database, writer="app-kept")
    await append_all(gone, [entry(1), entry(2)])
    records = await append_all(rewritten, [entry(3), entry(4)])
    anchors = {c.writer: Anchor(c.head_seq, c.head_hash) for c in (await gone.verify()).chains}

    await database.collection("audit").delete_many({"writer": "app-gone"})
    forged = {**records[1], "reason": "nothing to see"}
    forged["hash"] = record_hash(forged)
    await database.collection("audit").replace_one({"_id": forged["_id"]}, forged)

    report = await AuditStore(database).verify(anchors)
    assert [(c.writer, c.ok, c.first_broken, c.reason) for c in report.chains] == [
        ("app-gone", False, 1, "records 1..2 are missing (tail removed)"),
        ("app-kept", False, 2, "record 2: hash differs from the anchored head (chain rewritten)")]


async def test_a_broken_chain_does_not_hide_the_others(database: Database) -> None:
    broken, intact = AuditStore(database, writer="app-a"), AuditStore(database, writer="app-b")
    await append_all(broken, [entry(1), entry(2)])
    await append_all(intact, [entry(3), entry(4)])

    await database.collection("audit").delete_one({"_id": rid(1, "app-a")})

    report = await intact.verify()
    assert [(c.writer, c.ok, c.checked, c.reason) for c in report.chains] == [
        ("app-a", False, 1, "record 1 is missing (next is 2)"), ("app-b", True, 2, None)]
    assert (report.ok, report.checked) == (False, 3)


def legacy_records(count: int) -> list[dict[str, Any]]:
    """Records as the store wrote them before chains were per writer: `_id` = n, one chain for everyone."""
    records, prev = [], ""
    for n in range(1, count + 1):
        record = {**entry(n), "at": AT + timedelta(seconds=n), "_id": n, "prev": prev}
        record["at"] = record["at"].replace(microsecond=123000)
        record["hash"] = prev = record_hash(record)
        records.append(record)
    return records


async def test_records_from_the_single_chain_era_verify_as_the_legacy_chain(audit: AuditStore,
                                                                            database: Database) -> None:
    old = legacy_records(3)
    await database.collection("audit").insert_many([dict(r) for r in old])
    new = await append_all(audit, [entry(4), entry(5)])

    assert await audit.verify() == VerifyReport(ok=True, checked=5, chains=(
        ChainReport(writer=LEGACY, ok=True, checked=3, head_seq=3, head_id=3, head_hash=old[2]["hash"]),
        ChainReport(writer="app-1", ok=True, checked=2, head_seq=2, head_id=rid(2), head_hash=new[1]["hash"])))

    await database.collection("audit").delete_one({"_id": 2})

    chain = (await audit.verify()).chain(LEGACY)
    assert (chain.ok, chain.first_broken, chain.reason) == (False, 2, "record 2 is missing (next is 3)")


async def test_a_record_in_no_chain_is_reported(audit: AuditStore, database: Database) -> None:
    await append_all(audit, [entry(1)])
    await database.collection("audit").insert_one({**entry(2), "_id": "planted", "prev": "", "hash": ""})

    report = await audit.verify()
    assert [(c.writer, c.ok, c.reason) for c in report.chains] == [
        ("(foreign 'planted')", False, "record 'planted' is not part of any chain"), ("app-1", True, None)]


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


@pytest.mark.parametrize(("filters", "seqs"), [
    ({}, [5, 4, 3, 2, 1]),
    ({"case_id": "CASE-1"}, [4, 3, 1]),
    ({"customer_id": "CUST-2"}, [3, 2]),
    ({"actor": "u-marek"}, [4, 3]),
    ({"case_id": "CASE-2", "actor": "u-olga"}, [2]),
    ({"case_id": "CASE-404"}, []),
])
async def test_the_trail_filters_by_case_customer_and_actor_newest_first(
        audit: AuditStore, filters: dict[str, str], seqs: list[int]) -> None:
    await given_a_mixed_trail(audit)

    page = await audit.trail(**filters)

    assert ([r["seq"] for r in page.records], page.has_next) == (seqs, False)


async def test_the_trail_pages_after_the_last_record_seen(audit: AuditStore) -> None:
    await given_a_mixed_trail(audit)

    first = await audit.trail(case_id="CASE-1", first=2)
    second = await audit.trail(case_id="CASE-1", first=2, after=(first.records[-1]["at"], first.records[-1]["_id"]))

    assert ([r["seq"] for r in first.records], first.has_next) == ([4, 3], True)
    assert ([r["seq"] for r in second.records], second.has_next) == ([1], False)


async def test_the_trail_of_several_writers_and_the_legacy_chain_is_newest_first_by_time_then_id(
        database: Database) -> None:
    """Same-millisecond records order by writer and seq (their `_id`), a legacy record before them all."""
    await database.collection("audit").insert_many(legacy_records(2))  # at AT+1s and AT+2s
    a, b = AuditStore(database, writer="app-a"), AuditStore(database, writer="app-b")
    await b.append(entry(2))
    await a.append(entry(2))
    await a.append(entry(3))
    await b.append(entry(1))

    walked, after = [], None
    while True:
        page = await a.trail(first=2, after=after)
        walked += [r["_id"] for r in page.records]
        if not page.has_next:
            break
        after = (page.records[-1]["at"], page.records[-1]["_id"])

    assert walked == [rid(2, "app-a"), rid(1, "app-b"), rid(1, "app-a"), 2, rid(2, "app-b"), 1]


async def test_the_trail_of_an_actor_includes_the_pushes_it_received_newest_first_each_once(
        database: Database) -> None:
    """A push's record names its recipients (edge/fanout.py); a push to one subscriber names it as actor too."""
    await database.collection("audit").insert_many(legacy_records(1))  # u-olga at AT+1s
    audit = AuditStore(database, writer=WRITER)
    await append_all(audit, [
        entry(2, actor="subscribers", recipients=["u-marek", "u-olga"]),
        entry(3, actor="u-marek"),
        entry(4, actor="u-olga", recipients=["u-olga"]),
        entry(5),  # u-olga
        entry(6, actor="subscribers", recipients=["u-marek", "u-zofia"]),
    ])

    walked, after = [], None
    while True:
        page = await audit.trail(actor="u-olga", first=2, after=after)
        walked.append([r["_id"] for r in page.records])
        if not page.has_next:
            break
        after = (page.records[-1]["at"], page.records[-1]["_id"])

    assert walked == [[rid(4), rid(3)], [rid(1), 1]]
    assert [r["_id"] for r in (await audit.trail(actor="u-marek")).records] == [rid(5), rid(2), rid(1)]
    assert [r["_id"] for r in (await audit.trail(actor="u-zofia")).records] == [rid(5)]
    assert [r["_id"] for r in (await audit.trail(actor="u-marek", case_id="CASE-2")).records] == [rid(1)]
    assert (await audit.verify()).ok


async def test_the_trail_has_its_indexes(audit: AuditStore, database: Database) -> None:
    await audit.ensure_indexes()

    indexes = await database.collection("audit").index_information()

    assert {name: list(spec["key"]) for name, spec in indexes.items() if name != "_id_"} == {
        "case_newest": [("caseIds", 1), ("at", -1), ("_id", -1)],
        "customer_newest": [("customerIds", 1), ("at", -1), ("_id", -1)],
        "actor_newest": [("actor", 1), ("at", -1), ("_id", -1)],
        "recipients_newest": [("recipients", 1), ("at", -1), ("_id", -1)], "at": [("at", 1), ("_id", 1)],
        "writes": [("writes", 1)]}


# --- audit_verify.py --------------------------------------------------------------------------------------

async def test_the_verify_command_reports_a_broken_chain_with_exit_code_1(audit: AuditStore,
                                                                         database: Database) -> None:
    await append_all(audit, [entry(1), entry(2)])
    await database.collection("audit").update_one({"_id": rid(2)}, {"$set": {"actor": "someone-else"}})

    result, code = await audit_verify.verify_audit(database)

    [chain] = result["chains"]
    assert (code, result["ok"], chain["writer"], chain["first_broken"], chain["reason"]) == (
        1, False, "app-1", 2, "record 2: hash does not match its content")


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


def test_the_verify_command_prints_one_json_line_with_a_report_per_chain() -> None:
    database = connect(None, "audit_cli_test")
    a = asyncio.run(append_all(AuditStore(database, writer="app-a"), [entry(1), entry(2)]))
    b = asyncio.run(append_all(AuditStore(database, writer="app-b"), [entry(3)]))
    out = io.StringIO()

    code = audit_verify.main(env={}, database=database, out=out)

    lines = out.getvalue().splitlines()
    assert code == 0 and len(lines) == 1
    assert orjson.loads(lines[0]) == {"ok": True, "checked": 3, "chains": [
        {"writer": "app-a", "ok": True, "checked": 2, "first_broken": None, "reason": None, "head_seq": 2,
         "head_id": "app-a:000000000002", "head_hash": a[1]["hash"]},
        {"writer": "app-b", "ok": True, "checked": 1, "first_broken": None, "reason": None, "head_seq": 1,
         "head_id": "app-b:000000000001", "head_hash": b[0]["hash"]}]}


def test_the_verify_command_checks_every_chain_against_an_earlier_report(tmp_path: Path) -> None:
    database = connect(None, "audit_cli_anchor_test")
    asyncio.run(append_all(AuditStore(database, writer="app-a"), [entry(1), entry(2), entry(3)]))
    anchor = tmp_path / "anchor.json"
    earlier = io.StringIO()
    assert audit_verify.main(env={}, database=database, out=earlier) == 0
    anchor.write_text(earlier.getvalue())

    asyncio.run(database.collection("audit").delete_one({"_id": "app-a:000000000003"}))
    now = io.StringIO()
    code = audit_verify.main(env={}, database=database, out=now, argv=["--anchor", str(anchor)])

    assert code == 1
    assert orjson.loads(now.getvalue())["chains"][0]["reason"] == "records 3..3 are missing (tail removed)"
    assert audit_verify.main(env={}, database=database, out=io.StringIO()) == 0  # without the anchor it cannot tell


def test_the_verify_command_says_not_checked_when_the_anchor_is_no_report(tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.json"
    anchor.write_text('{"ok": true}')
    out = io.StringIO()

    code = audit_verify.main(env={}, database=connect(None, "audit_cli_bad_anchor"), out=out,
                             argv=["--anchor", str(anchor)])

    assert (code, out.getvalue()) == (
        2, '{"ok":false,"error":"ValueError: anchor: not an audit_verify.py report (no chains)"}\n')


def test_python_audit_verify_runs_as_a_command_and_will_not_vouch_for_an_embedded_store() -> None:
    """Without MONGODB_URI there is nothing it can read: the embedded store is inside the server's process, so the
    honest answer is "not checked" (2), never "ok, 0 records"."""
    done = subprocess.run([sys.executable, "audit_verify.py"], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "APP_ENV": "dev"}, timeout=60, check=False)

    assert (done.returncode, done.stdout, done.stderr) == (
        2, '{"ok":false,"error":"MONGODB_URI is not set: the embedded store is inside the server process and '
           'cannot be checked from here"}\n', "")
