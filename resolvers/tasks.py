"""Tasks, read from their own rows (which carry their case's visibility, so the row scope applies to them too)."""
from __future__ import annotations

from typing import Any

from context import Context


async def get_task(context: Context, task_id: str) -> tuple[dict[str, Any], str] | None:
    """The task and the id of its case, batched with every other task asked for in the request."""
    task = await context.loaders.task.load(task_id)
    if task is None:
        return None
    context.audit.case_ids.add(task["caseId"])
    if task.get("customerId"):
        context.audit.customer_ids.add(task["customerId"])
    return task, task["caseId"]
