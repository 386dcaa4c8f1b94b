"""Verified retry of an incident: an employee asks the engine to retry, and the incident shows what really happened.

`retryIncident` does not change the case itself: it ingests the repository's own event
`case.incident_retry_requested` through the one pipeline, so the request is journaled, in the history, audited and
published like any change, and the pipeline stages the `incident.retry_requested` command with it (one write).

States (`Incident.retryState`):

* NONE — nobody asked for a retry.
* PENDING_RETRY — a retry was requested and the engine has not answered.
* RESOLVED — the engine reported `case.incident_resolved` after a retry was requested.
* FAILED_AGAIN — the engine raised the incident again (a newer `case.incident_raised` of the same id): the new
  message is shown and `attempts` grows by one.
* TIMED_OUT — PENDING_RETRY for longer than `INCIDENT_RETRY_TIMEOUT_SECONDS`: decided when read, against the clock,
  so it is exact at every read; a late answer from the engine still turns it into RESOLVED or FAILED_AGAIN.

`attempts` counts the failures the engine reported (the first raise is attempt 1); the command asks for attempt
`attempts + 1`. Its CloudEvent id is the idempotency key: drawn from (case, incident, how many retries were asked
before), so two clicks at the same moment are one event (the pipeline keeps the first, the other is a duplicate)
and one command, while a retry after a timeout is a new request.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from consumers.cloudevents import SOURCE, CaseEvent, parse_envelope

RETRY_REQUESTED = "case.incident_retry_requested"
COMMAND = "incident.retry_requested"

NONE = "NONE"
PENDING_RETRY = "PENDING_RETRY"
RESOLVED = "RESOLVED"
FAILED_AGAIN = "FAILED_AGAIN"
TIMED_OUT = "TIMED_OUT"
RETRY_STATES = (NONE, PENDING_RETRY, RESOLVED, FAILED_AGAIN, TIMED_OUT)

OPEN = "OPEN"
_IDS = uuid.UUID("0b7d1c52-5f0e-4d7b-9a43-7c1f2e9b6a10")


def retry_state(incident: dict[str, Any], now: datetime, timeout: timedelta) -> str:
    """The incident's retry state as of `now`: a pending retry older than `timeout` has timed out."""
    state = incident.get("retryState") or NONE
    if state == PENDING_RETRY and incident.get("lastRetryAt") is not None and now - incident["lastRetryAt"] > timeout:
        return TIMED_OUT
    return state


def find_incident(case: dict[str, Any], incident_id: str) -> dict[str, Any] | None:
    return next((i for i in case.get("incidents", ()) if i["id"] == incident_id), None)


def request_event(case: dict[str, Any], incident: dict[str, Any], requester_id: str, requester_name: str,
                  channel: str | None, now: datetime) -> CaseEvent:
    """The repository's event asking for a retry of `incident`, with an id two simultaneous clicks share."""
    case_id = case["_id"]
    retries = incident.get("retries", 0)
    envelope = {
        "specversion": "1.0", "id": str(uuid.uuid5(_IDS, f"{case_id}/{incident['id']}/{retries + 1}")),
        "source": SOURCE, "type": RETRY_REQUESTED, "subject": case_id,
        "time": now.isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
        "data": {"incident": {"id": incident["id"]}, "requestedBy": {"id": requester_id, "name": requester_name},
                 "channel": channel, "attempt": incident.get("attempts", 1) + 1},
    }
    return parse_envelope(envelope, internal=True)


def refusal(case: dict[str, Any], event: CaseEvent) -> str | None:
    """Why a retry request may not be applied to `case` as it stands (the incident may have moved meanwhile)."""
    if event.type != RETRY_REQUESTED:
        return None
    incident = find_incident(case, event.data.incident.id)
    if incident is None:
        return f"incident {event.data.incident.id} not found in case {case['_id']}"
    if incident.get("state") != OPEN:
        return f"incident {incident['id']} is {incident.get('state')}, not open"
    if not incident.get("retryable"):
        return f"incident {incident['id']} is not retryable: its cause needs fixing first"
    return None


def command(event: CaseEvent, case: dict[str, Any]) -> dict[str, Any]:
    """The `incident.retry_requested` CloudEvent for an applied retry request; its id is drawn from the request's."""
    data = event.data
    incident = find_incident(case, data.incident.id) or {}
    return {
        "specversion": "1.0", "id": str(uuid.uuid5(_IDS, f"command/{event.id}")), "source": SOURCE,
        "type": COMMAND, "subject": case["_id"], "time": event.envelope["time"],
        "datacontenttype": "application/json",
        "data": {"caseId": case["_id"], "incidentId": data.incident.id, "service": incident.get("service"),
                 "requestedBy": data.requestedBy.name, "attempt": data.attempt},
    }
