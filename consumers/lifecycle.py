"""Case lifecycle as data: what a closed case still accepts, and who may reopen it, per case type.

The pipeline asks `refusal(case, event)` before it applies an event; a reason means the event is REJECTED
(dead-lettered from Kafka, CONFLICT over HTTP) and nothing changes. Refusals depend on the events' order
(sequence or time, as for every state field), never on arrival: an event ordered before the closing is a late
event from when the case was open and is applied as usual. `docs/lifecycle.md` shows `LIFECYCLES`:
`python -m consumers.lifecycle --write` regenerates it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consumers import event_types as ev
from consumers.stamps import Order, history_entry, merge_stamped
from generated_sections import with_section
from consumers.cloudevents import CaseEvent

DEFAULT = "*"
# The prefix of every source: whoever may publish events at all (the topic's ACL, `system-publisher` over HTTP).
ANY_PUBLISHER = ""
# Kept with the stamps, as bookkeeping: [closing order, reopening order] of each closed period that was reopened.
CLOSED_PERIODS = "closedPeriods"

# What a closed case still takes in, for every case type alike: facts about the past, never new work.
AFTER_CLOSING = frozenset({
    # The record keeps growing after a decision: a signed agreement, a late certificate, a document's new status.
    "case.document_linked",
    # Contacts about a closed case belong in the customer's timeline (the customer calls to ask about it).
    "case.action_recorded",
    # An incident raised before closing is still resolved afterwards, or the case shows an open incident for ever.
    "case.incident_resolved",
    # The process engine cancels or completes the tasks still open when its process ends. Only tasks the case
    # already has: a new task on a closed case is new work, which needs case.reopened first.
    "case.task_updated",
    "case.task_completed",
})
# Events above that may only touch an item the case already has: (list in the case, field of the event data).
EXISTING_ITEMS = {
    "case.task_updated": ("tasks", "task"),
    "case.task_completed": ("tasks", "task"),
    "case.incident_resolved": ("incidents", "incident"),
}
# Retention moves a closed case on to ARCHIVED; any other status means working on it again: case.reopened.
ARCHIVING = frozenset({"ARCHIVED"})


@dataclass(frozen=True)
class Lifecycle:
    """What one case type allows once a case is closed."""

    accepts_after_closing: frozenset[str]
    # `case.status_changed` on a closed case may set only these statuses.
    statuses_after_closing: frozenset[str]
    # Source prefixes that may send case.reopened; empty: the case type is never reopened.
    reopened_by: tuple[str, ...] = ()
    # The stage a reopened case starts in when case.reopened names none; None keeps the stage it closed in.
    # A reopen always clears closedAt and outcome.
    reopen_stage: str | None = None

    @property
    def reopenable(self) -> bool:
        return bool(self.reopened_by)


LIFECYCLES: dict[str, Lifecycle] = {
    # A declined mortgage may be appealed and assessed again; only the process engine runs that.
    "MORTGAGE": Lifecycle(AFTER_CLOSING, ARCHIVING, reopened_by=("bpms/",), reopen_stage="ANALYSIS"),
    "CASH_LOAN": Lifecycle(AFTER_CLOSING, ARCHIVING, reopened_by=("bpms/",), reopen_stage="ANALYSIS"),
    # A card decision is quick and cheap: another try is a new application, hence a new case.
    "CREDIT_CARD": Lifecycle(AFTER_CLOSING, ARCHIVING),
    # Once the account exists, changes to it are servicing cases of their own.
    "ACCOUNT_OPENING": Lifecycle(AFTER_CLOSING, ARCHIVING),
    # A customer may appeal a complaint's answer: the complaints system or the process engine reopens it.
    "COMPLAINT": Lifecycle(AFTER_CLOSING, ARCHIVING, reopened_by=("crm/", "bpms/"), reopen_stage="APPEAL"),
    # The leasing partner resumes a case when the customer comes back to the same offer.
    "LEASING": Lifecycle(AFTER_CLOSING, ARCHIVING, reopened_by=("partner/leasing",)),
    # A case type nobody has configured yet: closing is final until someone decides otherwise.
    DEFAULT: Lifecycle(AFTER_CLOSING, ARCHIVING),
}


def lifecycle_of(case_type: str | None) -> Lifecycle:
    return LIFECYCLES.get(case_type or DEFAULT, LIFECYCLES[DEFAULT])


def _closing_before(case: dict[str, Any], order: Order) -> Order | None:
    """The order of the closing that `order` comes after while the case stayed closed; None if it was open then."""
    stamps = case.get("stamps", {})
    closing = stamps.get("closedAt")
    if case.get("closedAt") is not None and closing is not None and order > closing:
        return closing
    for closed, reopened_at in stamps.get(CLOSED_PERIODS, ()):
        # An event ordered between a closing and its reopening was sent to a closed case, whenever it arrives.
        if closed < order < reopened_at:
            return closed
    return None


def _reopen_refusal(case: dict[str, Any], event: CaseEvent, case_type: str) -> str | None:
    if case.get("closedAt") is None:
        return f"case {case['_id']} is not closed: case.reopened applies only to a closed case"
    if not event.order > case["stamps"]["closedAt"]:
        return f"case {case['_id']}: case.reopened is ordered before the case.closed it would undo"
    lifecycle = lifecycle_of(case_type)
    if not lifecycle.reopenable:
        return f"case closed: {case_type} cases cannot be reopened"
    if not event.source.startswith(lifecycle.reopened_by):
        allowed = ", ".join(f"{p}…" for p in lifecycle.reopened_by)
        return f"case closed: {case_type} cases are reopened only by {allowed}, not by {event.source!r}"
    return None


def _after_closing_refusal(case: dict[str, Any], event: CaseEvent, case_type: str) -> str | None:
    lifecycle = lifecycle_of(case_type)
    if event.type == "case.status_changed":
        status = event.data.status
        if status in lifecycle.statuses_after_closing:
            return None
        return (f"case closed: case.status_changed to {status} is not accepted after case.closed ({case_type}); "
                f"a closed case is worked on again only after case.reopened")
    if event.type not in lifecycle.accepts_after_closing:
        return f"case closed: {event.type} is not accepted after case.closed ({case_type})"
    if event.type in EXISTING_ITEMS:
        list_name, field = EXISTING_ITEMS[event.type]
        item_id = getattr(event.data, field).id
        if not any(item["id"] == item_id for item in case.get(list_name, ())):
            return (f"case closed: {event.type} of {field} {item_id}, which the case does not have, "
                    f"is not accepted after case.closed ({case_type})")
    return None


def refusal(case: dict[str, Any] | None, event: CaseEvent) -> str | None:
    """Why `event` may not be applied to `case` (the stored state before it), or None to apply it."""
    if case is None:
        return None  # case.created, or an event the pipeline parks until its case exists
    if event.type == "case.status_changed" and event.data.status == "CLOSED":
        return ("case.status_changed cannot set status CLOSED: a case is closed only by case.closed, "
                "which also sets closedAt and outcome")
    case_type = case.get("caseType") or DEFAULT
    if event.type == "case.reopened":
        return _reopen_refusal(case, event, case_type)
    closing = _closing_before(case, event.order)
    if event.type == "case.closed" and (case.get("closedAt") is not None or closing is not None):
        # Refused whatever its order: a late closing would add a second CASE_CLOSED to the history, with an
        # outcome the case does not show.
        return f"case closed: case.closed is not accepted after case.closed ({case_type})"
    if closing is None:
        return None
    return _after_closing_refusal(case, event, case_type)


def reopened(case: dict[str, Any], event: CaseEvent, data: ev.CaseReopened, order: Order) -> dict[str, Any]:
    """case.reopened: the case is open again, with the status (and stage) the event names."""
    stage = data.stage or lifecycle_of(case.get("caseType")).reopen_stage
    stamps = case.setdefault("stamps", {})
    closing = stamps.get("closedAt")
    if case.get("closedAt") is not None and closing is not None and order > closing:
        # Remembered so that a late event ordered inside this closed period is judged as if it had come in time.
        stamps.setdefault(CLOSED_PERIODS, []).append([closing, order])
    values: dict[str, Any] = {"status": data.status, "closedAt": None, "outcome": None}
    if stage is not None:
        values["stage"] = stage
    merge_stamped(case, values, order)
    summary = f"Case reopened: status {data.status}" + (f", stage {stage}" if stage else "")
    return history_entry(event, "CASE_REOPENED", summary + (f" ({data.reason})" if data.reason else ""))


# --- the table for docs/lifecycle.md --------------------------------------------------------------------------

BEGIN = "<!-- lifecycle:begin (generated by `python -m consumers.lifecycle`; a test keeps it in sync) -->"
END = "<!-- lifecycle:end -->"


def _reopened_by(lifecycle: Lifecycle) -> str:
    if not lifecycle.reopenable:
        return "never"
    if ANY_PUBLISHER in lifecycle.reopened_by:
        return "any publisher"
    return ", ".join(f"`{p}…`" for p in lifecycle.reopened_by)


def lifecycle_markdown() -> str:
    """`LIFECYCLES` as a Markdown table, one row per case type (`*` = any other type)."""
    lines = ["| case type | a closed case still accepts | status changes after closing | reopened by "
             "| a reopened case starts in stage |", "| --- | --- | --- | --- | --- |"]
    for case_type, rule in LIFECYCLES.items():
        accepts = ", ".join(
            f"`{t}`" + (f" (its own {EXISTING_ITEMS[t][1]}s only)" if t in EXISTING_ITEMS else "")
            for t in sorted(rule.accepts_after_closing))
        statuses = ", ".join(f"`{s}`" for s in sorted(rule.statuses_after_closing)) or "none"
        stage = f"`{rule.reopen_stage}`" if rule.reopen_stage else ("the stage it closed in" if rule.reopenable
                                                                   else "—")
        name = "any other type" if case_type == DEFAULT else f"`{case_type}`"
        lines.append(f"| {name} | {accepts} | {statuses} | {_reopened_by(rule)} | {stage} |")
    return "\n".join(lines)


def with_lifecycle(text: str) -> str:
    """`text` with the part between the lifecycle markers replaced by the current table."""
    return with_section(text, BEGIN, END, lifecycle_markdown())


if __name__ == "__main__":
    from pathlib import Path

    from generated_sections import main

    main(Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md", BEGIN, END, lifecycle_markdown)
