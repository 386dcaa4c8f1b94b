"""Reading cases: one case, filtered lists, a case's history."""
from __future__ import annotations

from typing import Any

from context import Context
from stores.protection import open_customer_pesel, open_participant_field
from resolvers.pagination import Page, decode_cursor, encode_cursor, page_size
from stores.case_criteria import CaseCriteria, CaseOrder
from stores.cases import order_value


async def get_case(context: Context, case_id: str) -> dict[str, Any] | None:
    """The case, if it exists and the caller may see it (the store applies the caller's scope)."""
    context.case_lookups.add(case_id)
    doc = await context.loaders.case.load(case_id)
    if doc is not None:
        context.audit.cases_returned([doc])
    return doc


async def list_cases(
    context: Context, criteria: CaseCriteria | None, order: CaseOrder, first: int | None, after: str | None,
) -> Page[dict[str, Any]]:
    """A page of cases plus the total count of the filter (two store round trips, whatever the size)."""
    size = page_size(first, context.settings.default_page_size, context.settings.max_page_size)
    # A cursor holds a position in one order: reusing it under another order would skip or repeat cases.
    order_name = f"{order.field}:{'DESC' if order.descending else 'ASC'}"
    keyset = decode_cursor(after, order_name) if after else None
    page = await context.services.cases.find(criteria, order, size, keyset, scope=context.scope)
    total = await context.services.cases.count(criteria, scope=context.scope)
    context.audit.cases_returned(page.cases)
    for doc in page.cases:
        # Later field resolvers (Customer, Task entities) find these cases without another read.
        context.loaders.case.prime(doc["_id"], doc)
    cursors = [encode_cursor(order_value(doc, order), doc["_id"], order_name) for doc in page.cases]
    return Page(items=page.cases, cursors=cursors, has_next=page.has_next, total=total)


def history_page(case: dict[str, Any], context: Context, first: int | None, after: str | None) -> Page[dict[str, Any]]:
    """The case's actions, newest first; history is stored inside the case, so this costs no round trip."""
    size = page_size(first, context.settings.default_page_size, context.settings.max_page_size)
    entries = case.get("history", [])
    newest_first = entries[::-1]
    start = 0
    if after:
        _at, entry_id = decode_cursor(after)
        start = next((i + 1 for i, e in enumerate(newest_first) if e["id"] == entry_id), len(newest_first))
    chosen = newest_first[start:start + size]
    return Page(
        items=chosen, cursors=[encode_cursor(e["at"], e["id"]) for e in chosen],
        has_next=start + size < len(newest_first), total=len(entries),
    )


# The field guards (access/guards.py) decide full, masked or denied before these open anything.
def customer_pesel(context: Context, case_id: str, customer: dict[str, Any]) -> str | None:
    """The customer's PESEL as their case `case_id` holds it, in clear."""
    return open_customer_pesel({"_id": case_id, "customer": customer}, context.services.cipher)


def participant_secret(context: Context, case_id: str, participant: dict[str, Any], name: str) -> str | None:
    """A participant's "pesel" or "phone", in clear."""
    case = {"_id": case_id, "participants": [participant]}
    return open_participant_field(case, participant["id"], name, context.services.cipher)
