"""Online and mobile banking: a signed-in customer's cases, in the Customer Panel's shape (issue 9).

A customer token (realm role `customer`, claim `customer_id`, channel ONLINE or MOBILE) reaches the cases where
that customer is the customer, and those where a participant has their PESEL (a co-borrower's mortgage), found by
the PESEL's blind index taken from the customer's own cases. In each case the participant the customer is decides
what they see (resolvers/panel_case.py); a case they are the customer of without being a participant shows only
what is shared with every participant. Restricted cases (staff, VIP, fraud) are not shown; closed cases only
within their case type's availability window. Open cases first, then the most recently changed.
"""
from __future__ import annotations

from typing import Any

from auth.principal import Principal, PrincipalKind
from context import Context
from errors import Forbidden, Unauthenticated
from resolvers.pagination import Page, decode_cursor, encode_cursor, page_size
from resolvers.panel_case import check_available, panel_view
from access.panel_views import available_until
from stores.case_criteria import CaseCriteria, CaseOrder, Person
from stores.case_scope import CaseScope
from datetime import datetime, timezone

CUSTOMER_CHANNELS = frozenset({"ONLINE", "MOBILE"})
# A person's cases are few; more than this are not listed (the newest are).
MAX_MY_CASES = 500
# A customer's own cases, never the restricted ones (their visibility is the bank's business).
CUSTOMER_SCOPE = CaseScope()


def _customer(context: Context) -> Principal:
    principal = context.principal
    if principal is None:
        raise Unauthenticated("sign in to online or mobile banking first")
    if principal.kind is not PrincipalKind.CUSTOMER or not principal.customer_id:
        raise Forbidden("only a customer's online or mobile banking token lists their cases")
    if context.channel not in CUSTOMER_CHANNELS:
        raise Forbidden("a customer's cases are shown in online and mobile banking only (channel ONLINE or MOBILE)")
    return principal


async def _person(context: Context, customer_id: str) -> Person:
    snapshot = (await context.services.cases.latest_customer_snapshots([customer_id], scope=CUSTOMER_SCOPE)).get(
        customer_id) or {}
    return Person(customer_id=customer_id, pesel_index=snapshot.get("peselIndex"))


def _participant(case: dict[str, Any], person: Person) -> dict[str, Any]:
    """The participant this person is in `case`; the customer without a participant entry reads the shared part."""
    index = person.pesel_index
    if index is not None:
        found = next((p for p in case.get("participants") or () if p.get("peselIndex") == index), None)
        if found is not None:
            return found
    customer = case.get("customer") or {}
    return {"id": f"customer:{person.customer_id}", "role": "CUSTOMER", "name": customer.get("name") or ""}


def _shown(case: dict[str, Any], now: datetime) -> bool:
    until = available_until(case)
    return until is None or until > now


async def _cases(context: Context, person: Person, criteria: CaseCriteria | None) -> list[dict[str, Any]]:
    combined = CaseCriteria(person=person, all_of=[criteria] if criteria is not None else [])
    page = await context.services.cases.find(combined, CaseOrder(), MAX_MY_CASES, scope=CUSTOMER_SCOPE)
    now = datetime.now(timezone.utc)
    cases = [case for case in page.cases if _shown(case, now)]
    # Stable: within open and within closed, the newest change first (the store's order).
    return sorted(cases, key=lambda case: case.get("closedAt") is not None)


async def my_cases(context: Context, criteria: CaseCriteria | None, first: int | None,
                   after: str | None) -> Page[dict[str, Any]]:
    principal = _customer(context)
    assert principal.customer_id is not None
    size = page_size(first, context.settings.default_page_size, context.settings.max_page_size)
    start = 0
    if after:
        position, _ = decode_cursor(after, "myCases")
        if not isinstance(position, int) or isinstance(position, bool) or position < 0:
            raise Forbidden("after: not a cursor of myCases")
        start = position + 1
    person = await _person(context, principal.customer_id)
    cases = await _cases(context, person, criteria)
    shown = cases[start:start + size]
    context.audit.cases_returned(shown)
    return Page(items=[panel_view(case, _participant(case, person)) for case in shown],
                cursors=[encode_cursor(start + i, case["_id"], "myCases") for i, case in enumerate(shown)],
                has_next=len(cases) > start + size, total=len(cases))


async def my_case(context: Context, case_id: str) -> dict[str, Any] | None:
    """One of the customer's cases (null for any other); FORBIDDEN once it has left the panel."""
    principal = _customer(context)
    assert principal.customer_id is not None
    person = await _person(context, principal.customer_id)
    case = await context.services.cases.get(case_id, scope=CUSTOMER_SCOPE)
    if case is None or not person.takes_part_in(case):
        return None
    check_available(case)
    context.audit.cases_returned([case])
    return panel_view(case, _participant(case, person))
