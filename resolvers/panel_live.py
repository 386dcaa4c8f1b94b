"""Live `PanelCase` pushes for a panel session (its own case) or a customer (one of their cases).

`caseUpdated` returns `Case`, whose nested fields (participants, incidents, a Task's `case`, …) are the employee
view: no field rule can make that shape safe for a participant, so the panel has `panelCaseUpdated` instead. Each
push is what `panelCase` / `myCase` would answer at that moment (read again from the store), and the stream ends
with UNAUTHENTICATED when the session is logged out or times out (checked at every push and at least every
SESSION_CHECK_SECONDS) or, for a customer, when the token expires.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from auth.principal import PrincipalKind
from context import Context
from errors import Forbidden, Unauthenticated
from resolvers.my_cases import my_case
from resolvers.panel_case import signed_in_case
from resolvers.panel_signin import panel_participant

SESSION_CHECK_SECONDS = 30.0


async def panel_updates(context: Context, case_id: str | None) -> AsyncIterator[dict[str, Any]]:
    principal = context.principal
    if principal is None:
        raise Unauthenticated("panelCaseUpdated needs a signed-in caller")
    view: Callable[[], Awaitable[dict[str, Any] | None]]
    if principal.kind is PrincipalKind.PANEL:
        await panel_participant(context)
        if case_id is not None and case_id != principal.case_id:
            raise Forbidden("a panel session follows its own case only")
        target = principal.case_id
        view = lambda: signed_in_case(context)  # noqa: E731 - re-checks the session and the window each time
    elif principal.kind is PrincipalKind.CUSTOMER:
        if case_id is None:
            raise Forbidden("name the case to follow (id)")
        target = case_id
        view = lambda: my_case(context, case_id)  # noqa: E731
        if await view() is None:
            raise Forbidden(f"case {case_id} is not one of your cases")
    else:
        raise Forbidden("panelCaseUpdated is for Customer Panel sessions and customers; employees use caseUpdated")
    assert target is not None
    last_version = -1
    with context.services.bus.subscribe(target) as queue:
        while True:
            remaining = (principal.expires_at - datetime.now(timezone.utc)).total_seconds()
            if principal.kind is PrincipalKind.CUSTOMER and remaining <= 0:
                raise Unauthenticated("the token expired; subscribe again with a fresh one")
            wait = SESSION_CHECK_SECONDS if principal.kind is PrincipalKind.PANEL else min(remaining,
                                                                                            SESSION_CHECK_SECONDS)
            try:
                published = await asyncio.wait_for(queue.get(), timeout=max(wait, 0))
            except asyncio.TimeoutError:
                if principal.kind is PrincipalKind.PANEL:
                    await panel_participant(context)  # ends the stream once the session has
                continue
            if published.state["version"] <= last_version:
                continue  # case-updates is at-least-once: a republished version is not news
            last_version = published.state["version"]
            current = await view()
            if current is not None:
                yield current
