"""CloudEvents for the benchmarks: one richly detailed case, many small cases, and a Kafka-like stream."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from consumers.cloudevents import CaseEvent, parse_envelope

START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
ADVISOR = {"type": "USER", "id": "u-ewa", "name": "Ewa Zielińska"}
ENGINE = {"type": "SYSTEM", "id": "bpms", "name": "Process engine"}


class CaseScript:
    """One case's events with increasing `sequence` and `time`, as a process engine would send them."""

    def __init__(self, case_id: str, start: datetime = START) -> None:
        self.case_id, self.at, self.sequence = case_id, start, 0

    def event(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        self.sequence += 1
        self.at += timedelta(minutes=7)
        return {
            "specversion": "1.0", "id": f"{self.case_id}-e{self.sequence:04d}", "source": "bench/bpms",
            "type": event_type, "subject": self.case_id, "time": self.at.isoformat(),
            "sequence": str(self.sequence), "datacontenttype": "application/json", "data": data,
        }

    def created(self, customer_number: int) -> dict[str, Any]:
        customer_id = f"CUST-{customer_number:05d}"
        return self.event("case.created", {
            "caseType": "MORTGAGE", "title": f"Mortgage for {self.case_id}", "channel": "BRANCH",
            "branch": "KRK-01", "sourceSystem": "branch-frontend",
            "customer": {"id": customer_id, "name": f"Customer {customer_number}", "pesel": "85031207819",
                         "segment": "RETAIL"},
            "product": {"code": "MORT-FIX5", "name": "Mortgage, 5-year fixed rate", "amount": "350000.00",
                        "currency": "PLN"},
            "status": "NEW", "stage": "APPLICATION",
            "participants": [{"id": "P-1", "role": "PRIMARY_BORROWER", "name": f"Customer {customer_number}",
                              "phone": "+48601200300", "pesel": "85031207819"}],
        })

    def action(self, number: int) -> dict[str, Any]:
        """A `case.action_recorded`: one more history entry and nothing else."""
        return self.event("case.action_recorded", {"action": {
            "id": f"{self.case_id}-A{number}", "kind": "CALL", "summary": f"Call number {number} with the customer",
            "actor": ADVISOR, "channel": "CALL_CENTER", "at": self.at.isoformat()}})

    def follow_up(self, number: int) -> dict[str, Any]:
        """The `number`-th follow-up of a typical case: documents, tasks, incidents, actions, status."""
        n = number
        kinds = [
            lambda: self.event("case.document_linked", {"document": {
                "id": f"D-{n}", "name": f"Document {n}", "kind": "INCOME_STATEMENT", "status": "RECEIVED",
                "participantId": "P-1", "required": True}}),
            lambda: self.event("case.task_created", {"task": {
                "id": f"{self.case_id}-T{n}", "name": f"Verify document {n}", "formKey": "verify",
                "candidateGroups": ["back-office"], "state": "CREATED",
                "dueAt": (self.at + timedelta(days=2)).isoformat()}}),
            lambda: self.action(n),
            lambda: self.event("case.incident_raised", {"incident": {
                "id": f"I-{n}", "kind": "SERVICE_TIMEOUT", "message": "Credit bureau did not answer",
                "service": "bik-gateway", "retryable": True, "at": self.at.isoformat()}}),
            lambda: self.event("case.status_changed", {"status": "IN_PROGRESS", "stage": f"STAGE-{n}"}),
        ]
        return kinds[number % len(kinds)]()


def detailed_case(case_id: str) -> list[dict[str, Any]]:
    """A case with 2 participants, 5 documents, 3 tasks (one done), 1 incident and 25 history entries."""
    script = CaseScript(case_id)
    events = [script.created(1), script.event("case.participant_added", {"participant": {
        "id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak", "phone": "+48602300400",
        "pesel": "90072412344"}})]
    for number in range(1, 6):
        events.append(script.event("case.document_linked", {"document": {
            "id": f"D-{number}", "name": f"Income statement {number}", "kind": "INCOME_STATEMENT",
            "status": "RECEIVED" if number % 2 else "MISSING", "participantId": f"P-{1 + number % 2}",
            "required": number < 4}}))
    for number in range(1, 4):
        events.append(script.event("case.task_created", {"task": {
            "id": f"T-{number}", "name": f"Verify income documents {number}", "formKey": "verify-income",
            "candidateGroups": ["back-office", "advisors"], "state": "CREATED",
            "dueAt": "2026-11-06T16:00:00+00:00"}}))
    events.append(script.event("case.task_completed", {"task": {"id": "T-1"}}))
    events.append(script.event("case.incident_raised", {"incident": {
        "id": "I-1", "kind": "SERVICE_TIMEOUT", "message": "Credit bureau did not answer within 30 s",
        "service": "bik-gateway", "retryable": True, "at": "2026-11-02T11:00:00+00:00"}}))
    events.append(script.event("case.status_changed", {"status": "IN_PROGRESS", "stage": "ANALYSIS"}))
    for number in range(1, 13):
        events.append(script.event("case.action_recorded", {"action": {
            "id": f"A-{number}", "kind": "CALL", "summary": f"Call {number}: customer asked about the decision",
            "actor": ADVISOR, "channel": "CALL_CENTER", "at": script.at.isoformat()}}))
    return events


def many_cases(count: int, customers: int) -> list[dict[str, Any]]:
    """`count` cases spread over `customers` customers, each with a task and every third with an incident."""
    events = []
    for number in range(count):
        script = CaseScript(f"CASE-{number:06d}", START + timedelta(minutes=number))
        events += [script.created(number % customers), script.follow_up(1), script.follow_up(2)]
        if number % 3 == 0:
            events.append(script.follow_up(3))
    return events


def kafka_stream(batches: int, batch_size: int = 500, new_per_batch: int = 100) -> Iterator[list[dict[str, Any]]]:
    """Batches as the consumer sees them: new cases plus one follow-up each for as many older cases.

    The first batch creates `batch_size` cases; every later one creates `new_per_batch` and sends a
    follow-up to the next older cases round-robin, so each batch touches `batch_size` distinct cases and
    every event ends in exactly one written case document.
    """
    scripts: list[CaseScript] = []
    follow_ups: dict[str, int] = {}
    cursor = 0
    for batch_number in range(batches):
        creating = batch_size if batch_number == 0 else new_per_batch
        older = len(scripts)
        batch = []
        for _ in range(creating):
            script = CaseScript(f"CASE-{len(scripts):06d}", START + timedelta(minutes=len(scripts)))
            scripts.append(script)
            batch.append(script.created(len(scripts) % 97))
        for _ in range(batch_size - creating):
            script = scripts[cursor % older]
            cursor += 1
            follow_ups[script.case_id] = follow_ups.get(script.case_id, 0) + 1
            batch.append(script.follow_up(follow_ups[script.case_id]))
        yield batch


def parsed(envelopes: list[dict[str, Any]]) -> list[CaseEvent]:
    return [parse_envelope(envelope) for envelope in envelopes]
