"""What a participant does in the Customer Panel: answer a consent, complete an action (issue 9, CONTRACT §5).

Every act starts with the session (`panel_participant`: a live panel session, else UNAUTHENTICATED) and its case
(`check_available`: FORBIDDEN once a closed case has left the panel; CONFLICT while it is closed but still shown,
as there is nothing left to act on). Only the participant's own item: another participant's consent, action or
document is FORBIDDEN, and nothing changes and nothing is sent; an id the case does not have is NOT_FOUND.

* panelGiveConsent ingests `case.consent_answered` through the pipeline (consumers/panel_acts.py), which stages
  `consent.recorded`. Answering what the consent already shows returns it and sends nothing; a different answer
  is a new one (a consent may be withdrawn, and given after a refusal) and is sent again.
* panelCompleteAction completes the participant's task the way an employee's completeTask does
  (resolvers/task_claims.py): one conditional update of the task row that stages the history row,
  `task.completion_requested` and `case.task_changed`. Why not a pipeline event like the two others: a task's
  state lives in its row, which claims change without touching the case document; a second way to complete a task
  would have to keep both in step (a claim and a completion racing on different documents). One way keeps the
  engine's `case.task_completed` overriding COMPLETION_REQUESTED for both, and one set of rules for both.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from auth.principal import Principal
from consumers import panel_acts
from consumers.cloudevents import CaseEvent
from consumers.pipeline import Deliverer, IngestStatus
from context import Context
from errors import Conflict, Forbidden, NotFound
from resolvers.panel_case import check_available
from resolvers.panel_signin import panel_participant
from resolvers.task_claims import complete_participant_task
from stores.case_scope import EVERYTHING


async def own_case(context: Context) -> tuple[Principal, dict[str, Any]]:
    """The session's participant and their case, open and still in the panel."""
    principal = await panel_participant(context)
    assert principal.case_id is not None
    case = await context.services.cases.get(principal.case_id, scope=EVERYTHING)
    if case is None:
        raise Forbidden("this panel session's case is no longer in the repository")
    check_available(case)
    context.audit.case_ids.add(case["_id"])
    if case.get("customerId"):
        context.audit.customer_ids.add(case["customerId"])
    if case.get("closedAt") is not None:
        raise Conflict(f"case {case['_id']} is closed: there is nothing left to do in it")
    return principal, case


def own_item(case: dict[str, Any], principal: Principal, list_name: str, item_id: str, what: str) -> dict[str, Any]:
    """The participant's own item of `list_name`; NOT_FOUND when the case has none, FORBIDDEN when it is someone
    else's (or shared with every participant)."""
    item = panel_acts.find_item(case, list_name, item_id)
    if item is None:
        raise NotFound(f"{what} {item_id} not found in your case")
    if item.get("participantId") != principal.participant_id:
        raise Forbidden(f"{what} {item_id} is not yours")
    return item


async def ingest_act(context: Context, principal: Principal, event: CaseEvent) -> dict[str, Any]:
    """Apply the participant's event through the pipeline and return the case as it is now."""
    [result] = await context.services.pipeline.ingest(
        [event], actor=Deliverer(principal.subject, principal.username))
    if result.status is IngestStatus.REJECTED:
        raise Conflict(f"case {event.case_id}: {result.reason}")
    context.audit.applied(event.id, [])
    case = await context.services.cases.get(event.case_id, scope=EVERYTHING)
    assert case is not None
    return case


async def give_consent(context: Context, consent_id: str, granted: bool) -> dict[str, Any]:
    """panelGiveConsent: the consent as it stands after the answer."""
    principal, case = await own_case(context)
    consent = own_item(case, principal, "consents", consent_id, "consent")
    state = panel_acts.GRANTED if granted else panel_acts.DECLINED
    if consent.get("state") == state:
        return consent  # answered so already: a repeated click sends nothing
    assert principal.participant_id is not None
    event = panel_acts.consent_event(case["_id"], consent, principal.participant_id, granted,
                                     datetime.now(timezone.utc))
    after = await ingest_act(context, principal, event)
    context.audit.changes.append({"caseId": case["_id"], "field": f"consents[{consent_id}].state",
                                  "old": consent.get("state"), "new": state})
    current = panel_acts.find_item(after, "consents", consent_id)
    assert current is not None
    return current


async def complete_action(context: Context, task_id: str, input: Any) -> dict[str, Any]:
    """panelCompleteAction: the task row after the completion was requested (or as it was, if it already was)."""
    principal, case = await own_case(context)
    task = panel_acts.find_item(case, "tasks", task_id)
    if task is None:
        raise NotFound(f"action {task_id} not found in your case")
    if task.get("participantId") != principal.participant_id:
        raise Forbidden(f"action {task_id} is not yours")
    return await complete_participant_task(context, principal, task_id, input)
