"""What one participant sees of their case: the `PanelCase` of the Customer Panel and of online / mobile banking.

Built from the stored case for one participant, never by hiding fields of the employee view: the participant's
own open actions (tasks with their `participantId`, without candidate groups or holder), their own consents,
their own documents and those shared with every participant (`participantId` null, without a link: downloads
are an authenticated route of their own), the progress of the others as yes/no facts without their data, and a
history of the entry kinds a customer may read, retold in customer words and told by "the bank" (never an
employee's name, an internal reason, a note, an incident or an offer's internals). Never a PESEL, a phone, or
anything of another participant's items.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from access.panel_views import OUTCOMES, PanelCaseType, available_until, panel_case_type, role_text
from context import Context
from errors import Forbidden
from resolvers.pagination import Page, decode_cursor, encode_cursor, page_size
from resolvers.panel_signin import panel_participant, unavailable_reason
from stores.case_scope import EVERYTHING

DONE_TASK_STATES = frozenset({"COMPLETED", "CANCELLED"})
DOCUMENT_STATES_TO_SEND = frozenset({"MISSING", "REQUESTED", "REJECTED"})
# A case's history rows read for one panel page at most (filtered and paged in memory).
MAX_HISTORY_ROWS = 5_000
BANK = {"type": "SYSTEM", "id": "bank", "name": "the bank"}
# Parsed from the summaries consumers/apply.py writes (its own fixed formats), to retell them in customer words.
_STATUS_SUMMARY = re.compile(r"Status changed to (?P<status>[A-Z0-9_]+)(?:, stage (?P<stage>[A-Z0-9_]+))?")
_CLOSED_SUMMARY = re.compile(r"Case closed: (?P<outcome>[A-Z_]+)")


def participant_of(case: dict[str, Any], participant_id: str) -> dict[str, Any] | None:
    return next((p for p in case.get("participants") or () if p.get("id") == participant_id), None)


def check_available(case: dict[str, Any]) -> None:
    """FORBIDDEN, saying until when it was, once a closed case has left the panel (the case type decides)."""
    until = available_until(case)
    if until is not None and until <= datetime.now(timezone.utc):
        raise Forbidden(unavailable_reason(case, until))


def _own(items: list[dict[str, Any]], participant_id: str) -> list[dict[str, Any]]:
    return [item for item in items if item.get("participantId") == participant_id]


def _progress(case: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Whether another participant has finished their part: yes or no, never what their items are."""
    who = role_text(other.get("role") or "")
    consents = _own(case.get("consents") or [], other["id"])
    documents = [d for d in _own(case.get("documents") or [], other["id"]) if d.get("required", True)]
    tasks = _own(case.get("tasks") or [], other["id"])
    given = all(c.get("state") != "REQUESTED" for c in consents)
    sent = all(d.get("status") not in DOCUMENT_STATES_TO_SEND for d in documents)
    acted = all(t.get("state") in DONE_TASK_STATES for t in tasks)
    left = [part for part, done in (("consents to give", given), ("documents to send", sent),
                                    ("actions to complete", acted)) if not done]
    summary = (f"{who.capitalize()} has finished their part" if not left else
               f"{who.capitalize()} still has " + " and ".join([", ".join(left[:-1]), left[-1]] if len(left) > 1
                                                               else left))
    return {"role": other.get("role") or "", "roleText": who, "consentsGiven": given, "documentsComplete": sent,
            "actionsComplete": acted, "summary": summary}


def panel_view(case: dict[str, Any], participant: dict[str, Any]) -> dict[str, Any]:
    """The PanelCase of `participant` (a dict the schema wraps): only their part and what everyone may read."""
    rule = panel_case_type(case.get("caseType"))
    me = participant["id"]
    closed = case.get("closedAt") is not None
    tasks = [{**t, "assignee": None, "candidateGroups": []} for t in _own(case.get("tasks") or [], me)
             if t.get("state") not in DONE_TASK_STATES]
    documents = [{**d, "url": None} for d in case.get("documents") or () if d.get("participantId") in (me, None)]
    product = case.get("product") or {}
    return {
        "caseId": case["_id"], "title": case["title"], "caseType": case["caseType"],
        "product": product.get("name"), "status": case["status"],
        "statusText": rule.status_text(case["status"], case.get("outcome") if closed else None),
        "stage": case.get("stage"), "stageText": rule.stage_text(case.get("stage")),
        "nextSteps": rule.steps(case["status"], case.get("stage"), closed),
        "participant": {"id": me, "role": participant.get("role") or "", "name": participant.get("name") or ""},
        "actions": tasks, "consents": _own(case.get("consents") or [], me), "documents": documents,
        "others": [_progress(case, p) for p in case.get("participants") or () if p.get("id") != me],
        "faq": [{"question": q, "answer": a} for q, a in rule.faq],
        "availableUntil": rule.available_until(case.get("closedAt")),
        # For the history: which items are this participant's (ids only) and the words of the case type.
        "itemNames": {
            "tasks": {t["id"]: t.get("name") or "an action" for t in _own(case.get("tasks") or [], me)},
            "documents": {d["id"]: d.get("name") or "a document" for d in documents},
            "consents": {c["id"] for c in _own(case.get("consents") or [], me)},
        },
    }


def customer_entry(row: dict[str, Any], view: dict[str, Any]) -> dict[str, Any] | None:
    """A history row as the participant reads it, or None when it is not theirs to read."""
    rule = panel_case_type(view["caseType"])
    summary = _customer_summary(row, view, rule)
    if summary is None:
        return None
    own_act = (row.get("actor") or {}).get("type") == "CUSTOMER" and row["actor"].get("id") == view["participant"]["id"]
    actor = {"type": "CUSTOMER", "id": view["participant"]["id"], "name": "you"} if own_act else BANK
    return {"id": row["id"], "kind": row["kind"], "actor": actor, "channel": row.get("channel") if own_act else None,
            "at": row["at"], "summary": summary, "details": None}


def _customer_summary(row: dict[str, Any], view: dict[str, Any], rule: PanelCaseType) -> str | None:
    kind, details = row.get("kind"), row.get("details") or {}
    names = view["itemNames"]
    actor = row.get("actor") or {}
    if actor.get("type") == "CUSTOMER":
        # Written by the panel for a participant (part 2's consents, uploads, completed actions): theirs alone.
        return row.get("summary") if actor.get("id") == view["participant"]["id"] else None
    if kind == "CASE_CREATED":
        return "Your case was opened"
    if kind == "CASE_REOPENED":
        return "Your case was opened again"
    if kind == "STATUS_CHANGED":
        found = _STATUS_SUMMARY.match(row.get("summary") or "")
        if found is None:
            return "The bank updated your case"
        text = rule.status_text(found["status"], None)
        stage = rule.stage_text(found["stage"])
        return f"Status: {text}" + (f" – {stage}" if stage else "")
    if kind == "CASE_CLOSED":
        found = _CLOSED_SUMMARY.match(row.get("summary") or "")
        return "Case closed" + (f": {OUTCOMES.get(found['outcome'], 'closed')}" if found else "")
    if kind == "DOCUMENT_LINKED" and details.get("documentId") in names["documents"]:
        return f"Document: {names['documents'][details['documentId']]}"
    if kind == "TASK_CREATED" and details.get("taskId") in names["tasks"]:
        return f"New action for you: {names['tasks'][details['taskId']]}"
    if kind == "TASK_COMPLETED" and details.get("taskId") in names["tasks"]:
        return f"Action completed: {names['tasks'][details['taskId']]}"
    if kind == "CONSENT_REQUESTED" and details.get("consentId") in names["consents"]:
        return "The bank asked for your consent"
    return None


async def history_page(context: Context, view: dict[str, Any], first: int | None,
                       after: str | None) -> Page[dict[str, Any]]:
    """The customer-visible entries, newest first, paged like every history (cursors bound to the panel)."""
    size = page_size(first, context.settings.default_page_size, context.settings.max_page_size)
    keyset = decode_cursor(after, "panel") if after else None
    rows, _ = await context.services.history.page([view["caseId"]], MAX_HISTORY_ROWS)
    every = [e for e in (customer_entry(row, view) for row in rows) if e is not None]
    entries = every if keyset is None else [e for e in every if (e["at"], e["id"]) < keyset]
    shown = entries[:size]
    return Page(items=shown, cursors=[encode_cursor(e["at"], e["id"], "panel") for e in shown],
                has_next=len(entries) > size, total=len(every))


async def signed_in_case(context: Context) -> dict[str, Any]:
    """panelCase: the session's case for its participant; FORBIDDEN once the case has left the panel."""
    principal = await panel_participant(context)
    assert principal.case_id is not None and principal.participant_id is not None
    case = await context.services.cases.get(principal.case_id, scope=EVERYTHING)
    participant = participant_of(case, principal.participant_id) if case is not None else None
    if case is None or participant is None:
        raise Forbidden("this panel session's case or participant is no longer in the repository")
    check_available(case)
    context.audit.cases_returned([case])
    return panel_view(case, participant)
