"""The customer 360: who they are, their cases, a summary and a timeline across all their cases.

"Their cases" are the cases they are the customer of and the cases where they take part as a participant
(co-applicant, co-borrower, guarantor), recognised by their PESEL's blind index (stores/case_criteria.Person)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from context import Context
from errors import BadInput, RateLimited
from resolvers.pagination import Page, decode_cursor, encode_cursor, page_size
from stores.case_criteria import Person


async def get_customer(context: Context, customer_id: str) -> dict[str, Any] | None:
    """The customer as their visible cases describe them; none visible = no such customer for this caller."""
    doc = await context.loaders.customer.load(customer_id)
    if doc is not None:
        context.audit.customer_returned(customer_id)
    return doc


async def find_customer_by_pesel(context: Context, pesel: str) -> dict[str, Any] | None:
    """Search by PESEL through its blind index: the plaintext is never sent to the store.

    A lookup confirms whether a number is a customer's, and roles that see a PESEL masked still see its last 4
    digits, which for one birth date leave about one candidate: testing candidates must not be a way to unmask it.
    So one lookup per operation (aliases do not multiply it) and `PESEL_LOOKUPS_PER_HOUR` per principal across
    every instance (RATE_LIMITED after), each lookup audited with the caller's X-Audit-Reason."""
    context.pesel_lookups += 1
    if context.pesel_lookups > 1:
        raise BadInput("customerByPesel: one lookup per request")
    principal = context.principal
    assert principal is not None  # the operation policy admits signed-in roles only
    window = timedelta(hours=1)
    if await context.services.lookups.add(f"pesel:{principal.subject}", window) > \
            context.settings.pesel_lookups_per_hour:
        raise RateLimited(f"customerByPesel: at most {context.settings.pesel_lookups_per_hour} lookups an hour; "
                          "try again later")
    index = context.services.cipher.blind_index(pesel, purpose="pesel")
    customer_id = await context.services.cases.find_customer_by_pesel_index(index, scope=context.scope)
    return await get_customer(context, customer_id) if customer_id else None


async def customer_summary(context: Context, person: Person) -> dict[str, Any]:
    return await context.loaders.customer_summary.load(person)


async def customer_offers(context: Context, person: Person) -> list[tuple[str, dict[str, Any]]]:
    """(case id, offer) for every offer of the person's visible cases, the most recently changed case first."""
    cases = await context.services.cases.offers_of(person, scope=context.scope)
    context.audit.case_ids.update(case["_id"] for case in cases)
    return [(case["_id"], offer) for case in cases for offer in case["offers"]]


async def customer_timeline(
    context: Context, person: Person, first: int | None, after: str | None,
) -> Page[dict[str, Any]]:
    size = page_size(first, context.settings.default_page_size, context.settings.max_page_size)
    keyset = decode_cursor(after) if after else None
    case_ids = await context.services.cases.visible_ids(person, scope=context.scope)
    if not case_ids:
        return Page(items=[], cursors=[], has_next=False, total=0)
    entries, has_next = await context.services.history.page(case_ids, size, keyset)
    total = await context.services.history.count(case_ids)
    context.audit.case_ids.update(e["caseId"] for e in entries)
    return Page(items=entries, cursors=[encode_cursor(e["at"], e["id"]) for e in entries], has_next=has_next,
                total=total)
