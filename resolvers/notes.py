"""Notes on the customer card: add, edit and delete a note on a case or on a customer (CONTRACT §5 "Dashboard").

Rules:

* addNote names exactly one of a case and a customer (else BAD_USER_INPUT), which the caller must be able to see
  (else NOT_FOUND): a case through the caller's row scope, a customer through any case of theirs the caller may
  see (the customer 360's rule). The text is 1 to MAX_TEXT_LENGTH characters after trimming (BAD_USER_INPUT).
* editNote and deleteNote: only the note's author (the token's `sub`), anyone else FORBIDDEN and nothing changes.
  A note that is deleted, does not exist, or whose case or customer the caller cannot see: NOT_FOUND, checked
  before authorship so a refusal does not confirm that a note exists. An edit keeps the old text in `versions`.
* Only employees write notes (the operation policy's NOTE_WRITERS); identity comes from the token, never from
  arguments. Every write is audited: the request record names the case and customer, `changes` the old and new
  text (notes may hold personal data; the audit trail is access-controlled like the notes themselves).

A note on a case also adds a NOTE_ADDED row to the case's history (so the case's and the customer's timeline
show that a note was written, not what it says), appended right after the note in the same request. It is not a
staged effect as a claim's history row is: a note is its own record and not a case write, there is no command to
relay with it, and the row's `_id` is derived from the note's, so appending it again is a no-op. Should the process
stop between the two writes, the note exists without its history row, never the other way round.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from access.sensitive_text import SEALED_TEXT, original_text, protect_fields, protect_value, text_aad
from auth.principal import Principal
from consumers.publication import NOTE_CHANGED, record_event
from consumers.staging import history_effect
from context import Context
from errors import BadInput, Conflict, Forbidden, NotFound
from resolvers.employees import employee
from stores.outbox import UPDATES, Message

MAX_TEXT_LENGTH = 4_000
# Lost races an edit re-reads the note for before giving up with CONFLICT.
MAX_ATTEMPTS = 3


def _now() -> datetime:
    """The store keeps milliseconds: draw times at that precision, so what is returned is what is stored."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def note_aad(note_id: str) -> str:
    """What a note's sealed originals are bound to: its id (every version of its text shares it)."""
    return text_aad("notes", note_id)


def valid_text(text: str) -> str:
    trimmed = text.strip()
    if not 1 <= len(trimmed) <= MAX_TEXT_LENGTH:
        raise BadInput(f"text: 1 to {MAX_TEXT_LENGTH} characters")
    return trimmed



async def _subject_of(context: Context, case_id: str | None, customer_id: str | None) -> tuple[str | None, str]:
    """(case id, customer id) of what a note is about, if the caller may see it; else NOT_FOUND."""
    if case_id is not None:
        context.case_lookups.add(case_id)
        case = await context.loaders.case.load(case_id)
        if case is None:
            raise NotFound(f"case {case_id} not found")
        return case_id, case.get("customerId") or case["customer"]["id"]
    if customer_id is None or await context.loaders.customer.load(customer_id) is None:
        raise NotFound(f"customer {customer_id} not found")
    return None, customer_id


def _audit_subject(context: Context, row: dict[str, Any]) -> None:
    if row.get("caseId"):
        context.audit.case_ids.add(row["caseId"])
    context.audit.customer_ids.add(row["customerId"])


def _audit(context: Context, row: dict[str, Any], name: str, old: Any, new: Any) -> None:
    _audit_subject(context, row)
    context.audit.changes.append({"caseId": row.get("caseId"), "field": f"notes[{row['_id']}].{name}",
                                  "old": old, "new": new})


def _note_changed(row: dict[str, Any], change: str, by: Principal, at: datetime) -> dict[str, Any]:
    """`case.note_changed` for `case-updates` (no text: the note's words stay in the store), staged with the write,
    so every instance forgets cached answers that showed the note."""
    event = record_event(NOTE_CHANGED, str(uuid.uuid4()), row, at,
                         {"noteId": row["_id"], "change": change, "by": by.username})
    return Message(id=event["id"], topic=UPDATES, key=row.get("caseId") or row["customerId"], event=event).staged()


async def _relay(context: Context, written: dict[str, Any]) -> None:
    # The fast path; if this process stops first, the relay loop sends what the row staged.
    await context.services.staging.relay_records(context.services.notes, [written])


async def add_note(context: Context, case_id: str | None, customer_id: str | None, text: str) -> dict[str, Any]:
    principal = employee(context, "write notes")
    if (case_id is None) == (customer_id is None):
        raise BadInput("name exactly one of caseId and customerId")
    body = valid_text(text)
    case_id, customer_id = await _subject_of(context, case_id, customer_id)
    at = _now()
    note = {"_id": str(uuid.uuid4()), "caseId": case_id, "customerId": customer_id, "text": body,
            "author": principal.username, "authorId": principal.subject, "channel": context.channel, "at": at}
    # A PESEL or phone in the text is stored as a placeholder, the original sealed beside it (and so in the audit).
    protect_fields(note, ("text",), context.services.cipher, note_aad(note["_id"]))
    body = note["text"]
    staged = [_note_changed(note, "NOTE_ADDED", principal, at)]
    if case_id is not None:
        staged.append(history_effect({
            "_id": f"note:{note['_id']}", "id": f"note:{note['_id']}", "caseId": case_id, "kind": "NOTE_ADDED",
            "summary": f"Note added by {principal.username}",
            "actor": {"type": "USER", "id": principal.subject, "name": principal.username},
            "channel": context.channel, "at": at, "details": {"noteId": note["_id"]},
        }))
    written = await context.services.notes.add(note, staged, at)
    _audit(context, note, "text", None, body)
    await _relay(context, written)
    return written


async def _own_note(context: Context, principal: Principal, note_id: str) -> dict[str, Any]:
    """The live note, if its case or customer is visible to the caller (else NOT_FOUND) and they wrote it
    (else FORBIDDEN)."""
    row = await context.services.notes.get(note_id)
    if row is None:
        raise NotFound(f"note {note_id} not found")
    try:
        await _subject_of(context, row.get("caseId"), None if row.get("caseId") else row["customerId"])
    except NotFound:
        raise NotFound(f"note {note_id} not found") from None
    _audit_subject(context, row)  # a refused attempt on a note the caller sees is recorded against its case
    if row["authorId"] != principal.subject:
        raise Forbidden(f"only the author of note {note_id} may change it")
    return row


async def edit_note(context: Context, note_id: str, text: str) -> dict[str, Any]:
    principal = employee(context, "write notes")
    typed = valid_text(text)
    cipher = context.services.cipher
    for _attempt in range(MAX_ATTEMPTS):
        row = await _own_note(context, principal, note_id)
        if original_text(row, ["text"], row["text"], cipher, note_aad(note_id)) == typed:
            return row  # nothing to keep as a version
        # The new text is protected as an added one; the old keeps its sealed originals in `versions`.
        protected: dict[str, Any] = {}
        body = protect_value(protected, ["text"], typed, cipher, note_aad(note_id))
        at = _now()
        written = await context.services.notes.change_text(row, body, at, [_note_changed(row, "NOTE_EDITED",
                                                                                          principal, at)],
                                                           sealed_text=protected.get(SEALED_TEXT))
        if written is not None:
            _audit(context, row, "text", row["text"], body)
            await _relay(context, written)
            return written
    raise Conflict(f"note {note_id} kept changing; read it again")


async def delete_note(context: Context, note_id: str) -> bool:
    principal = employee(context, "write notes")
    for _attempt in range(MAX_ATTEMPTS):
        row = await _own_note(context, principal, note_id)
        at = _now()
        written = await context.services.notes.mark_deleted(row, at, principal.subject,
                                                            [_note_changed(row, "NOTE_DELETED", principal, at)])
        if written is not None:
            _audit(context, row, "deleted", False, True)
            await _relay(context, written)
            return True
    raise Conflict(f"note {note_id} kept changing; read it again")


async def case_notes(context: Context, case_id: str) -> list[dict[str, Any]]:
    """The case's notes, newest first (the case itself was read through the caller's scope)."""
    return await context.loaders.case_notes.load(case_id)


async def customer_notes(context: Context, customer_id: str) -> list[dict[str, Any]]:
    """The notes written on the customer, newest first (the customer was read through the caller's scope)."""
    return await context.loaders.customer_notes.load(customer_id)
