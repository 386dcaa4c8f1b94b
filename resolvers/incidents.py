"""`retryIncident`: an employee asks the engine to retry a failed step; rules and states in consumers/incident_retry.py.

The request is checked here on the case as read (NOT_FOUND outside the caller's scope, CONFLICT when the incident is
no longer open, BAD_USER_INPUT when it is not retryable) and again by the pipeline on the case as it is written, so
a resolution that arrives in between refuses the retry instead of sending a pointless command.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from consumers import incident_retry as retry
from consumers.pipeline import Deliverer, IngestStatus
from context import Context
from errors import BadInput, Conflict, NotFound
from resolvers.employees import employee


def retry_state(context: Context, incident: dict[str, Any]) -> str:
    return retry.retry_state(incident, datetime.now(timezone.utc),
                             timedelta(seconds=context.settings.incident_retry_timeout_seconds))


async def retry_incident(context: Context, incident_id: str) -> tuple[dict[str, Any], str]:
    """The incident (and its case id) after the retry was requested, or as it was if a retry is already pending."""
    principal = employee(context, "retry incidents")
    case = await _case_of(context, incident_id)
    incident = retry.find_incident(case, incident_id)
    assert incident is not None
    if incident.get("state") != retry.OPEN:
        raise Conflict(f"incident {incident_id} is {incident.get('state')}, not open: there is nothing to retry",
                       extensions={"state": incident.get("state")})
    if not incident.get("retryable"):
        raise BadInput(f"incident {incident_id} is not retryable: its cause must be fixed first")
    if retry_state(context, incident) == retry.PENDING_RETRY:
        return incident, case["_id"]  # a double click: the retry asked for is still on its way
    event = retry.request_event(case, incident, principal.subject, principal.username, context.channel,
                                datetime.now(timezone.utc))
    [result] = await context.services.pipeline.ingest(
        [event], actor=Deliverer(principal.subject, principal.username))
    if result.status is IngestStatus.REJECTED:
        raise Conflict(f"incident {incident_id}: {result.reason}")
    context.audit.applied(event.id, [])
    current = retry.find_incident(await _case_of(context, incident_id), incident_id)
    assert current is not None
    return current, case["_id"]


async def _case_of(context: Context, incident_id: str) -> dict[str, Any]:
    cases = await context.services.cases.with_incident(incident_id, scope=context.scope)
    if not cases:
        raise NotFound(f"incident {incident_id} not found")
    if len(cases) > 1:
        raise BadInput(f"incident id {incident_id} is used in more than one case; ask the engine's team to fix it")
    case = cases[0]
    context.audit.case_ids.add(case["_id"])
    if case.get("customerId"):
        context.audit.customer_ids.add(case["customerId"])
    return case
