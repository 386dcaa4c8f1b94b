"""What a participant does in the Customer Panel, as the repository's own events: a consent answered, a document
uploaded (issue 9, CONTRACT §5).

Like `retryIncident` (consumers/incident_retry.py), a panel act does not write the case itself: the resolver ingests
`case.consent_answered` or `case.document_uploaded` through the one pipeline, so the act is journaled, in the
history (actor CUSTOMER, channel PANEL), audited and published like any change, and the pipeline stages its
command (`consent.recorded`, `document.uploaded`) in the same write. These types are internal
(`INTERNAL_DATA_MODELS`): a producer cannot send them, or a forged answer would reach the process engine.

Idempotency: an event's id is drawn from (case, item, how many answers or uploads the item had before, the answer
or the content's SHA-256), so the same act sent twice at once is one event (the pipeline keeps the first) and one
command; the resolvers also answer a repeat of what the item already shows without ingesting anything.

The state these events set (a consent's `state`, a document's `status`) takes no order stamp: the participant's
act and the engine's next word are cause and effect, and the repository's clock must not be ordered against a
producer's sequence. A newer event of the engine (a consent requested again, a document the bank rejected)
replaces it; an older one never does.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from access.panel_views import panel_case_type
from consumers.cloudevents import SOURCE, CaseEvent, parse_envelope
from consumers.stamps import Order, history_entry

CONSENT_ANSWERED = "case.consent_answered"
DOCUMENT_UPLOADED = "case.document_uploaded"
GRANTED, DECLINED, REQUESTED = "GRANTED", "DECLINED", "REQUESTED"
UPLOADED = "UPLOADED"
PANEL = "PANEL"
_IDS = uuid.UUID("5d0c9a7e-2b1f-4c36-8e55-91a4f0b7c3d2")


def find_item(case: dict[str, Any], list_name: str, item_id: str) -> dict[str, Any] | None:
    return next((i for i in case.get(list_name) or () if i.get("id") == item_id), None)


def _envelope(case_id: str, event_id: str, event_type: str, now: datetime, data: dict[str, Any]) -> CaseEvent:
    return parse_envelope({
        "specversion": "1.0", "id": event_id, "source": SOURCE, "type": event_type, "subject": case_id,
        "time": now.isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json", "data": data,
    }, internal=True)


def consent_event(case_id: str, consent: dict[str, Any], participant_id: str, granted: bool,
                  now: datetime) -> CaseEvent:
    """The participant's answer to `consent`, with an id two simultaneous identical answers share."""
    answers = consent.get("answers", 0)
    key = f"{case_id}/consent/{consent['id']}/{answers + 1}/{granted}"
    return _envelope(case_id, str(uuid.uuid5(_IDS, key)), CONSENT_ANSWERED, now, {
        "consent": {"id": consent["id"]}, "participantId": participant_id, "granted": granted, "channel": PANEL})


def upload_event(case_id: str, document: dict[str, Any], participant_id: str, content_type: str, size: int,
                 sha256: str, now: datetime) -> CaseEvent:
    """The participant's upload of `document`'s content, with an id two simultaneous identical uploads share."""
    uploads = document.get("uploads", 0)
    key = f"{case_id}/document/{document['id']}/{uploads + 1}/{sha256}"
    return _envelope(case_id, str(uuid.uuid5(_IDS, key)), DOCUMENT_UPLOADED, now, {
        "document": {"id": document["id"]}, "participantId": participant_id, "contentType": content_type,
        "size": size, "sha256": sha256, "channel": PANEL})


def refusal(case: dict[str, Any], event: CaseEvent) -> str | None:
    """Why a panel act may not be applied to `case` as it stands (checked again at write time: the engine may have
    moved the item meanwhile)."""
    if event.type == CONSENT_ANSWERED:
        list_name, item_id = "consents", event.data.consent.id
    elif event.type == DOCUMENT_UPLOADED:
        list_name, item_id = "documents", event.data.document.id
    else:
        return None
    item = find_item(case, list_name, item_id)
    if item is None:
        return f"{list_name[:-1]} {item_id} not found in case {case['_id']}"
    if item.get("participantId") != event.data.participantId:
        return f"{list_name[:-1]} {item_id} is not participant {event.data.participantId}'s"
    if event.type == DOCUMENT_UPLOADED and item.get("kind") not in panel_case_type(case.get("caseType")).uploadable_kinds:
        return f"documents of kind {item.get('kind')} are not uploaded in the Customer Panel"
    return None


def _customer(event: CaseEvent, kind: str, summary: str, details: dict[str, Any]) -> dict[str, Any]:
    entry = history_entry(event, kind, summary)
    entry["actor"] = {"type": "CUSTOMER", "id": event.data.participantId, "name": None}
    entry["channel"] = event.data.channel
    entry["details"] = details
    return entry


def consent_answered(case: dict[str, Any], event: CaseEvent, data: Any, order: Order) -> dict[str, Any]:
    consent = find_item(case, "consents", data.consent.id)
    if consent is not None:  # the pipeline refuses an unknown consent; a replay as of a moment may lack it
        consent["state"] = GRANTED if data.granted else DECLINED
        consent["answeredAt"] = event.time
        consent["answers"] = consent.get("answers", 0) + 1
    summary = "Consent given in the Customer Panel" if data.granted else "Consent declined in the Customer Panel"
    return _customer(event, "CONSENT_GIVEN" if data.granted else "CONSENT_DECLINED", summary,
                     {"consentId": data.consent.id, "granted": data.granted})


def document_uploaded(case: dict[str, Any], event: CaseEvent, data: Any, order: Order) -> dict[str, Any]:
    document = find_item(case, "documents", data.document.id) or {}
    if document:
        document.update({"status": UPLOADED, "contentType": data.contentType, "size": data.size,
                         "sha256": data.sha256, "uploadedAt": event.time, "uploads": document.get("uploads", 0) + 1})
    return _customer(event, "DOCUMENT_UPLOADED",
                     f"Document sent in the Customer Panel: {document.get('name') or data.document.id}",
                     {"documentId": data.document.id, "sha256": data.sha256, "size": data.size})


def _command(event: CaseEvent, case: dict[str, Any], command_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0", "id": str(uuid.uuid5(_IDS, f"command/{event.id}")), "source": SOURCE,
        "type": command_type, "subject": case["_id"], "time": event.envelope["time"],
        "datacontenttype": "application/json", "data": {"caseId": case["_id"], **data},
    }


def consent_command(event: CaseEvent, case: dict[str, Any]) -> dict[str, Any]:
    """`consent.recorded` for an applied answer; its id is drawn from the answer's."""
    data = event.data
    return _command(event, case, "consent.recorded", {
        "consentId": data.consent.id, "participantId": data.participantId, "granted": data.granted,
        "at": event.envelope["time"]})


def upload_command(event: CaseEvent, case: dict[str, Any]) -> dict[str, Any]:
    """`document.uploaded` for an applied upload (the document's name as the bank knows it: no client file name)."""
    data = event.data
    document = find_item(case, "documents", data.document.id) or {}
    return _command(event, case, "document.uploaded", {
        "documentId": data.document.id, "participantId": data.participantId, "name": document.get("name"),
        "contentType": data.contentType, "size": data.size, "sha256": data.sha256})


REDUCERS = {CONSENT_ANSWERED: consent_answered, DOCUMENT_UPLOADED: document_uploaded}
COMMANDS = {CONSENT_ANSWERED: consent_command, DOCUMENT_UPLOADED: upload_command}
