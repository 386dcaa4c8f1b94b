"""Tasks of the process engine, as they stand on their case."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from resolvers import cases as case_rules
from resolvers import tasks as task_rules
from schema.cases import Case


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

    @classmethod
    def from_doc(cls, doc: dict[str, Any], case_id: str) -> Task:
        return cls(
            id=doc["id"], case_id=case_id, name=doc.get("name"), form_key=doc.get("formKey"),
            candidate_groups=doc.get("candidateGroups") or [], assignee=doc.get("assignee"),
            participant_id=doc.get("participantId"), due_at=doc.get("dueAt"), state=doc.get("state"),
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Task | None:
        found = await task_rules.get_task(info.context, id)
        return cls.from_doc(*found) if found else None

    @strawberry.field
    async def case(self, info: Info) -> Case | None:
        doc = await case_rules.get_case(info.context, self.case_id)
        return Case.from_doc(doc) if doc else None
