"""What a case write decided beyond the case itself, staged in the same document and relayed from there.

A case write is one single-document replace; everything it implies elsewhere travels inside it, under `outbox`:
the journal record and history row of each applied event, the task rows it changed, its outbound messages and
its audit record. Right after the write the writer relays them (`relay_cases`); a writer that dies first leaves
them to any instance's relay loop (`sweep`). Every step is idempotent — rows and messages are keyed by their
ids, task merges go by order stamps — so relaying twice leaves the same state, and the staged effects are
dropped only by a conditional update on the write id that staged them.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from consumers.relay import OutboxRelay
from stores.audit import AuditStore
from stores.cases import CaseStore
from stores.events import EventStore
from stores.history import HistoryStore
from stores.outbox import Message
from stores.tasks import TaskChange, TaskStore

# A staged effect older than this was left by a writer that stopped: the relay loop takes it over.
ABANDONED_AFTER = timedelta(seconds=5)
SWEEP_LIMIT = 200


def event_effect(journal: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "event", "id": f"event:{journal['id']}", "journal": journal, "entry": entry}


def task_effect(change: TaskChange, version: int) -> dict[str, Any]:
    return {"kind": "task", "id": f"task:{change.task['id']}:{version}", "task": change.task,
            "caseId": change.case_id, "visibility": change.visibility, "baseVersion": change.base_version}


def visibility_effect(case_id: str, visibility: dict[str, Any], version: int) -> dict[str, Any]:
    return {"kind": "visibility", "id": f"visibility:{version}", "caseId": case_id, "visibility": visibility}


def audit_effect(entry: dict[str, Any], case_id: str, version: int) -> dict[str, Any]:
    write_id = own_audit_id({"_id": case_id, "version": version})
    # The record names its write, so relaying the same staged effects again does not record it twice.
    return {"kind": "audit", "id": write_id, "entry": {**entry, "writes": [write_id]}}


def own_audit_id(case: dict[str, Any]) -> str:
    """The id of the audit effect the write of this version of the case staged (`audit_effect`)."""
    return f"audit:{case['_id']}:{case['version']}"


def history_effect(entry: dict[str, Any]) -> dict[str, Any]:
    """A history row staged by a write other than the case's own (a claim on a task row); `entry` has its `_id`."""
    return {"kind": "history", "id": f"history:{entry['_id']}", "entry": entry}


def staged_event_ids(doc: dict[str, Any]) -> set[str]:
    """Events applied to the case whose journal records may not be written yet."""
    return {e["journal"]["id"] for e in doc.get("outbox") or () if e["kind"] == "event"}


class StagingRecords(Protocol):
    """Records other than cases that stage their own effects (task rows, negotiated terms): the same relay."""

    async def staged(self, older_than: datetime, limit: int) -> list[dict[str, Any]]: ...

    async def clear_staged(self, relayed: Sequence[dict[str, Any]]) -> None: ...


class Staging:
    def __init__(self, cases: CaseStore, events: EventStore, history: HistoryStore, tasks: TaskStore,
                 audit: AuditStore, relay: OutboxRelay, *, records: Sequence[StagingRecords] = ()) -> None:
        self._cases = cases
        self._events = events
        self._history = history
        self._tasks = tasks
        self._audit = audit
        self._relay = relay
        self._records = [tasks, *records]

    async def relay_cases(self, docs: Sequence[dict[str, Any]], *, written_here: Collection[str] = ()) -> None:
        """Carry out the staged effects of these case documents (as written: `outbox` and `writeId`).

        `written_here`: the ids of cases among them that this caller has just written (their staged effects are
        its own, unless someone else relayed or took them over since)."""
        docs = [d for d in docs if d.get("outbox")]
        if not docs:
            return
        effects = [effect for doc in docs for effect in doc["outbox"]]
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for effect in effects:
            by_kind.setdefault(effect["kind"], []).append(effect)
        # Journal and history first: whoever hears of the change may read them at once.
        await self._events.record_applied([e["journal"] for e in by_kind.get("event", ())])
        await self._history.append([e["entry"] for e in by_kind.get("event", ())])
        await self._tasks.apply([
            TaskChange(task=e["task"], case_id=e["caseId"], visibility=e["visibility"], base_version=e["baseVersion"])
            for e in by_kind.get("task", ())])
        await self._tasks.set_visibility({e["caseId"]: e["visibility"] for e in by_kind.get("visibility", ())})
        audits = by_kind.get("audit", [])
        recorded = await self._recorded(docs, audits, written_here)
        by_actor: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for effect in audits:
            if effect["id"] in recorded:
                continue
            entry = effect["entry"]
            by_actor.setdefault((entry["actor"], entry.get("actorName") or ""), []).append(entry)
        for entries in by_actor.values():
            await self._audit.append(_one_record(entries))
        await self._relay.add_and_send([Message.from_staged(e) for e in by_kind.get("message", ())])
        await self._cases.clear_staged([(doc["_id"], doc["writeId"]) for doc in docs])

    async def _recorded(self, docs: Sequence[dict[str, Any]], audits: list[dict[str, Any]],
                        written_here: Collection[str]) -> set[str]:
        """The audit effects among `audits` whose record someone else has written (or will write)."""
        if not audits:
            return set()
        own = {own_audit_id(doc) for doc in docs if doc["_id"] in written_here}
        if not all(effect["id"] in own for effect in audits):
            # Effects a stopped or earlier writer staged: their record may exist. A lookup by write id is one
            # indexed read on MongoDB, but a scan of every audit record on the in-memory store.
            return await self._audit.recorded_writes([e["id"] for e in audits])
        # Only this caller's fresh writes: their records exist only if someone else relayed these effects since
        # the write (and then cleared them) or a newer write took them over (and records them itself). The case
        # documents say so by id: the same answer, without the scan of the audit that grew with every record.
        written = [(doc["_id"], doc["writeId"]) for doc in docs if own_audit_id(doc) in own]
        mine = await self._cases.still_staged(written)
        return {own_audit_id(doc) for doc in docs if doc["_id"] in written_here and doc["_id"] not in mine}

    async def relay_records(self, store: StagingRecords, rows: Sequence[dict[str, Any]]) -> None:
        """Carry out what writes of `store`'s records (a claim, an approval) staged in them: history rows, then
        messages; then forget them in the records. Their `case.task_changed` / `case.terms_changed` message is how
        every instance (this one too, through its bus) forgets cached answers that showed the case."""
        rows = [r for r in rows if r.get("outbox")]
        if not rows:
            return
        effects = [e for row in rows for e in row["outbox"]]
        await self._history.append([e["entry"] for e in effects if e["kind"] == "history"])
        await self._relay.add_and_send([Message.from_staged(e) for e in effects if e["kind"] == "message"])
        await store.clear_staged(rows)

    async def sweep(self) -> None:
        """Relay what writers that stopped left staged (the relay loop calls this on every pass)."""
        older_than = datetime.now(timezone.utc) - ABANDONED_AFTER
        await self.relay_cases(await self._cases.staged(older_than, SWEEP_LIMIT))
        for store in self._records:
            await self.relay_records(store, await store.staged(older_than, SWEEP_LIMIT))


def _one_record(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Writes of one actor relayed together, as one audit record (one batch, one record)."""
    first = entries[0]
    return {
        **first,
        "eventIds": [i for e in entries for i in e.get("eventIds", [])],
        "caseIds": sorted({c for e in entries for c in e.get("caseIds", [])}),
        "customerIds": sorted({c for e in entries for c in e.get("customerIds", [])}),
        "sources": sorted({s for e in entries for s in e.get("sources", [])}),
        "changes": [c for e in entries for c in e.get("changes", [])],
        "writes": [w for e in entries for w in e.get("writes", [])],
    }
