"""One ingest pipeline for Kafka batches and the `publishCaseEvent` mutation.

Each case is one small document (current state only) written with a version guard (no transactions needed):
read the batch's cases with their task rows, reduce the events in memory, write every changed case in one bulk
round trip, retry the cases whose guard failed. Everything else a write implies — journal records and history
rows of its events, task rows, the `case.state_changed` message, its audit record — is staged inside the same
document and relayed right after (consumers/staging.py), so a crash at any point loses none of it.

An event is itself by its CloudEvents identity (`source`, `id`): a duplicate if that pair is staged in its case
or journaled as applied (one read by key, whatever the case's age, so the cost of an event does not grow with
its case's history). Another producer's event with the same id is another event: applied, parked and retired on
its own.
"""
from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from prometheus_client import Counter

from access.sensitive_text import protect_applied
from consumers import incident_retry, lifecycle, panel_acts
from consumers.apply import apply_event, new_case
from consumers.changes import field_changes
from consumers.cloudevents import CaseEvent, EventIdentity, parse_envelope
from consumers.publication import StateChange, state_event
from consumers.staging import Staging, audit_effect, event_effect, task_effect, visibility_effect
from errors import Conflict
from stores.case_scope import EVERYTHING
from stores.cases import CaseStore, CaseWrite
from stores.events import EventStore
from stores.outbox import COMMANDS, UPDATES, Message
from stores.tasks import VISIBILITY_FIELDS, TaskChange, in_list_order, merge_task

EVENTS_INGESTED = Counter(
    "case_repository_events_total", "Inbound case events by outcome", ["outcome"],
)
MAX_ATTEMPTS = 10
# A `sequence` more than this ahead of the highest order a case has seen is refused: it would set its fields for
# good, every real later event of the producer looking older.
MAX_SEQUENCE_AHEAD = 1_000_000
RETRY_BACKOFF_SECONDS = 0.002
# The repository's own events that ask another system to act: the command is staged with the event's write.
_COMMANDS = {incident_retry.RETRY_REQUESTED: incident_retry.command, **panel_acts.COMMANDS}


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


@dataclass(frozen=True)
class Deliverer:
    """Who handed the events in, for the audit: a token's `sub` and `preferred_username`, or a Kafka group."""

    id: str
    name: str | None = None


@dataclass
class _Round:
    """What one pass over a batch decided, before it is written."""

    results: dict[EventIdentity, IngestResult] = field(default_factory=dict)
    writes: list[CaseWrite] = field(default_factory=list)
    to_park: list[CaseEvent] = field(default_factory=list)
    # Read with effects a stopped writer staged and nothing new to write: relayed as they are.
    stale: list[dict[str, Any]] = field(default_factory=list)


def _journal_record(event: CaseEvent) -> dict[str, Any]:
    return {"id": event.id, "source": event.source, "caseId": event.case_id, "type": event.type,
            "order": event.order}


def _staged_identities(doc: dict[str, Any]) -> set[tuple[str | None, str]]:
    """Events applied to the case whose journal records may not be written yet; one staged before sources were
    kept has None for its source (it still names an event of this case)."""
    return {(e["journal"].get("source"), e["journal"]["id"]) for e in doc.get("outbox") or () if e["kind"] == "event"}


def _known(event: CaseEvent, seen: set[tuple[str | None, str]]) -> bool:
    return event.identity in seen or (None, event.id) in seen


def _sequence_too_far(state: dict[str, Any], event: CaseEvent) -> str | None:
    """Why a `sequence` far beyond the case's highest order is refused (None when it is not)."""
    if event.sequence is None:
        return None
    orders = [o[0] for o in (state.get("stamps") or {}).values() if isinstance(o, list) and o and isinstance(o[0], int)]
    if orders and event.sequence > max(orders) + MAX_SEQUENCE_AHEAD:
        return (f"sequence: {event.sequence} is more than {MAX_SEQUENCE_AHEAD} ahead of the highest order the case "
                f"has seen ({max(orders)})")
    return None


def _with_staged_tasks(doc: dict[str, Any]) -> None:
    """The case's task rows as its staged effects will leave them: a writer that stopped before relaying them
    must not make the next one reduce from rows that lack its changes."""
    staged = [e["task"] for e in doc.get("outbox") or () if e["kind"] == "task"]
    if not staged:
        return
    tasks = {t["id"]: t for t in doc.get("tasks", ())}
    for task in copy.deepcopy(staged):  # the reducer changes tasks in place; the staged effects must stay as staged
        tasks[task["id"]] = merge_task(tasks[task["id"]], task) if task["id"] in tasks else task
    doc["tasks"] = in_list_order(tasks.values())


# What stored documents hold besides dicts and lists; none of it changes in place, so a copy may share it.
_IMMUTABLE = (str, int, float, bool, type(None), datetime, bytes)


def _copied(value: Any) -> Any:
    """A copy of a stored document, as deep as the reducer can change it (dicts and lists); immutable leaves are
    shared. `copy.deepcopy` of the same tree was a tenth of an ingest: its memo and dispatch cost per node, and a
    case with its task rows has a few hundred nodes."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)


def _visibility(case: dict[str, Any]) -> dict[str, Any]:
    return {name: case.get(name) for name in VISIBILITY_FIELDS}


class EventPipeline:
    def __init__(self, cases: CaseStore, events: EventStore, staging: Staging) -> None:
        self._cases = cases
        self._events = events
        self._staging = staging

    async def ingest(self, events: Sequence[CaseEvent], *, actor: Deliverer | str = "system") -> list[IngestResult]:
        """Apply a batch; every event gets a result, in input order. Store errors propagate unchanged."""
        deliverer = actor if isinstance(actor, Deliverer) else Deliverer(actor)
        results: dict[EventIdentity, IngestResult] = {}
        pending = list(events)
        for attempt in range(MAX_ATTEMPTS):
            pending = await self._ingest_once(pending, results, deliverer)
            if not pending:
                break
            # Another writer won the version race: wait a random moment, or a busy writer that always reads
            # just before us wins every round and we run out of attempts.
            await asyncio.sleep(random.uniform(0, RETRY_BACKOFF_SECONDS * 2 ** attempt))
        else:
            raise Conflict(f"cases {sorted({e.case_id for e in pending})} kept changing under the pipeline")
        answered: list[IngestResult] = []
        seen: set[EventIdentity] = set()
        for event in events:
            # A second copy of an event in the same batch is a redelivery like any other.
            result = results[event.identity] if event.identity not in seen else IngestResult(
                event.id, event.case_id, IngestStatus.DUPLICATE)
            seen.add(event.identity)
            answered.append(result)
            EVENTS_INGESTED.labels(result.status.value.lower()).inc()
        return answered

    async def _ingest_once(self, events: Sequence[CaseEvent], results: dict[EventIdentity, IngestResult],
                           deliverer: Deliverer) -> list[CaseEvent]:
        """One pass over the batch; returns the events to run again (lost races, late parked events)."""
        by_case: dict[str, list[CaseEvent]] = {}
        for event in events:
            by_case.setdefault(event.case_id, []).append(event)
        docs = await self._cases.get_for_update(by_case)
        for doc in docs.values():
            _with_staged_tasks(doc)
        staged = {case_id: _staged_identities(doc) for case_id, doc in docs.items()}
        journaled: set[tuple[str | None, str]] = set(await self._events.applied(
            e for e in events if not _known(e, staged.get(e.case_id, set()))))
        creating = [cid for cid, evs in by_case.items()
                    if cid not in docs and any(e.type == "case.created" for e in evs)]
        parked: dict[str, list[CaseEvent]] = {}
        for record in await self._events.parked_for(creating):
            parked.setdefault(record["caseId"], []).append(parse_envelope(record["envelope"], received=False))

        batch = _Round()
        for case_id, case_events in by_case.items():
            seen = journaled | staged.get(case_id, set())
            self._reduce_case(docs.get(case_id), case_id, case_events, parked.get(case_id, []), seen,
                              deliverer, batch)

        conflicted = await self._cases.save(batch.writes)
        to_park = list({e.identity: e for e in batch.to_park}.values())
        already_known = await self._events.park([
            {**_journal_record(e), "envelope": e.envelope} for e in to_park
        ])
        for event in to_park:
            if event.key in already_known:
                batch.results[event.identity] = IngestResult(event.id, event.case_id, IngestStatus.DUPLICATE)
        # A case created by someone else while we parked would never pick these up: apply them now.
        created_meanwhile = (set(await self._cases.get_many({e.case_id for e in to_park}, scope=EVERYTHING))
                             if to_park else set())
        landed = [w.case for w in batch.writes if w.case["_id"] not in conflicted]
        await self._staging.relay_cases(landed + batch.stale, written_here={case["_id"] for case in landed})
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
        return [parse_envelope(record["envelope"], received=False)
                for record in await self._events.parked_for(created)]

    def _reduce_case(self, doc: dict[str, Any] | None, case_id: str, case_events: list[CaseEvent],
                     parked: list[CaseEvent], seen: set[tuple[str | None, str]], deliverer: Deliverer,
                     batch: _Round) -> None:
        before = _copied(doc) if doc else None
        state = doc
        applied: list[CaseEvent] = []
        entries: list[dict[str, Any]] = []
        parked_ids = {e.identity for e in parked}
        for event in case_events:
            if event.identity in parked_ids:
                # Delivered again while parked: the parked copy is the one applied below.
                batch.results[event.identity] = IngestResult(event.id, case_id, IngestStatus.DUPLICATE)
        fresh = [e for e in case_events if e.identity not in parked_ids]
        # case.created first, so the other events of the same batch need not be parked.
        ordered = sorted(fresh, key=lambda e: e.type != "case.created") + parked
        for event in ordered:
            identity = event.identity
            if _known(event, seen):
                if identity not in parked_ids:
                    # setdefault: the first copy of an event in this batch keeps its APPLIED.
                    batch.results.setdefault(identity, IngestResult(event.id, case_id, IngestStatus.DUPLICATE))
                continue
            if state is None and event.type != "case.created":
                batch.to_park.append(event)
                batch.results[identity] = IngestResult(event.id, case_id, IngestStatus.PARKED)
                continue
            if state is not None and event.type == "case.created":
                reason = f"case {case_id} already exists; case.created cannot be applied twice"
                batch.results[identity] = IngestResult(event.id, case_id, IngestStatus.REJECTED, reason)
                continue
            if state is not None and (reason := _sequence_too_far(state, event)
                                      or lifecycle.refusal(state, event)
                                      or incident_retry.refusal(state, event)
                                      or panel_acts.refusal(state, event)) is not None:
                batch.results[identity] = IngestResult(event.id, case_id, IngestStatus.REJECTED, reason)
                continue
            if state is None:
                state = new_case(case_id)
            entries.append(protect_applied(state, apply_event(state, event), self._cases.cipher))
            seen.add(identity)
            applied.append(event)
            if identity not in parked_ids:
                batch.results[identity] = IngestResult(event.id, case_id, IngestStatus.APPLIED)
        if applied and state is not None:
            batch.writes.append(self._write(before, state, applied, entries, deliverer))
        elif doc is not None and doc.get("outbox"):
            batch.stale.append(doc)

    def _write(self, before: dict[str, Any] | None, state: dict[str, Any], applied: list[CaseEvent],
               entries: list[dict[str, Any]], deliverer: Deliverer) -> CaseWrite:
        """The document to write: the case without its task rows, staging everything the change implies."""
        case_id, version = state["_id"], state["version"]
        tasks = state.pop("tasks", [])
        previous_tasks = {t["id"]: t.get("stamps") for t in (before or {}).get("tasks", ())}
        effects = list(state.get("outbox") or ())
        for event, entry in zip(applied, entries, strict=True):
            journal = {**_journal_record(event), "time": event.time, "sealed": self._events.sealed(event.envelope)}
            # The history row is keyed like the journal record: another producer's event of the same id has its own.
            effects.append(event_effect(journal, {**entry, "_id": event.key, "caseId": case_id}))
            if (command := _COMMANDS.get(event.type)) is not None:
                request = command(event, state)
                effects.append(Message(id=request["id"], topic=COMMANDS, key=case_id, event=request).staged())
        visibility = _visibility(state)
        for task in tasks:
            if task.get("stamps") != previous_tasks.get(task["id"]):
                change = TaskChange(task=task, case_id=case_id, visibility=visibility, base_version=task.get("version"))
                effects.append(task_effect(change, version))
        if before is not None and before.get("tasks") and _visibility(before) != visibility:
            effects.append(visibility_effect(case_id, visibility, version))
        published = {**state, "tasks": tasks}
        event = state_event(StateChange(published, (before or {}).get("status"), tuple(entries)))
        effects.append(Message(id=event["id"], topic=UPDATES, key=case_id, event=event).staged())
        effects.append(audit_effect(self._audit_entry(before, published, applied, deliverer), case_id, version))
        state["outbox"] = effects
        state["stagedAt"] = datetime.now(timezone.utc)
        return CaseWrite(state, before["version"] if before else None)

    @staticmethod
    def _audit_entry(before: dict[str, Any] | None, after: dict[str, Any], applied: list[CaseEvent],
                     deliverer: Deliverer) -> dict[str, Any]:
        case_id = after["_id"]
        version = {"caseId": case_id, "field": "version", "old": before["version"] if before else None,
                   "new": after["version"]}
        sources = sorted({e.source for e in applied})
        return {
            "at": datetime.now(timezone.utc), "actor": deliverer.id,
            # Events from Kafka are the source system's word: it is the actor the auditor asks for.
            "actorName": deliverer.name or ", ".join(sources),
            "action": "WRITE", "operation": "applyEvents", "outcome": "ok",
            "eventIds": [e.id for e in applied], "caseIds": [case_id], "sources": sources,
            "customerIds": sorted({c for c in ((before or {}).get("customerId"), after.get("customerId")) if c}),
            "changes": [version, *(c for c in field_changes(case_id, before, after) if c["field"] != "version")],
        }
