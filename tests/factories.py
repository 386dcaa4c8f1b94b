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

