"""Claims on the dashboard: claim, unclaim, assign and complete a task, each one conditional update of its row.

Rules (CONTRACT §5 "Dashboard"), decided by the pure `decide_*` functions below on the row as read:

* claimTask: the task is offered to one of the caller's groups (a candidate group `g` matches a token group `g`
  or a Keycloak group path ending in `/g`), else FORBIDDEN; it is open and held by nobody, else CONFLICT with
  `extensions.assignee` (the holder's username) and `extensions.state`. A claim of an open task the caller
  already holds returns it unchanged and sends nothing (a retried request, or the engine assigned it to them),
  whatever their groups.
* unclaimTask: by the holder, or by a team manager (`TASK_MANAGER_ROLES`) for anyone's task; anyone else:
  FORBIDDEN. A task held by nobody: CONFLICT.
* assignTask (team managers, by the operation policy): we have no user directory, so the assignee is accepted as
  given (a non-empty username, like `Task.assignee`) and recorded; their membership of a candidate group is
  not checked here. Why: the repository knows only the groups in the *caller's* token; asking for "the assignee's
  groups" would mean trusting groups passed as arguments (STYLE.md's anti-pattern). The process engine, which
  owns the task and knows the identity provider's groups, receives `task.assignment_changed`; if it refuses the
  assignment, its `case.task_updated` carries a newer order stamp and replaces what we recorded. Assigning to
  the current holder returns the task unchanged and sends nothing.
* completeTask: by the holder only (anyone else, also on an unheld task: FORBIDDEN). The row's state becomes
  COMPLETION_REQUESTED without a new order stamp, so the engine's `case.task_completed` overrides it when it
  arrives; `task.completion_requested` carries the input to the engine.
* panelCompleteAction (resolvers/panel_actions.py) completes a participant's own task the same way: the same
  state, command and history row, with the participant (actor CUSTOMER, channel PANEL) in place of the holder;
  another participant's task is FORBIDDEN, and a repeat while COMPLETION_REQUESTED returns the task unchanged.
* Every change needs the task open (`OPEN_STATES`), else CONFLICT; a task outside the caller's row scope, or no
  such task: NOT_FOUND. Only employees claim (a system or panel token: FORBIDDEN).

Every change is one `find_one_and_update` whose filter is the precondition the decision was made on; the same
update stages the change's history row, its command, and its `case.task_changed` on `case-updates` (ids drawn
once, so a relay repeated after a crash sends the same CloudEvents). `case.task_changed` is how every instance
hears of the claim: its response cache forgets the case, `myNotifications` tells the people concerned. A lost race reads the row again and decides again, so the loser hears why (the winner's name).
Nothing touches the case document: a claim neither bumps nor races the case's version. `task.assignment_changed`
names people by username (`assignee`, `by`), as the engine's task does.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from access.policy import TASK_MANAGER_ROLES
from auth.principal import Principal, PrincipalKind
from consumers.publication import SOURCE, TASK_CHANGED, public_task, record_event
from consumers.staging import history_effect
from context import Context
from errors import BadInput, Conflict, Forbidden, NotFound, Unauthenticated
from stores.case_scope import CaseScope
from stores.outbox import COMMANDS, UPDATES, Message
from stores.task_criteria import matching_groups
from stores.tasks import OPEN_STATES

COMPLETION_REQUESTED = "COMPLETION_REQUESTED"
MAX_ASSIGNEE_LENGTH = 200
# Lost races a change re-decides before giving up with CONFLICT (each loser normally hears why at once).
MAX_ATTEMPTS = 3
_OPEN = {"$in": list(OPEN_STATES)}


@dataclass(frozen=True)
class Decision:
    """What a change sets on the row, on which precondition, and what it tells the case's history and the engine."""

    kind: str
    summary: str
    precondition: dict[str, Any]
    values: dict[str, Any]
    command: str
    data: dict[str, Any] = field(default_factory=dict)
    # Who the history row names; None: the calling employee.
    actor: dict[str, Any] | None = None


def is_offered(candidate_groups: Iterable[str], token_groups: Iterable[str]) -> bool:
    return not set(candidate_groups).isdisjoint(matching_groups(token_groups))


def _conflict(message: str, row: dict[str, Any]) -> Conflict:
    return Conflict(message, extensions={"assignee": row.get("assignee"), "state": row.get("state")})


def _require_open(row: dict[str, Any]) -> None:
    if row.get("state") not in OPEN_STATES:
        raise _conflict(f"task {row['id']} is {row.get('state')}, not open", row)


def _assignment(kind: str, summary: str, row: dict[str, Any], assignee: str | None, by: Principal,
                **precondition: Any) -> Decision:
    return Decision(kind=kind, summary=summary,
                    precondition={"assignee": row.get("assignee"), "state": _OPEN, **precondition},
                    values={"assignee": assignee}, command="task.assignment_changed",
                    data={"assignee": assignee, "by": by.username})


def decide_claim(principal: Principal, row: dict[str, Any]) -> Decision | None:
    holder = row.get("assignee")
    if holder == principal.username and row.get("state") in OPEN_STATES:
        return None  # already theirs (a retried claim, or the engine assigned it to them directly)
    if not is_offered(row.get("candidateGroups") or (), principal.groups):
        raise Forbidden(f"task {row['id']} is not offered to your groups")
    _require_open(row)
    if holder is not None:
        raise _conflict(f"task {row['id']} is held by {holder}", row)
    # The groups stay in the filter: the engine changing the candidate groups meanwhile withdraws the offer.
    return _assignment("TASK_CLAIMED", f"Task claimed: {row['id']} by {principal.username}", row,
                       principal.username, principal, candidateGroups={"$in": list(matching_groups(principal.groups))})


def decide_unclaim(principal: Principal, row: dict[str, Any]) -> Decision:
    holder = row.get("assignee")
    if holder is not None and holder != principal.username and not principal.roles & TASK_MANAGER_ROLES:
        raise Forbidden(f"task {row['id']} is held by someone else; only they or a team manager may release it")
    _require_open(row)
    if holder is None:
        raise _conflict(f"task {row['id']} is held by nobody", row)
    return _assignment("TASK_UNCLAIMED", f"Task unclaimed: {row['id']} (was {holder})", row, None, principal)


def decide_assign(principal: Principal, row: dict[str, Any], assignee: str) -> Decision | None:
    _require_open(row)
    if row.get("assignee") == assignee:
        return None
    return _assignment("TASK_ASSIGNED", f"Task assigned: {row['id']} to {assignee}", row, assignee, principal)


def decide_complete(principal: Principal, row: dict[str, Any], channel: str | None, input: Any) -> Decision:
    if row.get("assignee") != principal.username:
        raise Forbidden(f"only the holder of task {row['id']} may complete it")
    _require_open(row)
    return Decision(kind="TASK_COMPLETION_REQUESTED", summary=f"Task completion requested: {row['id']}",
                    precondition={"assignee": principal.username, "state": _OPEN},
                    values={"state": COMPLETION_REQUESTED}, command="task.completion_requested",
                    data={"actor": {"type": "USER", "id": principal.subject}, "channel": channel, "input": input})


def decide_participant_complete(principal: Principal, row: dict[str, Any], input: Any) -> Decision | None:
    """A panel participant completes their own action (a task with their participantId); anyone else's: FORBIDDEN.
    A repeat while the engine has not answered returns the task and sends nothing."""
    if row.get("participantId") != principal.participant_id:
        raise Forbidden(f"task {row['id']} is not yours to complete")
    if row.get("state") == COMPLETION_REQUESTED:
        return None
    _require_open(row)
    customer = {"type": "CUSTOMER", "id": principal.participant_id}
    return Decision(kind="TASK_COMPLETION_REQUESTED",
                    summary=f"Action completed in the Customer Panel: {row.get('name') or row['id']}",
                    precondition={"participantId": principal.participant_id, "state": _OPEN},
                    values={"state": COMPLETION_REQUESTED}, command="task.completion_requested",
                    data={"actor": customer, "channel": "PANEL", "input": input}, actor={**customer, "name": None})


async def claim_task(context: Context, task_id: str) -> dict[str, Any]:
    return await _change_task(context, task_id, decide_claim)


async def unclaim_task(context: Context, task_id: str) -> dict[str, Any]:
    return await _change_task(context, task_id, decide_unclaim)


async def assign_task(context: Context, task_id: str, assignee: str) -> dict[str, Any]:
    username = assignee.strip()
    if not username or len(username) > MAX_ASSIGNEE_LENGTH or not username.isprintable():
        raise BadInput(f"assignee: a username of 1 to {MAX_ASSIGNEE_LENGTH} printable characters")
    return await _change_task(context, task_id, lambda principal, row: decide_assign(principal, row, username))


async def complete_task(context: Context, task_id: str, input: Any) -> dict[str, Any]:
    return await _change_task(
        context, task_id, lambda principal, row: decide_complete(principal, row, context.channel, input))


async def complete_participant_task(context: Context, principal: Principal, task_id: str,
                                    input: Any) -> dict[str, Any]:
    """panelCompleteAction: the same row, precondition and command as an employee's completeTask, within the
    participant's own case (the caller has checked the session and the case)."""
    assert principal.case_id is not None
    return await _change_task(context, task_id, lambda who, row: decide_participant_complete(who, row, input),
                              principal=principal, scope=CaseScope(include_restricted=True,
                                                                   case_ids=frozenset({principal.case_id})))


def _employee(context: Context) -> Principal:
    principal = context.principal
    if principal is None:
        raise Unauthenticated("sign in to change tasks")
    if principal.kind is not PrincipalKind.EMPLOYEE:
        raise Forbidden("tasks are claimed and completed by employees")
    return principal


async def _change_task(context: Context, task_id: str,
                       decide: Callable[[Principal, dict[str, Any]], Decision | None], *,
                       principal: Principal | None = None, scope: CaseScope | None = None) -> dict[str, Any]:
    """Read the row in the caller's scope, decide, and write the decision on its precondition; after a lost race,
    again on the row as it is now. Returns the row as it stands after the change (or as found, for a no-op).
    `principal` and `scope`: a caller already checked elsewhere (a panel participant, in their own case)."""
    principal = principal or _employee(context)
    scope = scope or context.scope
    tasks = context.services.tasks
    for _attempt in range(MAX_ATTEMPTS):
        row = await tasks.visible(task_id, scope=scope)
        if row is None:
            raise NotFound(f"task {task_id} not found")
        context.audit.case_ids.add(row["caseId"])
        if row.get("customerId"):
            context.audit.customer_ids.add(row["customerId"])
        decision = decide(principal, row)
        if decision is None:
            return row
        written = await tasks.change(row["_id"], decision.precondition, decision.values,
                                     _staged(context, principal, row, decision), scope=scope)
        if written is not None:
            context.audit.changes.extend(_audit_changes(row, decision.values))
            # The fast path; if this process stops first, the relay loop sends what the row staged.
            await context.services.staging.relay_records(context.services.tasks, [written])
            return written
    raise _conflict(f"task {task_id} kept changing; read it again", row)


def _staged(context: Context, principal: Principal, row: dict[str, Any], decision: Decision) -> list[dict[str, Any]]:
    """The change's history row, command and published change, with ids drawn once: the staged copy is what gets
    relayed."""
    now = datetime.now(timezone.utc)
    case_id, task_id = row["caseId"], row["id"]
    entry_id, event_id, change_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    entry = {
        "_id": entry_id, "id": entry_id, "caseId": case_id, "kind": decision.kind, "summary": decision.summary,
        "actor": decision.actor or {"type": "USER", "id": principal.subject, "name": principal.username},
        "channel": context.channel, "at": now, "details": {"taskId": task_id, **decision.values},
    }
    event = {
        "specversion": "1.0", "id": event_id, "source": SOURCE, "type": decision.command, "subject": case_id,
        "time": now.isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
        "data": {"caseId": case_id, "taskId": task_id, **decision.data},
    }
    # The task as this decision leaves it (fields the precondition does not hold may move meanwhile; the engine's
    # next `case.state_changed` carries them).
    change = record_event(TASK_CHANGED, change_id, row, now, {
        "task": public_task({**row, **decision.values}), "change": decision.kind,
        "previousAssignee": row.get("assignee"), "by": principal.username})
    return [history_effect(entry), Message(id=event_id, topic=COMMANDS, key=case_id, event=event).staged(),
            Message(id=change_id, topic=UPDATES, key=case_id, event=change).staged()]


def _audit_changes(row: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"caseId": row["caseId"], "field": f"tasks[{row['id']}].{name}", "old": row.get(name), "new": new}
            for name, new in values.items() if row.get(name) != new]
