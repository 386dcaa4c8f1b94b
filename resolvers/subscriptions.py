"""Live updates as each caller may see them: scoped, audited per push, ended when the token expires.

`admitted` is what every subscription shares (the caller's row scope and the token's expiry, over a bus queue);
`audit_push` names a push's case in the push's audit record (schema/audit.py writes it once its selection has
run). A feed that drops some admitted changes (`myNotifications`) marks only the ones it pushes.

`caseUpdated` and `caseStatusChanged` run here once per push group (edge/fanout.py): the context is then the group's,
whose principal never expires; each member's own token expiry is checked by the group, at every push.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone

from auth.principal import Principal
from consumers.publication import Published, PublishedState
from context import Context
from errors import Unauthenticated
from stores.case_scope import scope_admits


def signed_in(context: Context, operation: str) -> Principal:
    principal = context.principal
    if principal is None:
        raise Unauthenticated(f"{operation} needs a signed-in caller")
    return principal


async def admitted(context: Context, principal: Principal,
                   queue: asyncio.Queue[Published]) -> AsyncIterator[Published]:
    """What arrives on `queue` about cases the caller's scope admits, until the token expires."""
    while True:
        remaining = (principal.expires_at - datetime.now(timezone.utc)).total_seconds()
        try:
            published = await asyncio.wait_for(queue.get(), timeout=max(remaining, 0))
        except asyncio.TimeoutError:
            raise Unauthenticated("the token expired; subscribe again with a fresh one") from None
        if scope_admits(context.scope, published.case):
            yield published


def audit_push(context: Context, published: Published) -> None:
    """The push about to be sent shows this case: its audit record names it."""
    context.audit.cases_returned([published.case])


async def visible_updates(context: Context, case_id: str | None, operation: str,
                          wanted: Callable[[PublishedState], bool] = lambda _: True) -> AsyncIterator[PublishedState]:
    """Applied states of one case (or all cases) that the caller's scope admits and the feed `wanted`, until the
    token expires. Only what is pushed is audited: a state the feed drops was never shown."""
    principal = signed_in(context, operation)
    with context.services.bus.subscribe(case_id) as queue:
        async for published in admitted(context, principal, queue):
            # The queue takes states only; the type checker cannot know.
            if isinstance(published, PublishedState) and wanted(published):
                audit_push(context, published)
                yield published
