"""Dashboard mutations on tasks: claim, unclaim, assign and complete (rules in resolvers/task_claims.py)."""
from __future__ import annotations

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import task_claims as claim_rules
from schema.tasks import Task


@strawberry.type
class TaskMutations:
    @strawberry.mutation(description="Take an open task offered to one of your groups; CONFLICT (with "
                                     "`extensions.assignee`) when someone holds it.")
    async def claim_task(self, info: Info, task_id: strawberry.ID) -> Task:
        row = await claim_rules.claim_task(info.context, task_id)
        return Task.from_doc(row, row["caseId"])

    @strawberry.mutation(description="Release a task: its holder, or a team manager.")
    async def unclaim_task(self, info: Info, task_id: strawberry.ID) -> Task:
        row = await claim_rules.unclaim_task(info.context, task_id)
        return Task.from_doc(row, row["caseId"])

    @strawberry.mutation(description="Give an open task to `assignee` (a username); team managers.")
    async def assign_task(self, info: Info, task_id: strawberry.ID, assignee: str) -> Task:
        row = await claim_rules.assign_task(info.context, task_id, assignee)
        return Task.from_doc(row, row["caseId"])

    @strawberry.mutation(description="Ask the process engine to complete your task with `input`; the task is "
                                     "COMPLETION_REQUESTED until the engine reports it completed.")
    async def complete_task(self, info: Info, task_id: strawberry.ID, input: JSON | None = None) -> Task:
        row = await claim_rules.complete_task(info.context, task_id, input)
        return Task.from_doc(row, row["caseId"])
