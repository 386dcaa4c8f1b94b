"""Event factories: valid CloudEvents of CONTRACT §2 with sensible defaults, overridable per test."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from consumers.cloudevents import CaseEvent, parse_envelope

BASE_TIME = datetime(2026, 11, 21, 10, 0, tzinfo=timezone.utc)
_ids = itertools.count(1)


def case_created_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "caseType": "MORTGAGE", "title": "Mortgage for a flat", "channel": "BRANCH", "branch": "KRK-01",
        "sourceSystem": "branch-frontend",
        "customer": {"id": "CUST-1", "name": "Anna Kowalska", "pesel": "85031207819", "segment": "RETAIL"},
        "product": {"code": "MORT", "name": "Mortgage", "amount": "350000.00", "currency": "PLN"},
        "status": "NEW", "stage": "APPLICATION",
        "participants": [{"id": "P-1", "role": "PRIMARY_BORROWER", "name": "Anna Kowalska",
                          "phone": "+48601200300", "pesel": "85031207819"}],
    }
    data.update(overrides)
    return data


def envelope(event_type: str, case_id: str, data: dict[str, Any], *, event_id: str | None = None,
             sequence: int | None = None, time: datetime | None = None, source: str = "tests") -> dict[str, Any]:
    """A structured CloudEvent; `sequence` and `time` default to a fresh increasing pair."""
    number = next(_ids)
    result: dict[str, Any] = {
        "specversion": "1.0", "id": event_id or f"evt-{number}", "source": source, "type": event_type,
        "subject": case_id, "time": (time or BASE_TIME + timedelta(seconds=number)).isoformat(),
        "datacontenttype": "application/json", "data": data,
    }
    if sequence is not None:
        result["sequence"] = str(sequence)
    return result


def event(event_type: str, case_id: str, data: dict[str, Any], **kwargs: Any) -> CaseEvent:
    return parse_envelope(envelope(event_type, case_id, data, **kwargs))


def created(case_id: str = "CASE-1", **kwargs: Any) -> CaseEvent:
    data_overrides = kwargs.pop("data", {})
    return event("case.created", case_id, case_created_data(**data_overrides), **kwargs)


def status_changed(case_id: str, status: str, stage: str | None = None, **kwargs: Any) -> CaseEvent:
    data: dict[str, Any] = {"status": status}
    if stage is not None:
        data["stage"] = stage
    return event("case.status_changed", case_id, data, **kwargs)


def updated(case_id: str, data: dict[str, Any], **kwargs: Any) -> CaseEvent:
    return event("case.updated", case_id, data, **kwargs)


def closed(case_id: str, outcome: str = "APPROVED", at: datetime | None = None, **kwargs: Any) -> CaseEvent:
    moment = at or kwargs.get("time") or BASE_TIME
    return event("case.closed", case_id, {"outcome": outcome, "at": moment.isoformat()}, **kwargs)


def task_created(case_id: str, task_id: str, **overrides: Any) -> CaseEvent:
    kwargs = {k: overrides.pop(k) for k in ("event_id", "sequence", "time", "source") if k in overrides}
    task = {"id": task_id, "name": f"Task {task_id}", "candidateGroups": ["back-office"], "state": "CREATED"}
    task.update(overrides)
    return event("case.task_created", case_id, {"task": task}, **kwargs)


def incident_raised(case_id: str, incident_id: str, at: datetime = BASE_TIME, **kwargs: Any) -> CaseEvent:
    incident = {"id": incident_id, "kind": "SERVICE_TIMEOUT", "message": f"Incident {incident_id}",
                "service": "bik-gateway", "retryable": True, "at": at.isoformat()}
    return event("case.incident_raised", case_id, {"incident": incident}, **kwargs)


def incident_resolved(case_id: str, incident_id: str, **kwargs: Any) -> CaseEvent:
    return event("case.incident_resolved", case_id, {"incident": {"id": incident_id}}, **kwargs)


def action_recorded(case_id: str, action_id: str, at: datetime, summary: str = "Customer called",
                    kind: str = "CALL", channel: str = "CALL_CENTER", **kwargs: Any) -> CaseEvent:
    action = {"id": action_id, "kind": kind, "summary": summary, "channel": channel, "at": at.isoformat(),
              "actor": {"type": "USER", "id": "u-marek", "name": "Marek Lis"}}
    return event("case.action_recorded", case_id, {"action": action}, **kwargs)


# --- One case's story, for the ingest tests (idempotency, ordering, parking, concurrency, publication). ---

def task_data(task_id: str = "T-1", **overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"id": task_id, "name": "Verify income documents", "formKey": "verify-income",
                            "candidateGroups": ["back-office"], "state": "CREATED"}
    task.update(overrides)
    return {"task": task}


def incident_data(incident_id: str = "I-1", **overrides: Any) -> dict[str, Any]:
    incident: dict[str, Any] = {"id": incident_id, "kind": "SERVICE_TIMEOUT", "message": "Credit bureau timeout",
                                "service": "bik-gateway", "retryable": True, "at": BASE_TIME.isoformat()}
    incident.update(overrides)
    return {"incident": incident}


def action_data(action_id: str = "A-1", **overrides: Any) -> dict[str, Any]:
    action: dict[str, Any] = {"id": action_id, "kind": "CALL", "summary": "Customer called about the offer",
                              "actor": {"type": "USER", "id": "u-ewa", "name": "Ewa Zielińska"},
                              "channel": "CALL_CENTER", "at": BASE_TIME.isoformat()}
    action.update(overrides)
    return {"action": action}


class CaseStory:
    """One case's events as its producer emits them: ids `<case>-e<n>`, increasing `sequence` and `time`."""

    def __init__(self, case_id: str = "CASE-1", *, sequenced: bool = True, start: datetime = BASE_TIME) -> None:
        self.case_id = case_id
        self.sequenced = sequenced
        self.at = start
        self.envelopes: list[dict[str, Any]] = []

    def add(self, event_type: str, data: dict[str, Any], *, minutes: int = 10) -> CaseStory:
        number = len(self.envelopes) + 1
        self.at += timedelta(minutes=minutes)
        self.envelopes.append(envelope(
            event_type, self.case_id, data, event_id=f"{self.case_id}-e{number:03d}", time=self.at,
            sequence=number if self.sequenced else None, source="tests/bpms",
        ))
        return self

    @property
    def events(self) -> list[CaseEvent]:
        return [parse_envelope(e) for e in self.envelopes]


def full_story(case_id: str = "CASE-1", *, sequenced: bool = True) -> CaseStory:
    """A case touching every state field that ordering protects: tasks, incidents, items, status, closing."""
    at = BASE_TIME + timedelta(hours=1)
    return (
        CaseStory(case_id, sequenced=sequenced)
        .add("case.created", case_created_data())
        .add("case.participant_added", {"participant": {
            "id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak", "phone": "+48602300400",
            "pesel": "90072412344"}})
        .add("case.document_linked", {"document": {
            "id": "D-1", "name": "Income statement", "kind": "INCOME_STATEMENT", "status": "MISSING",
            "participantId": "P-2", "required": True}})
        .add("case.task_created", task_data("T-1"))
        .add("case.task_created", task_data("T-2", name="Order valuation", candidateGroups=["valuation"]))
        .add("case.incident_raised", incident_data("I-1", at=at.isoformat()))
        .add("case.task_updated", {"task": {"id": "T-1", "assignee": "u-olga", "state": "ASSIGNED"}})
        .add("case.status_changed", {"status": "IN_PROGRESS", "stage": "ANALYSIS"})
        .add("case.action_recorded", action_data("A-1", at=(at + timedelta(minutes=5)).isoformat()))
        .add("case.incident_resolved", {"incident": {"id": "I-1"}})
        .add("case.document_linked", {"document": {
            "id": "D-1", "name": "Income statement", "kind": "INCOME_STATEMENT", "status": "RECEIVED",
            "participantId": "P-2", "required": True}})
        .add("case.task_completed", {"task": {"id": "T-1"}})
        .add("case.offer_presented", {"offer": {
            "id": "O-1", "productCode": "MORT", "name": "Fixed 5y", "amount": "350000.00", "currency": "PLN",
            "rate": "6.85", "termMonths": 300, "status": "PRESENTED"}})
        .add("case.updated", {"title": "Mortgage for a flat in Kraków", "customer": {"segment": "AFFLUENT"}})
        .add("case.consent_requested", {"consent": {
            "id": "C-1", "participantId": "P-2", "kind": "CREDIT_BUREAU", "text": "I consent to BIK checks.",
            "required": True}})
        .add("case.status_changed", {"status": "DECISION", "stage": "DECISION"})
        .add("case.offer_updated", {"offer": {
            "id": "O-1", "productCode": "MORT", "name": "Fixed 5y", "amount": "340000.00", "currency": "PLN",
            "rate": "6.55", "termMonths": 300, "status": "ACCEPTED"}})
        .add("case.closed", {"outcome": "APPROVED", "at": (BASE_TIME + timedelta(hours=4)).isoformat()})
    )


PUBLISH_CASE_EVENT = """
mutation ($event: CaseEventInput!) { publishCaseEvent(event: $event) { eventId status } }
"""


def publish_input(raw: dict[str, Any]) -> dict[str, Any]:
    """A structured CloudEvent as the `CaseEventInput` of `publishCaseEvent`."""
    return {name: raw[name] for name in ("id", "source", "type", "subject", "time", "sequence", "data") if name in raw}


async def stored_case(services: Any, case_id: str) -> dict[str, Any]:
    """The case as the pipeline stored it: its document (an unscoped read, bookkeeping included) with its task
    rows, and its history rows oldest first under `history`."""
    doc = (await services.cases.get_for_update([case_id]))[case_id]
    rows, _ = await services.history.page([case_id], 1_000_000)
    doc["history"] = rows[::-1]
    # The ids of the events the journal holds as applied to it, in time order.
    journaled = await services.events.applied_until(case_id, datetime.max.replace(tzinfo=timezone.utc))
    doc["eventIds"] = [envelope["id"] for envelope in journaled]
    return doc


# --- tokens -------------------------------------------------------------------------------------------------
# The default caller of the API tests: reads every case (restricted ones too) and may publish events.
OPERATOR_ROLES = ("case-reader", "team-manager", "system-publisher")


def token(*, roles: tuple[str, ...] = OPERATOR_ROLES, branch: str | None = None, channel: str | None = None,
          username: str = "test.operator", system: bool = False, groups: tuple[str, ...] = ()) -> str:
    """A development token (HS256, dev settings) for a caller with exactly these claims."""
    from auth.dev_tokens import Persona, mint_dev_token
    from settings import Settings

    persona = Persona(name=username, description="test caller", username=username, roles=roles, groups=groups,
                      channel=channel, branch=branch, system=system)
    return mint_dev_token(Settings(), persona)


def bearer(**claims: Any) -> dict[str, str]:
    """`Authorization` header for a caller built by `token(...)`."""
    return {"Authorization": f"Bearer {token(**claims)}"}


def token_subject(headers: dict[str, str]) -> str:
    """The `sub` claim of a bearer token, as its issuer wrote it (unverified: the test made the token)."""
    import base64

    import orjson

    claims = headers["Authorization"].removeprefix("Bearer ").split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"]
