"""Appointments with a case's customer: `scheduleAppointment` (CONTRACT §5 "Dashboard", issue 10).

Rules (who may call it is access/policy.py's APPOINTMENT_MAKERS row):

* Employees only (a system or panel token: FORBIDDEN); who books is the token's `sub` / `preferred_username`,
  never an argument.
* The case must be visible in the caller's row scope (else NOT_FOUND) and open (a closed case: CONFLICT).
* `at` carries its offset, lies in the future and at most MAX_AHEAD ahead (else BAD_USER_INPUT); it is kept to the
  millisecond, as the store keeps it. `channel` is where the meeting takes place, one of APPOINTMENT_CHANNELS
  (else BAD_USER_INPUT). `note` is optional, at most MAX_NOTE_LENGTH characters after trimming (blank = none);
  it is the employee's, shown in their calendar, and never sent to the customer.
* The row (stores/appointments.py) is one insert that also stages the case's APPOINTMENT_SCHEDULED history row
  (actor = the employee, channel of the call) and, when the customer has a phone, `notification.requested`
  {channel: SMS, to: the phone (E.164), template: "appointment", params: {caseId, appointmentId, at, channel}}
  on `case-commands`; both are relayed right after (consumers/staging.py `relay_records`), or by the relay loop if
  this process stops first, so a crash loses neither.
* The customer's phone: that of the case's participant whose id is the case's customer id, else of the first
  participant in a customer role (CUSTOMER_ROLES, the roles the process engines give the customer). Without one,
  the appointment is still booked and `Appointment.notified` is false: the employee sees that the customer must be
  told another way. `notified` true means the request was staged; delivery is the notification service's job.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from access.sensitive_text import protect_fields, text_aad
from auth.principal import Principal
from consumers.cloudevents import to_millisecond
from consumers.publication import APPOINTMENT_SCHEDULED, SOURCE, record_event
from consumers.staging import history_effect
from context import Context
from errors import BadInput, Conflict, NotFound
from resolvers.cases import get_case
from resolvers.employees import employee
from stores.appointments import VISIBILITY_FIELDS
from stores.outbox import COMMANDS, UPDATES, Message
from stores.protection import open_participant_field

TEMPLATE = "appointment"
# Where a meeting with a customer can take place: the customer-facing channels of access.policy.CHANNELS
# (a back-office desk and the Customer Panel are not places to meet).
APPOINTMENT_CHANNELS = ("BRANCH", "CALL_CENTER", "ONLINE", "MOBILE")
# The participant roles the process engines give a case's customer (demo/events.py), in order of preference.
CUSTOMER_ROLES = ("APPLICANT", "PRIMARY_BORROWER")
MAX_NOTE_LENGTH = 1_000
MAX_AHEAD = timedelta(days=366)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def valid_time(at: datetime, now: datetime) -> datetime:
    """`at` in UTC to the millisecond, if it has an offset and lies in (now, now + MAX_AHEAD]; else BadInput."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise BadInput("at: a time with its offset, such as 2026-12-01T10:00:00Z")
    moment = to_millisecond(at.astimezone(timezone.utc))
    if moment <= now:
        raise BadInput("at: must be in the future")
    if moment > now + MAX_AHEAD:
        raise BadInput(f"at: at most {MAX_AHEAD.days} days ahead")
    return moment


def valid_channel(channel: str) -> str:
    if channel not in APPOINTMENT_CHANNELS:
        raise BadInput(f"channel: one of {', '.join(APPOINTMENT_CHANNELS)}")
    return channel


def valid_note(note: str | None) -> str | None:
    trimmed = (note or "").strip()
    if len(trimmed) > MAX_NOTE_LENGTH:
        raise BadInput(f"note: at most {MAX_NOTE_LENGTH} characters")
    return trimmed or None


def customer_participant(case: dict[str, Any]) -> dict[str, Any] | None:
    """The participant who is the case's customer: by id, else the first in a customer role."""
    participants = case.get("participants") or []
    by_id = next((p for p in participants if p.get("id") == case.get("customerId")), None)
    if by_id is not None:
        return by_id
    for role in CUSTOMER_ROLES:
        found = next((p for p in participants if p.get("role") == role), None)
        if found is not None:
            return found
    return None


def _customer_phone(context: Context, case: dict[str, Any]) -> str | None:
    participant = customer_participant(case)
    if participant is None:
        return None
    return open_participant_field(case, participant["id"], "phone", context.services.cipher)


async def schedule_appointment(context: Context, case_id: str, at: datetime, channel: str,
                               note: str | None) -> dict[str, Any]:
    principal = employee(context, "schedule appointments")
    now = to_millisecond(datetime.now(timezone.utc))
    moment, place, text = valid_time(at, now), valid_channel(channel), valid_note(note)
    case = await get_case(context, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    if case.get("closedAt") is not None:
        raise Conflict(f"case {case_id} is closed")
    phone = _customer_phone(context, case)
    appointment_id = str(uuid.uuid4())
    row = {
        "_id": appointment_id, "caseId": case_id, **{name: case.get(name) for name in VISIBILITY_FIELDS},
        "employeeId": principal.subject, "employee": principal.username, "at": moment, "channel": place,
        "note": text, "createdAt": now, "bookedVia": context.channel, "notified": phone is not None,
    }
    # A PESEL or phone in the note is stored as a placeholder, the original sealed beside it (and so in the audit).
    protect_fields(row, ("note",), context.services.cipher, appointment_aad(appointment_id))
    # Published too: every instance evicts cached answers that showed the case (its history gained an entry).
    scheduled = record_event(APPOINTMENT_SCHEDULED, str(uuid.uuid4()), row, now,
                             {"appointmentId": appointment_id, "at": _iso(moment), "by": principal.username})
    staged = [history_effect(_history_entry(context, principal, row)),
              Message(id=scheduled["id"], topic=UPDATES, key=case_id, event=scheduled).staged()]
    if phone is not None:
        staged.append(_notification(row, phone, now).staged())
    written = await context.services.appointments.add(row, staged, now)
    _audited(context, row)
    # The fast path; if this process stops first, the relay loop sends what the row staged.
    await context.services.staging.relay_records(context.services.appointments, [written])
    return written


def appointment_aad(appointment_id: str) -> str:
    """What an appointment note's sealed originals are bound to."""
    return text_aad("appointments", appointment_id)


def _history_entry(context: Context, principal: Principal, row: dict[str, Any]) -> dict[str, Any]:
    entry_id = f"appointment:{row['_id']}"
    return {
        "_id": entry_id, "id": entry_id, "caseId": row["caseId"], "kind": "APPOINTMENT_SCHEDULED",
        # Who and when, not the note: the history is shown wherever the case is (the customer's timeline too).
        "summary": f"Appointment scheduled for {_iso(row['at'])} ({row['channel']}) by {principal.username}",
        "actor": {"type": "USER", "id": principal.subject, "name": principal.username},
        "channel": context.channel, "at": row["createdAt"],
        "details": {"appointmentId": row["_id"], "at": _iso(row["at"]), "channel": row["channel"],
                    "notified": row["notified"]},
    }


def _notification(row: dict[str, Any], phone: str, now: datetime) -> Message:
    event_id = str(uuid.uuid4())
    event = {
        "specversion": "1.0", "id": event_id, "source": SOURCE, "type": "notification.requested",
        "subject": row["caseId"], "time": _iso(now), "datacontenttype": "application/json",
        "data": {"channel": "SMS", "to": phone, "template": TEMPLATE, "params": {
            "caseId": row["caseId"], "appointmentId": row["_id"], "at": _iso(row["at"]), "channel": row["channel"]}},
    }
    # It carries a phone number: sealed wherever it is stored (the row's staged copy, the outbox).
    return Message(id=event_id, topic=COMMANDS, key=row["caseId"], event=event, sensitive=True)


def _audited(context: Context, row: dict[str, Any]) -> None:
    context.audit.case_ids.add(row["caseId"])
    if row.get("customerId"):
        context.audit.customer_ids.add(row["customerId"])
    context.audit.changes.extend(
        {"caseId": row["caseId"], "field": f"appointments[{row['_id']}].{name}", "old": None, "new": row[name]}
        for name in ("at", "channel", "note", "notified") if row[name] is not None)
