"""Tasks of the process engine, as they stand on their case."""
from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from resolvers import cases as case_rules
from resolvers import tasks as task_rules
from resolvers.codes import canonical_codes
from resolvers.pagination import Page
from schema.cases import Case, OrderDirection
from schema.connections import Connection, connection_from_page
from stores.task_criteria import TaskCriteria, TaskOrder


@strawberry.federation.type(keys=["id"])
class Task:
    id: strawberry.ID
    case_id: strawberry.ID
    name: str | None
    form_key: str | None
    candidate_groups: list[str]
    assignee: str | None
    participant_id: strawberry.ID | None
    due_at: datetime | None
    state: str | None
    priority: int | None = strawberry.field(description="Higher is more urgent; null = the least urgent.")
    created_at: datetime | None = strawberry.field(description="When the engine's task_created event happened.")

    @classmethod
    def from_doc(cls, doc: dict[str, Any], case_id: str) -> Task:
        return cls(
            id=doc["id"], case_id=case_id, name=doc.get("name"), form_key=doc.get("formKey"),
            candidate_groups=doc.get("candidateGroups") or [], assignee=doc.get("assignee"),
            participant_id=doc.get("participantId"), due_at=doc.get("dueAt"), state=doc.get("state"),
            priority=doc.get("priority"), created_at=doc.get("createdAt"),
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Task:
        return cls.from_doc(row, row["caseId"])

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Task | None:
        found = await task_rules.get_task(info.context, id)
        return cls.from_doc(*found) if found else None

    @strawberry.field
    async def case(self, info: Info) -> Case | None:
        doc = await case_rules.get_case(info.context, self.case_id)
        return Case.from_doc(doc) if doc else None


@strawberry.enum
class TaskOrderField(Enum):
    DUE_AT = "DUE_AT"
    CREATED_AT = "CREATED_AT"
    PRIORITY = "PRIORITY"


@strawberry.input(description="DUE_AT: no due date sorts last; PRIORITY: no priority is the least urgent. "
                              "Ties are broken by the task's row id.")
class TaskOrderInput:
    field: TaskOrderField = TaskOrderField.DUE_AT
    direction: OrderDirection = OrderDirection.ASC

    def to_order(self) -> TaskOrder:
        return TaskOrder(field=self.field.value, descending=self.direction is OrderDirection.DESC)


def _aware(moment: datetime | None) -> datetime | None:
    """A time without an offset is read as UTC, as the store keeps every time."""
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


@strawberry.input(description="Every given condition must hold. Due range: dueAfter <= dueAt < dueBefore; "
                              "overdue = open and due before now.")
class TaskFilter:
    state: list[str] | None = None
    case_type: list[str] | None = None
    candidate_group: list[str] | None = None
    assignee: str | None = None
    unassigned: bool | None = None
    customer_id: strawberry.ID | None = None
    case_id: strawberry.ID | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    overdue: bool | None = None

    def to_criteria(self) -> TaskCriteria:
        return TaskCriteria(
            state=self.state, case_type=canonical_codes(self.case_type, "caseType"), candidate_group=self.candidate_group, assignee=self.assignee,
            unassigned=self.unassigned, customer_id=self.customer_id, case_id=self.case_id,
            due_before=_aware(self.due_before), due_after=_aware(self.due_after), overdue=self.overdue,
        )


def _connection(page: Page[dict[str, Any]]) -> Connection[Task]:
    return connection_from_page(page, Task.from_row)


@strawberry.type
class TaskQueries:
    @strawberry.field(description="Every task in the cases the caller may see (managers, back office).")
    async def tasks(
        self, info: Info, filter: TaskFilter | None = None, order_by: TaskOrderInput | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[Task]:
        order = (order_by or TaskOrderInput()).to_order()
        criteria = filter.to_criteria() if filter else None
        return _connection(await task_rules.list_tasks(info.context, criteria, order, first, after))

    @strawberry.field(description="The caller's tasks: those they hold, and the open unassigned ones offered to "
                                  "their groups, in the cases they may see.")
    async def my_tasks(
        self, info: Info, filter: TaskFilter | None = None, order_by: TaskOrderInput | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[Task]:
        order = (order_by or TaskOrderInput()).to_order()
        criteria = filter.to_criteria() if filter else None
        return _connection(await task_rules.my_tasks(info.context, criteria, order, first, after))
