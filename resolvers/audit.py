"""Audit records of requests (from what the request collected in `Context.audit`) and the audit trail."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from context import Context
from errors import BadInput
from resolvers.pagination import Page, decode_cursor, encode_cursor, page_size

log = logging.getLogger(__name__)


def audit_entry(context: Context, *, action: str, operation: str | None, outcome: str) -> dict[str, Any]:
    """The audit record of this request, as the audit store takes it."""
    principal = context.principal
    audit = context.audit
    return {
        "at": datetime.now(timezone.utc),
        "actor": principal.subject if principal else "anonymous",
        "actorName": principal.username if principal else None,
        "action": action, "operation": operation, "outcome": outcome,
        "caseIds": sorted(audit.case_ids), "customerIds": sorted(audit.customer_ids),
        "fields": sorted(audit.fields), "eventIds": audit.event_ids, "changes": audit.changes,
        "channel": context.channel, "reason": context.audit_reason,
    }


AUDIT_UNAVAILABLE = "the request could not be recorded in the audit trail and was not served"


async def record_operation(context: Context, *, action: str, operation: str | None, outcome: str) -> bool:
    """Append this request's audit record; False when it could not be written (the caller withholds data)."""
    try:
        await context.services.audit.append(audit_entry(context, action=action, operation=operation, outcome=outcome))
    except Exception:  # noqa: BLE001 - any failure means "not on record"; the caller refuses to serve the read
        log.exception("audit write failed; the response is withheld")
        return False
    return True


AUDIT_CURSOR = "audit"


async def audit_trail(
    context: Context, *, case_id: str | None, customer_id: str | None, actor: str | None,
    first: int | None, after: str | None,
) -> Page[dict[str, Any]]:
    size = page_size(first, context.settings.default_page_size, context.settings.max_page_size)
    page = await context.services.audit.trail(
        case_id=case_id, customer_id=customer_id, actor=actor, first=size,
        after=_position(after) if after else None,
    )
    return Page(items=page.records, cursors=[encode_cursor(r["at"], str(r["_id"]), AUDIT_CURSOR) for r in page.records],
                has_next=page.has_next)


def _position(cursor: str) -> tuple[datetime, str | int]:
    """(at, _id) of the last record seen: a writer's `_id` is text with a ":", a legacy one a number."""
    at, record_id = decode_cursor(cursor, AUDIT_CURSOR)
    if not isinstance(at, datetime):
        raise BadInput("after: not a cursor issued by this API")
    if ":" in record_id:
        return at, record_id
    if record_id.isdigit():
        return at, int(record_id)
    raise BadInput("after: not a cursor issued by this API")
