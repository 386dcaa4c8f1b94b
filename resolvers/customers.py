"""The customer 360: who they are, their cases, a summary and a timeline across all their cases."""
from __future__ import annotations

from typing import Any

from context import Context
from resolvers.pagination import Page, decode_cursor, encode_cursor, page_size


async def get_customer(context: Context, customer_id: str) -> dict[str, Any] | None:
    return await context.loaders.customer.load(customer_id)


async def customer_summary(context: Context, customer_id: str) -> dict[str, Any]:
    return await context.loaders.customer_summary.load(customer_id)


async def customer_timeline(
    context: Context, customer_id: str, first: int | None, after: str | None,
) -> Page[dict[str, Any]]:
    size = page_size(first, context.settings.default_page_size, context.settings.max_page_size)
    keyset = decode_cursor(after) if after else None
    entries, has_next = await context.services.cases.timeline(customer_id, size, keyset)
    return Page(items=entries, cursors=[encode_cursor(e["at"], e["id"]) for e in entries], has_next=has_next)
