"""Appointments: one row per meeting an employee booked with a case's customer, the employee's calendar entries.

A row is `_id`, `caseId`, `customerId`, the employee (`employeeId` = the token's `sub`, `employee` = its
`preferred_username`), `at`, `channel` (where the meeting takes place), `note`, `createdAt`, `bookedVia` (the
channel of the call that booked it), `notified` (whether a notification to the customer was staged), and the
visibility of its case (`caseType`, `branch`, `restricted`, `customerId`, copied when it was booked), so the
caller's row scope is a condition of the calendar query itself, as for task rows. The calendar also reads the
entries' cases through the scope (resolvers/calendar.py), so a case that moved out of sight since takes its
appointments with it.

Scheduling stages its effects in the insert that creates the row (`outbox`, `stagedAt`): the history row of the
case and the `notification.requested` command, relayed by consumers/staging.py `relay_records` like a claim's.
That command carries the customer's phone, so its staged copy is stored sealed (as the outbox keeps it) and opened
only when relayed: no phone is ever at rest in clear here. `revision` counts writes, so clearing what was relayed
is conditional on nobody having written since.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from stores.case_scope import CaseScope, within_scope
from stores.database import Database
from stores.protection import FieldCipher, open_envelope, seal_envelope
from stores.staged_records import STAGED_INDEX, StagedRecords

COLLECTION = "appointments"
VISIBILITY_FIELDS = ("caseType", "branch", "restricted", "customerId")
_READ_PROJECTION = {"outbox": 0, "stagedAt": 0}

INDEXES = [
    # The calendar's question: my appointments in a time range.
    IndexModel([("employeeId", ASCENDING), ("at", ASCENDING)], name="employee_at"),
    IndexModel([("caseId", ASCENDING), ("at", ASCENDING)], name="case_at"),
    STAGED_INDEX,
]


class AppointmentStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self._appointments = db.collection(COLLECTION)
        self._staged = StagedRecords(self._appointments, "revision")
        self._cipher = cipher

    async def ensure_indexes(self) -> None:
        await self._appointments.create_indexes(INDEXES)

    async def add(self, row: dict[str, Any], staged: Sequence[dict[str, Any]], staged_at: datetime) -> dict[str, Any]:
        """Insert `row` (with its `_id`) with `staged` effects in the same write; the row as written, effects in
        clear (the relay's fast path takes it as is)."""
        written = {**row, "revision": 1, "outbox": list(staged), "stagedAt": staged_at}
        await self._appointments.insert_one({**written, "outbox": [self._sealed(e) for e in staged]})
        return written

    async def of_employee(self, employee_id: str, start: datetime, end: datetime, *,
                          scope: CaseScope) -> list[dict[str, Any]]:
        """The employee's visible appointments with `start` <= at < `end`, soonest first; one round trip."""
        query = within_scope({"employeeId": employee_id, "at": {"$gte": start, "$lt": end}}, scope, id_field="caseId")
        return await self._appointments.find(query, _READ_PROJECTION).sort(
            [("at", ASCENDING), ("_id", ASCENDING)]).to_list(None)

    async def staged(self, older_than: datetime, limit: int) -> list[dict[str, Any]]:
        """Rows whose staged effects were not relayed (their writer stopped before it could), effects in clear."""
        rows = await self._staged.staged(older_than, limit)
        for row in rows:
            row["outbox"] = [self._opened(e) for e in row.get("outbox") or ()]
        return rows

    async def clear_staged(self, relayed: Sequence[dict[str, Any]]) -> None:
        await self._staged.clear(relayed)

    def _sealed(self, effect: dict[str, Any]) -> dict[str, Any]:
        if effect.get("kind") != "message" or not effect.get("sensitive"):
            return effect
        sealed = {k: v for k, v in effect.items() if k != "event"}
        sealed["sealed"] = seal_envelope(effect["event"], self._cipher)
        return sealed

    def _opened(self, effect: dict[str, Any]) -> dict[str, Any]:
        if "sealed" not in effect:
            return effect
        opened = {k: v for k, v in effect.items() if k != "sealed"}
        opened["event"] = open_envelope(effect["sealed"], self._cipher)
        return opened
