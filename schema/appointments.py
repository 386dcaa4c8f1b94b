"""Appointments and the employee's calendar: types, `scheduleAppointment` and `calendar`.

Rules in resolvers/appointments.py and resolvers/calendar.py.
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from access.sensitive_text import shown_text
from resolvers import appointments as appointment_rules
from resolvers import calendar as calendar_rules


@strawberry.type(description="A meeting an employee booked with a case's customer.")
class Appointment:
    id: strawberry.ID
    case_id: strawberry.ID
    customer_id: strawberry.ID | None
    at: datetime
    channel: str = strawberry.field(description="Where it takes place: BRANCH, CALL_CENTER, ONLINE or MOBILE.")
    employee: str = strawberry.field(description="Who booked it (their username).")
    created_at: datetime
    notified: bool = strawberry.field(description=(
        "Whether a `notification.requested` (template `appointment`) to the customer's phone was sent; false when "
        "the case has no phone for its customer, who must then be told another way."))

    stored: strawberry.Private[dict[str, Any]]

    @strawberry.field(description="The employee's note; never sent to the customer.")
    def note(self, info: Info) -> str | None:
        return shown_text(info.context, "Appointment.note", self.stored, ["note"], self.stored.get("note"),
                          lambda: appointment_rules.appointment_aad(str(self.id)))

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Appointment:
        return cls(id=doc["_id"], case_id=doc["caseId"], customer_id=doc.get("customerId"), at=doc["at"],
                   channel=doc["channel"], employee=doc["employee"], stored=doc,
                   created_at=doc["createdAt"], notified=doc["notified"])


@strawberry.enum
class CalendarEntryKind(Enum):
    APPOINTMENT = calendar_rules.APPOINTMENT
    TASK_DUE = calendar_rules.TASK_DUE
    CASE_DEADLINE = calendar_rules.CASE_DEADLINE


@strawberry.type(description="One entry of the caller's calendar: an appointment, a task's due date or a case's "
                             "deadline.")
class CalendarEntry:
    kind: CalendarEntryKind
    at: datetime
    title: str = strawberry.field(description="The case's title (the task's name for TASK_DUE).")
    case_id: strawberry.ID
    task_id: strawberry.ID | None
    appointment_id: strawberry.ID | None
    channel: str | None = strawberry.field(description="Where an appointment takes place.")
    note: str | None = strawberry.field(description="An appointment's note.")

    @classmethod
    def from_entry(cls, entry: calendar_rules.Entry) -> CalendarEntry:
        return cls(kind=CalendarEntryKind(entry.kind), at=entry.at, title=entry.title, case_id=entry.case_id,
                   task_id=entry.task_id, appointment_id=entry.appointment_id, channel=entry.channel,
                   note=entry.note)


@strawberry.type
class CalendarQueries:
    @strawberry.field(description=(
        "My calendar in [from, to) (at most 92 days), soonest first: my appointments, the due dates of the open "
        "tasks I hold and the deadlines of the open cases in which I hold one."))
    async def calendar(self, info: Info, from_: Annotated[datetime, strawberry.argument(name="from")],
                       to: datetime) -> list[CalendarEntry]:
        entries = await calendar_rules.calendar(info.context, from_, to)
        return [CalendarEntry.from_entry(e) for e in entries]


@strawberry.type
class AppointmentMutations:
    @strawberry.mutation(description=(
        "Book a meeting with the case's customer at `at` (future, at most 366 days ahead) through `channel` "
        "(BRANCH, CALL_CENTER, ONLINE, MOBILE); it enters my calendar and the customer is sent "
        "`notification.requested` (template `appointment`) when the case has their phone."))
    async def schedule_appointment(self, info: Info, case_id: strawberry.ID, at: datetime, channel: str,
                                   note: str | None = None) -> Appointment:
        return Appointment.from_doc(
            await appointment_rules.schedule_appointment(info.context, case_id, at, channel, note))
