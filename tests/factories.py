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
