"""Live updates, fed from the `case-updates` stream through this process's bus."""
from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.types import Info

from consumers.publication import PublishedState
from resolvers.codes import canonical_codes
from resolvers.subscriptions import visible_updates
from schema.cases import Case


@strawberry.type
class CaseStatusChange:
    case_id: strawberry.ID
    customer_id: strawberry.ID | None
    case_type: str
    status: str
    previous_status: str | None
    stage: str | None
    version: int
    at: datetime | None


@strawberry.type
class Subscription:
    @strawberry.subscription(description="The case after each applied change.")
    async def case_updated(self, info: Info, id: strawberry.ID) -> AsyncGenerator[Case, None]:
        last_version = -1

        def news(published: PublishedState) -> bool:
            # case-updates is at-least-once: a republished version is not news.
            return published.state["version"] > last_version

        async for published in visible_updates(info.context, id, "caseUpdated", news):
            last_version = published.state["version"]
            yield Case.from_doc(published.state)

    @strawberry.subscription(description="Status changes of any case, optionally of one customer or case type.")
    async def case_status_changed(
        self, info: Info, customer_id: strawberry.ID | None = None, case_type: str | None = None,
    ) -> AsyncGenerator[CaseStatusChange, None]:
        wanted_type = (canonical_codes([case_type], "caseType") or [None])[0] if case_type is not None else None

        def listed(published: PublishedState) -> bool:
            state = published.state
            return (published.status_changed
                    and (customer_id is None or state.get("customerId") == customer_id)
                    and (wanted_type is None or state.get("caseType") == wanted_type))

        async for published in visible_updates(info.context, None, "caseStatusChanged", listed):
            state = published.state
            yield CaseStatusChange(
                case_id=state["id"], customer_id=state.get("customerId"), case_type=state["caseType"],
                status=state["status"], previous_status=published.previous_status, stage=state.get("stage"),
                version=state["version"], at=state.get("updatedAt"),
            )
