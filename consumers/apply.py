"""The pure reducer: one validated event applied to one case document.

Every state field remembers the order (sequence or time, then event id) of the event that last set it,
so a late older event never overwrites newer state and any delivery order of a case's events ends in
the same document. Each event adds one history entry, which the reducer returns: the pipeline keeps entries as
rows of their own, and a case rebuilt in memory (`replay`) keeps them in a list, sorted by their time.
"""
from __future__ import annotations

from bisect import insort
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from consumers.cloudevents import CaseEvent, to_millisecond
from consumers import event_types as ev
from consumers import incident_retry as retry
from consumers import panel_acts
from consumers.lifecycle import reopened
from consumers.stamps import Order, history_entry, merge_stamped

ITEM_LISTS = ("participants", "documents", "tasks", "incidents", "consents", "offers")
# Optional fields that an explicit null in a partial update clears (unclaiming a task sends assignee null).
CLEARABLE = frozenset({"assignee", "dueAt", "participantId", "formKey", "branch"})


def _plain(value: Any) -> Any:
    """Pydantic values as store values: Decimals become strings so amounts keep every digit; times keep
    milliseconds, as MongoDB does."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return to_millisecond(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _without_nulls(values: dict[str, Any]) -> dict[str, Any]:
    """A partial update's values: null means "unchanged", except for fields that may be cleared."""
    return {k: _without_nulls(v) if isinstance(v, dict) else v
            for k, v in values.items() if v is not None or k in CLEARABLE}


def _dump(model: ev.Data, *, partial: bool = False) -> dict[str, Any]:
    values = _plain(model.model_dump(exclude_unset=partial))
    return _without_nulls(values) if partial else values


def _merge_item(case: dict[str, Any], list_name: str, values: dict[str, Any], order: Order) -> dict[str, Any]:
    items = case.setdefault(list_name, [])
    item = next((i for i in items if i["id"] == values["id"]), None)
    if item is None:
        item = {"id": values["id"], "stamps": {}}
        items.append(item)
    # A list keeps its items in the order of the earliest event naming each one (kept as the `id` stamp), not
    # in arrival order, so that any delivery order lists them alike.
    stamps = item.setdefault("stamps", {})
    if stamps.get("id") is None or order < stamps["id"]:
        stamps["id"] = order
        items.sort(key=lambda i: i.get("stamps", {}).get("id") or [])
    merge_stamped(item, {k: v for k, v in values.items() if k != "id"}, order)
    return item


def _created(case: dict[str, Any], event: CaseEvent, data: ev.CaseCreated, order: Order) -> dict[str, Any]:
    values = _dump(data)
    for participant in values.pop("participants"):
        _merge_item(case, "participants", participant, order)
    customer = values.pop("customer")
    case["customerId"] = customer["id"]
    merge_stamped(case.setdefault("customer", {}), customer, order)
    case["createdAt"] = event.time or datetime.now(timezone.utc)
    merge_stamped(case, values, order)
    return history_entry(event, "CASE_CREATED", f"Case opened: {data.title}")


def _updated(case: dict[str, Any], event: CaseEvent, data: ev.CaseUpdated, order: Order) -> dict[str, Any]:
    values = _dump(data, partial=True)
    customer = values.pop("customer", None)
    if customer:
        current = case.setdefault("customer", {})
        if customer.get("id") not in (None, current.get("id")) and order > current.get("stamps", {}).get("id", []):
            # Another person, not a correction: nothing of the previous customer (PESEL, index) may stay.
            current = case["customer"] = {}
        merge_stamped(current, customer, order)
        # The case moves to another customer's 360 when its customer id changes.
        case["customerId"] = case["customer"]["id"]
    merge_stamped(case, values, order)
    changed = sorted(data.model_fields_set)
    return history_entry(event, "CASE_UPDATED", "Updated: " + ", ".join(changed))


def _status_changed(case: dict[str, Any], event: CaseEvent, data: ev.StatusChanged, order: Order) -> dict[str, Any]:
    # The reason belongs to this change, not to the case: it goes into the history entry only.
    merge_stamped(case, {k: v for k, v in _dump(data, partial=True).items() if k != "reason"}, order)
    summary = f"Status changed to {data.status}" + (f", stage {data.stage}" if data.stage else "")
    entry = history_entry(event, "STATUS_CHANGED", summary + (f" ({data.reason})" if data.reason else ""))
    return entry


def _action_recorded(case: dict[str, Any], event: CaseEvent, data: ev.ActionRecorded, order: Order) -> dict[str, Any]:
    entry = _dump(data.action)
    entry["eventId"] = event.id
    return entry


def _item_event(list_name: str, field: str, kind: str, describe: Callable[[Any], str],
                defaults: dict[str, Any] | None = None, partial: bool = False,
                created_at: str | None = None) -> Callable[..., dict[str, Any]]:
    def apply(case: dict[str, Any], event: CaseEvent, data: ev.Data, order: Order) -> dict[str, Any]:
        item_model = getattr(data, field)
        values = {**(defaults or {}), **_dump(item_model, partial=partial)}
        if created_at is not None:
            # The engine does not say when an item began: the time of the event that created it does.
            values[created_at] = event.time or datetime.now(timezone.utc)
        _merge_item(case, list_name, values, order)
        entry = history_entry(event, kind, describe(item_model))
        # Which item the entry is about, so live consumers (notifications) need not parse the summary.
        entry["details"] = {f"{field}Id": values["id"]}
        return entry

    return apply


def _newer_state(item: dict[str, Any] | None, order: Order) -> bool:
    return item is None or order > (item.get("stamps", {}).get("state") or [])


def _incident_raised(case: dict[str, Any], event: CaseEvent, data: ev.IncidentRaised, order: Order) -> dict[str, Any]:
    """A raise of a known incident is the engine saying the cause is still there: one more failed attempt, and
    if a retry was pending (or timed out waiting), it failed."""
    known = retry.find_incident(case, data.incident.id)
    # Only a raise gives an incident its kind (a resolution seen first does not); cases stored before attempts
    # were counted have had one.
    raised_before = known is not None and "kind" in known
    again = raised_before and _newer_state(known, order)
    attempts = (known or {}).get("attempts") or (1 if raised_before else 0)
    item = _merge_item(case, "incidents", {"state": retry.OPEN, **_dump(data.incident)}, order)
    item["attempts"] = attempts + 1
    item.setdefault("retries", 0)
    item.setdefault("retryState", retry.NONE)
    if again and item["retryState"] == retry.PENDING_RETRY:
        item["retryState"] = retry.FAILED_AGAIN
    summary = (f"Incident raised again (attempt {item['attempts']}): {data.incident.message}" if again
               else f"Incident: {data.incident.message}")
    entry = history_entry(event, "INCIDENT_RAISED", summary)
    entry["details"] = {"incidentId": data.incident.id}
    return entry


def _incident_resolved(case: dict[str, Any], event: CaseEvent, data: ev.IncidentResolved,
                       order: Order) -> dict[str, Any]:
    newer = _newer_state(retry.find_incident(case, data.incident.id), order)
    item = _merge_item(case, "incidents", {"state": "RESOLVED", **_dump(data.incident, partial=True)}, order)
    if newer and item.get("retryState") not in (None, retry.NONE):
        # Only the engine's word makes a retry a success: this is that word.
        item["retryState"] = retry.RESOLVED
    entry = history_entry(event, "INCIDENT_RESOLVED", f"Incident resolved: {data.incident.id}")
    entry["details"] = {"incidentId": data.incident.id}
    return entry


def _retry_requested(case: dict[str, Any], event: CaseEvent, data: ev.IncidentRetryRequested,
                     order: Order) -> dict[str, Any]:
    # Retry bookkeeping follows the order of application, not order stamps: the request and the engine's answer
    # are cause and effect, and the repository's clock must not be ordered against a producer's sequence.
    item = retry.find_incident(case, data.incident.id)
    assert item is not None, "the pipeline refuses a retry of an unknown incident"
    item["retryState"] = retry.PENDING_RETRY
    item["lastRetryBy"] = data.requestedBy.name
    item["lastRetryAt"] = event.time
    item["retries"] = item.get("retries", 0) + 1
    entry = history_entry(
        event, "INCIDENT_RETRY_REQUESTED",
        f"Retry requested: {data.incident.id} (attempt {data.attempt}) by {data.requestedBy.name}")
    entry["actor"] = {"type": "USER", "id": data.requestedBy.id, "name": data.requestedBy.name}
    entry["channel"] = data.channel
    entry["details"] = {"incidentId": data.incident.id, "attempt": data.attempt}
    return entry


def _closed(case: dict[str, Any], event: CaseEvent, data: ev.CaseClosed, order: Order) -> dict[str, Any]:
    merge_stamped(case, {"status": "CLOSED", "outcome": data.outcome.value, "closedAt": data.at}, order)
    return history_entry(event, "CASE_CLOSED", f"Case closed: {data.outcome.value}", at=data.at)


REDUCERS: dict[str, Callable[..., dict[str, Any]]] = {
    "case.created": _created,
    "case.updated": _updated,
    "case.status_changed": _status_changed,
    "case.action_recorded": _action_recorded,
    "case.participant_added": _item_event(
        "participants", "participant", "PARTICIPANT_ADDED", lambda p: f"Participant added: {p.name} ({p.role})"),
    "case.document_linked": _item_event(
        "documents", "document", "DOCUMENT_LINKED", lambda d: f"Document linked: {d.name} ({d.status})"),
    "case.task_created": _item_event("tasks", "task", "TASK_CREATED", lambda t: f"Task created: {t.name}",
                                     created_at="createdAt"),
    "case.task_updated": _item_event(
        "tasks", "task", "TASK_UPDATED", lambda t: f"Task updated: {t.id}", partial=True),
    "case.task_completed": _item_event(
        "tasks", "task", "TASK_COMPLETED", lambda t: f"Task completed: {t.id}",
        defaults={"state": "COMPLETED"}, partial=True),
    "case.incident_raised": _incident_raised,
    "case.incident_resolved": _incident_resolved,
    retry.RETRY_REQUESTED: _retry_requested,
    "case.closed": _closed,
    "case.reopened": reopened,
    "case.consent_requested": _item_event(
        "consents", "consent", "CONSENT_REQUESTED", lambda c: f"Consent requested: {c.kind}",
        defaults={"state": "REQUESTED"}),
    "case.offer_presented": _item_event(
        "offers", "offer", "OFFER_PRESENTED", lambda o: f"Offer presented: {o.name}"),
    "case.offer_updated": _item_event(
        "offers", "offer", "OFFER_UPDATED", lambda o: f"Offer updated: {o.name} ({o.status})"),
    **panel_acts.REDUCERS,
}


def new_case(case_id: str) -> dict[str, Any]:
    return {"_id": case_id, "version": 0, "stamps": {},
            "closedAt": None, "outcome": None, "updatedAt": None}


def apply_event(case: dict[str, Any], event: CaseEvent) -> dict[str, Any]:
    """Apply `event` to `case` in place and return the history entry it adds (with its `eventId`); the caller has
    checked it is not a duplicate."""
    order = event.order
    entry = REDUCERS[event.type](case, event, event.data, order)
    entry.setdefault("details", None)
    entry["eventId"] = event.id
    case["version"] += 1
    moment = event.time or entry["at"]
    if case["updatedAt"] is None or moment > case["updatedAt"]:
        case["updatedAt"] = moment
    case["hasOpenIncident"] = any(i.get("state") == "OPEN" for i in case.get("incidents", ()))
    case["isOpen"] = case.get("closedAt") is None
    return entry


def replay(case_id: str, events: list[CaseEvent]) -> dict[str, Any] | None:
    """The case built from these events alone, in memory, its history as a list (oldest first); None if none
    of them created it. Events arriving before `case.created` wait for it, as in the pipeline."""
    creating = [e for e in events if e.type == "case.created"]
    if not creating:
        return None
    case = new_case(case_id)
    history: list[dict[str, Any]] = []
    for event in [creating[0], *(e for e in events if e is not creating[0] and e.type != "case.created")]:
        insort(history, apply_event(case, event), key=lambda e: (e["at"], e["id"]))
    case["history"] = history
    return case


# Kept in the store, never published: staging, write bookkeeping and the order stamps.
# `sealedText`: the originals of PESELs and phones redacted from free text (access/sensitive_text.py).
_UNPUBLISHED = frozenset({"_id", "stamps", "outbox", "writeId", "stagedAt", "replayable", "sealedText"})
_UNPUBLISHED_ITEM = frozenset({"stamps", "pesel", "peselIndex", "phone", "version", "outbox", "stagedAt", "_id",
                               "caseId", "caseType", "branch", "restricted", "customerId", "sealedText"})


def public_state(case: dict[str, Any]) -> dict[str, Any]:
    """The case as other systems may see it: no PESEL, no phone, no bookkeeping."""
    state = {k: v for k, v in case.items() if k not in _UNPUBLISHED}
    state["id"] = case["_id"]
    state["customer"] = {k: v for k, v in case.get("customer", {}).items()
                         if k not in ("stamps", "pesel", "peselIndex", "sealedText")}
    if isinstance(case.get("product"), dict):
        state["product"] = {k: v for k, v in case["product"].items() if k != "sealedText"}
    for name in ITEM_LISTS:
        state[name] = [
            {k: v for k, v in item.items() if k not in _UNPUBLISHED_ITEM}
            for item in case.get(name, ())
        ]
    return state
