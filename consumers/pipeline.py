"""One ingest pipeline for Kafka batches and the `publishCaseEvent` mutation.

Each case is one document written with a version guard (no transactions needed): read the batch's cases,
reduce the events in memory, write every changed case in one bulk round trip, retry the cases whose
guard failed. Event ids live in the case document, so a redelivered event is seen as a duplicate in the
same read that loads the case.
"""
from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import datetime, timezone
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from prometheus_client import Counter

from consumers.apply import apply_event, new_case
from consumers.publication import StateChange
from consumers.cloudevents import CaseEvent, parse_envelope
from errors import Conflict
from stores.audit import AuditStore
from stores.case_scope import EVERYTHING
from stores.cases import CaseStore, CaseWrite
from stores.events import EventStore

EVENTS_INGESTED = Counter(
    "case_repository_events_total", "Inbound case events by outcome", ["outcome"],
)
MAX_ATTEMPTS = 10
RETRY_BACKOFF_SECONDS = 0.002


class IngestStatus(str, Enum):
    APPLIED = "APPLIED"
    DUPLICATE = "DUPLICATE"
    PARKED = "PARKED"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class IngestResult:
    event_id: str
    case_id: str
    status: IngestStatus
    reason: str | None = None


class UpdatesPublisher(Protocol):
    async def publish(self, changes: Sequence[StateChange]) -> None: ...


@dataclass
class _Round:
    """What one pass over a batch decided, before it is written."""

    results: dict[str, IngestResult]
    writes: list[CaseWrite]
    previous_status: dict[str, str | None]
    unchanged: list[dict[str, Any]]
    to_park: list[CaseEvent]
    applied: list[CaseEvent]
    # Already in the case: journaled again, as a crash after the case write may have skipped the journal.
    redelivered: list[CaseEvent] = field(default_factory=list)


def _case_changes(batch: _Round, conflicted: set[str]) -> list[dict[str, Any]]:
    """Old -> new of what a reader of the audit trail asks first: the version and the status of each case."""
    changes = []
    for write in batch.writes:
        case_id = write.case["_id"]
        if case_id in conflicted:
            continue
        changes.append({"caseId": case_id, "field": "version", "old": write.expected_version,
                        "new": write.case["version"]})
        if batch.previous_status[case_id] != write.case.get("status"):
            changes.append({"caseId": case_id, "field": "status", "old": batch.previous_status[case_id],
                            "new": write.case.get("status")})
    return changes


def _write_entry(actor: str, results: Sequence[IngestResult], changes: list[dict[str, Any]]) -> dict[str, Any]:
    applied = [r for r in results if r.status is IngestStatus.APPLIED]
    return {
        "at": datetime.now(timezone.utc), "actor": actor, "action": "WRITE", "operation": "applyEvents",
        "outcome": "ok", "eventIds": [r.event_id for r in applied],
        "caseIds": sorted({c["caseId"] for c in changes}), "changes": changes,
    }


def _journal_record(event: CaseEvent) -> dict[str, Any]:
    return {"id": event.id, "caseId": event.case_id, "type": event.type, "order": event.order}


class EventPipeline:
    def __init__(self, cases: CaseStore, events: EventStore, publisher: UpdatesPublisher, audit: AuditStore) -> None:
        self._cases = cases
        self._events = events
        self._publisher = publisher
        self._audit = audit

    async def ingest(self, events: Sequence[CaseEvent], *, actor: str = "system") -> list[IngestResult]:
        """Apply a batch; every event gets a result, in input order. Store errors propagate unchanged.

        `actor` is who delivered the batch (a principal, `kafka:<group>`, ...), for the audit record.
        """
        results: dict[str, IngestResult] = {}
        changes: list[dict[str, Any]] = []
        pending = list(events)
        for attempt in range(MAX_ATTEMPTS):
            pending = await self._ingest_once(pending, results, changes)
            if not pending:
                break
            # Another writer won the version race: wait a random moment, or a busy writer that always reads
            # just before us wins every round and we run out of attempts.
            await asyncio.sleep(random.uniform(0, RETRY_BACKOFF_SECONDS * 2 ** attempt))
        else:
            raise Conflict(f"cases {sorted({e.case_id for e in pending})} kept changing under the pipeline")
        answered: list[IngestResult] = []
        seen: set[str] = set()
        for event in events:
            # A second copy of an id in the same batch is a redelivery like any other.
            result = results[event.id] if event.id not in seen else IngestResult(
                event.id, event.case_id, IngestStatus.DUPLICATE)
            seen.add(event.id)
            answered.append(result)
            EVENTS_INGESTED.labels(result.status.value.lower()).inc()
        if changes:
            await self._audit.append(_write_entry(actor, answered, changes))
        return answered

    async def _ingest_once(self, events: Sequence[CaseEvent], results: dict[str, IngestResult],
                           changes: list[dict[str, Any]]) -> list[CaseEvent]:
        """One pass over the batch; returns the events to run again (lost races, late parked events)."""
        by_case: dict[str, list[CaseEvent]] = {}
        for event in events:
            by_case.setdefault(event.case_id, []).append(event)
        docs = await self._cases.get_for_update(by_case)
        creating = [cid for cid, evs in by_case.items()
                    if cid not in docs and any(e.type == "case.created" for e in evs)]
        parked: dict[str, list[CaseEvent]] = {}
        for record in await self._events.parked_for(creating):
            parked.setdefault(record["caseId"], []).append(parse_envelope(record["envelope"]))

        batch = _Round(results={}, writes=[], previous_status={}, unchanged=[], to_park=[], applied=[])
        for case_id, case_events in by_case.items():
            self._reduce_case(docs.get(case_id), case_id, case_events, parked.get(case_id, []), batch)

        conflicted = await self._cases.save(batch.writes)
        applied = [e for e in batch.applied if e.case_id not in conflicted]
        to_park = list({e.id: e for e in batch.to_park}.values())
        already_known = await self._events.park([
            {**_journal_record(e), "envelope": e.envelope} for e in to_park
        ])
        for event in to_park:
            if event.id in already_known:
                batch.results[event.id] = IngestResult(event.id, event.case_id, IngestStatus.DUPLICATE)
        # A case created by someone else while we parked would never pick these up: apply them now.
        created_meanwhile = (set(await self._cases.get_many({e.case_id for e in to_park}, scope=EVERYTHING))
                            if to_park else set())
        await self._events.record_applied([_journal_record(e) for e in applied + batch.redelivered])
        changes.extend(_case_changes(batch, conflicted))
        await self._publisher.publish(
            [StateChange(w.case, batch.previous_status[w.case["_id"]])
             for w in batch.writes if w.case["_id"] not in conflicted]
            + [StateChange(doc, doc.get("status")) for doc in batch.unchanged]
        )
        retry = conflicted | created_meanwhile
        results.update({k: v for k, v in batch.results.items() if v.case_id not in retry})
        return [e for e in events if e.case_id in retry] + await self._parked_meanwhile(batch.writes, conflicted)

    async def _parked_meanwhile(self, writes: Sequence[CaseWrite], conflicted: set[str]) -> list[CaseEvent]:
        """Events parked by another pipeline after this one read the parked events of a case it then created.

        That pipeline looked for the case before it was written, so nobody else will apply them. The mirror
        check (parker looks for the case after parking) covers the other interleaving.
        """
        created = [w.case["_id"] for w in writes if w.expected_version is None and w.case["_id"] not in conflicted]
        if not created:
            return []
        return [parse_envelope(record["envelope"]) for record in await self._events.parked_for(created)]

    @staticmethod
    def _reduce_case(doc: dict[str, Any] | None, case_id: str, case_events: list[CaseEvent],
                     parked: list[CaseEvent], batch: _Round) -> None:
        expected_version = doc["version"] if doc else None
        batch.previous_status[case_id] = doc.get("status") if doc else None
        seen = set(doc["eventIds"]) if doc else set()
        state = doc
        changed = duplicated = False
        parked_ids = {e.id for e in parked}
        for event in case_events:
            if event.id in parked_ids:
                # Delivered again while parked: the parked copy is the one applied below.
                batch.results[event.id] = IngestResult(event.id, case_id, IngestStatus.DUPLICATE)
        fresh = [e for e in case_events if e.id not in parked_ids]
        # case.created first, so the other events of the same batch need not be parked.
        ordered = sorted(fresh, key=lambda e: e.type != "case.created") + parked
        for event in ordered:
            if event.id in seen:
                if event.id not in parked_ids:
                    duplicated = True
                    batch.redelivered.append(event)
                    # setdefault: the first copy of an id in this batch keeps its APPLIED.
                    batch.results.setdefault(event.id, IngestResult(event.id, case_id, IngestStatus.DUPLICATE))
                continue
            if state is None and event.type != "case.created":
                batch.to_park.append(event)
                batch.results[event.id] = IngestResult(event.id, case_id, IngestStatus.PARKED)
                continue
            if state is not None and event.type == "case.created":
                reason = f"case {case_id} already exists; case.created cannot be applied twice"
                batch.results[event.id] = IngestResult(event.id, case_id, IngestStatus.REJECTED, reason)
                continue
            state = apply_event(state if state is not None else new_case(case_id), event)
            seen.add(event.id)
            changed = True
            batch.applied.append(event)
            if event.id not in parked_ids:
                batch.results[event.id] = IngestResult(event.id, case_id, IngestStatus.APPLIED)
        if changed and state is not None:
            batch.writes.append(CaseWrite(state, expected_version))
        elif doc is not None and duplicated:
            # A redelivery may follow a crash between write and publish: publish the state again.
            batch.unchanged.append(doc)
