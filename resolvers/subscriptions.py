"""Live updates as each caller may see them: scoped, audited per push, ended when the token expires."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone

from consumers.publication import PublishedState
from context import Context
from errors import Unauthenticated
from stores.case_scope import scope_admits


async def visible_updates(context: Context, case_id: str | None, operation: str) -> AsyncIterator[PublishedState]:
    """Applied states of one case (or all cases) that the caller's scope admits, until the token expires."""
    principal = context.principal
    if principal is None:
        raise Unauthenticated(f"{operation} needs a signed-in caller")
    with context.services.bus.subscribe(case_id) as queue:
        while True:
            remaining = (principal.expires_at - datetime.now(timezone.utc)).total_seconds()
            try:
                published = await asyncio.wait_for(queue.get(), timeout=max(remaining, 0))
            except asyncio.TimeoutError:
                raise Unauthenticated("the token expired; subscribe again with a fresh one") from None
            if not scope_admits(context.scope, published.state):
                continue
            # The push's audit record (schema/audit.py, once its selection has run) names this case too.
            context.audit.cases_returned([published.state])
            yield published

