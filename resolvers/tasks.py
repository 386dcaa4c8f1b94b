"""Tasks, found through the case that holds them."""
from __future__ import annotations

from typing import Any

from context import Context


async def get_task(context: Context, task_id: str) -> tuple[dict[str, Any], str] | None:
    """The task and the id of its case, batched with every other task asked for in the request."""
    case = await context.loaders.case_by_task.load(task_id)
    if case is None:
        return None
    task = next(t for t in case["tasks"] if t["id"] == task_id)
    context.audit.cases_returned([case])
    return task, case["_id"]
