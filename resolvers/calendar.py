"""The employee's calendar: `calendar(from, to)` (CONTRACT §5 "Dashboard", issue 10).

The caller's entries with `from` <= time < `to`, soonest first (then by kind and id, so the order is total):

* APPOINTMENT: the appointments they booked (stores/appointments.py), whose case they may still see;
* TASK_DUE: the due dates of the open tasks they hold (assignee = their `preferred_username`, OPEN_STATES);
* CASE_DEADLINE: the deadlines (`dueAt`) of the open cases they hold, a case being held by whoever holds an open
  task in it.

Who "I" am comes from the token only (employees; a system or panel token: FORBIDDEN). Everything goes through the
caller's row scope. `from` and `to` carry their offsets, `to` is after `from`, and the range spans at most
MAX_RANGE (else BAD_USER_INPUT). Three store reads whatever the number of entries: the appointments, the held tasks
(one aggregate), and the cases (deadlines and the appointments' titles in one find). The read is audited with the
cases and customers it showed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from context import Context
from errors import BadInput
from resolvers.employees import employee

MAX_RANGE = timedelta(days=92)
APPOINTMENT, TASK_DUE, CASE_DEADLINE = "APPOINTMENT", "TASK_DUE", "CASE_DEADLINE"
_KIND_ORDER = {APPOINTMENT: 0, TASK_DUE: 1, CASE_DEADLINE: 2}


@dataclass(frozen=True)
class Entry:
    """One calendar entry; ids name what it is about (the case always, the task or appointment when one)."""

    kind: str
    at: datetime
    title: str
    case_id: str
    customer_id: str | None = None
    task_id: str | None = None
    appointment_id: str | None = None
    channel: str | None = None
    note: str | None = None

    @property
    def order(self) -> tuple[datetime, int, str]:
        return self.at, _KIND_ORDER[self.kind], self.appointment_id or self.task_id or self.case_id


def valid_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    for name, moment in (("from", start), ("to", end)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise BadInput(f"{name}: a time with its offset, such as 2026-12-01T00:00:00Z")
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if end <= start:
        raise BadInput("to: must be after from")
    if end - start > MAX_RANGE:
        raise BadInput(f"the range from..to spans at most {MAX_RANGE.days} days")
    return start, end


async def calendar(context: Context, start: datetime, end: datetime) -> list[Entry]:
    principal = employee(context, "read a calendar")
    start, end = valid_range(start, end)
    scope, services = context.scope, context.services
    appointments = await services.appointments.of_employee(principal.subject, start, end, scope=scope)
    held = await services.calendar.held_tasks(principal.username, start, end, scope=scope)
    cases = await services.calendar.cases(held.case_ids, start, end, [a["caseId"] for a in appointments],
                                          scope=scope)
    entries = [
        Entry(kind=APPOINTMENT, at=a["at"], title=cases[a["caseId"]]["title"], case_id=a["caseId"],
              customer_id=cases[a["caseId"]].get("customerId"), appointment_id=a["_id"], channel=a["channel"],
              note=a.get("note"))
        for a in appointments if a["caseId"] in cases  # its case moved out of the caller's sight since
    ]
    entries += [Entry(kind=TASK_DUE, at=t["dueAt"], title=t["name"], case_id=t["caseId"],
                      customer_id=t.get("customerId"), task_id=t["id"]) for t in held.due]
    held_cases = set(held.case_ids)
    entries += [Entry(kind=CASE_DEADLINE, at=c["dueAt"], title=c["title"], case_id=c["_id"],
                      customer_id=c.get("customerId"))
                for c in cases.values() if c["_id"] in held_cases and _is_deadline(c, start, end)]
    entries.sort(key=lambda e: e.order)
    for entry in entries:
        context.audit.case_ids.add(entry.case_id)
        if entry.customer_id:
            context.audit.customer_ids.add(entry.customer_id)
    return entries


def _is_deadline(case: dict[str, Any], start: datetime, end: datetime) -> bool:
    """A case read for its title only (an appointment's) may not be a deadline in range."""
    due = case.get("dueAt")
    return case.get("closedAt") is None and due is not None and start <= due < end
