"""`myNotifications`: the employee's own live feed (rules in resolvers/notifications.py)."""
from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.types import Info

from resolvers import notifications as notification_rules
from resolvers.notifications import Notice

NotificationKind = strawberry.enum(notification_rules.NotificationKind)


@strawberry.type(description="Something that concerns the signed-in employee; `id` is stable for the event "
                             "it came from (a redelivered event is not told twice).")
class Notification:
    id: strawberry.ID
    kind: NotificationKind  # type: ignore[valid-type]
    case_id: strawberry.ID
    task_id: strawberry.ID | None
    incident_id: strawberry.ID | None
    summary: str
    at: datetime | None

    @classmethod
    def from_notice(cls, notice: Notice) -> Notification:
        return cls(id=notice.id, kind=notice.kind, case_id=notice.case_id, task_id=notice.task_id,
                   incident_id=notice.incident_id, summary=notice.summary, at=notice.at)


@strawberry.type
class NotificationSubscriptions:
    @strawberry.subscription(description="A task assigned to me, a change of a task I hold, an incident raised in "
                                         "a case where I hold an open task; employees only.")
    async def my_notifications(self, info: Info) -> AsyncGenerator[Notification, None]:
        async for notice in notification_rules.my_notifications(info.context):
            yield Notification.from_notice(notice)
