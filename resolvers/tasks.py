"""Tasks, read from their own rows (which carry their case's visibility, so the row scope applies to them too)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from context import Context
from errors import Unauthenticated
from resolvers.pagination import LazyCount, Page, decode_cursor, encode_cursor, page_size
from stores.task_criteria import Inbox, TaskCriteria, TaskOrder, matching_groups, order_key


def _returned(context: Context, task: dict[str, Any]) -> None:
    """Name the task's case and customer in the request's audit record."""
    context.audit.case_ids.add(task["caseId"])
    if task.get("customerId"):
        context.audit.customer_ids.add(task["customerId"])


async def get_task(context: Context, task_id: str) -> tuple[dict[str, Any], str] | None:
    """The task and the id of its case, batched with every other task asked for in the request."""
    task = await context.loaders.task.load(task_id)
    if task is None:
        return None
    _returned(context, task)
    return task, task["caseId"]


async def list_tasks(context: Context, criteria: TaskCriteria | None, order: TaskOrder, first: int | None,
                     after: str | None) -> Page[dict[str, Any]]:
    """A page of the tasks in every case the caller may see, with the exact count of the filter if the selection
    asks for it (one round trip, two with `totalCount`, whatever the size; the row scope is part of both queries)."""
    size = page_size(first, context.settings.default_page_size, context.settings.max_page_size)
    keyset = decode_cursor(after, order.name) if after else None
    criteria = replace(criteria or TaskCriteria(), now=datetime.now(timezone.utc))
    tasks = context.services.tasks
    rows, has_next = await tasks.find(criteria, order, size, keyset, scope=context.scope)
    total = LazyCount(lambda: tasks.count(criteria, scope=context.scope))
    for row in rows:
        _returned(context, row)
    key = order_key(order)
    cursors = [encode_cursor(row[key], row["_id"], order.name) for row in rows]
    return Page(items=rows, cursors=cursors, has_next=has_next, total=total)


async def my_tasks(context: Context, criteria: TaskCriteria | None, order: TaskOrder, first: int | None,
                   after: str | None) -> Page[dict[str, Any]]:
    """The caller's inbox: the tasks they hold and the open unassigned ones offered to their groups, in the cases
    they may see. Who "I" am and my groups come from the token only; the filter can narrow the inbox, not widen it."""
    principal = context.principal
    if principal is None:  # the operation policy lets nobody unsigned this far; fail closed all the same
        raise Unauthenticated("myTasks needs a signed-in caller")
    inbox = Inbox(assignee=principal.username, groups=matching_groups(principal.groups))
    return await list_tasks(context, replace(criteria or TaskCriteria(), inbox=inbox), order, first, after)
