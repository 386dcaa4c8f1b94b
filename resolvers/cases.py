"""Reading cases: one case (now or as it stood at a moment), filtered lists, a case's history."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from strawberry.types.nodes import SelectedField, Selection

from access.sensitive_text import protect_replayed
from consumers.apply import replay
from consumers.cloudevents import parse_envelope
from context import Context
from errors import BadInput
from stores.case_scope import scope_admits
from stores.protection import open_customer_pesel, open_participant_field
from resolvers.pagination import LazyCount, Page, decode_cursor, encode_cursor, page_size
from stores.case_criteria import CaseCriteria, CaseOrder
from stores.cases import order_value


async def get_case(context: Context, case_id: str) -> dict[str, Any] | None:
    """The case, if it exists and the caller may see it (the store applies the caller's scope)."""
    context.case_lookups.add(case_id)
    doc = await context.loaders.case.load(case_id)
    if doc is not None:
        context.audit.cases_returned([doc])
    return doc


async def get_case_as_of(context: Context, case_id: str, as_of: datetime) -> dict[str, Any] | None:
    """The case as it stood at `as_of`: its journaled events up to then, replayed through the reducer.

    The caller must see the case now and as it was then (its branch or type may have changed since)."""
    current = await get_case(context, case_id)
    if current is None:
        return None
    if current.get("replayable") is False:
        raise BadInput(f"asOf: case {case_id} was recorded before its events were kept with it, so it cannot be "
                       "rebuilt as of a moment; read it without asOf")
    envelopes = await context.services.events.applied_until(case_id, as_of)
    case = replay(case_id, [parse_envelope(envelope, internal=True, received=False) for envelope in envelopes])
    if case is None or not scope_admits(context.scope, case):
        return None
    # The journal keeps the events as they came: their free text is protected as the stored case's was.
    return protect_replayed(case, context.services.cipher)


# The Case fields (GraphQL names) that need one of its parts (stores/cases.py CASE_PARTS); every other field of
# the type is one of the case's own fields or reads elsewhere (history rows, notes, terms).
_FIELD_PARTS = {"customer": "customer", "product": "product", "participants": "participants",
                "documents": "documents", "tasks": "tasks", "incidents": "incidents", "processes": "processes",
                "forms": "forms", "consents": "consents", "offers": "offers"}
_OWN_FIELDS = frozenset({"__typename", "id", "caseType", "title", "status", "stage", "channel", "branch", "sourceSystem",
                         "createdAt", "updatedAt", "closedAt", "outcome", "version", "dueAt", "hasOpenIncident",
                         "history", "notes", "negotiatedTerms"})


def _selections(selections: Sequence[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection set, those inside fragments too."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:  # a fragment spread or an inline fragment
            yield from _selections(selection.selections)


def _names_case(field: SelectedField) -> bool:
    return any(f.name == "case" or _names_case(f) for f in _selections(field.selections))


def selected_case_parts(connection: SelectedField) -> frozenset[str] | None:
    """The case parts the nodes of a `cases` connection's selection need, or None (the whole case) when it selects a
    field this list does not know (a field added to Case later is read whole until it is named here) or an item
    that leads back to its case (`tasks { case { ... } }`: the whole cases of the page serve those, unread again)."""
    parts: set[str] = set()
    for edge_or_count in _selections(connection.selections):
        if edge_or_count.name != "edges":
            continue
        for node in (f for f in _selections(edge_or_count.selections) if f.name == "node"):
            for field in _selections(node.selections):
                if field.name in _FIELD_PARTS and not _names_case(field):
                    parts.add(_FIELD_PARTS[field.name])
                elif field.name not in _OWN_FIELDS:
                    return None
    return frozenset(parts)


async def list_cases(
    context: Context, criteria: CaseCriteria | None, order: CaseOrder, first: int | None, after: str | None,
    parts: frozenset[str] | None = None,
) -> Page[dict[str, Any]]:
    """A page of cases, and the total count of the filter if the selection asks for it (one store round trip,
    two with `totalCount`, whatever the size)."""
    size = page_size(first, context.settings.default_page_size, context.settings.max_page_size)
    # A cursor holds a position in one order: reusing it under another order would skip or repeat cases.
    order_name = f"{order.field}:{'DESC' if order.descending else 'ASC'}"
    keyset = decode_cursor(after, order_name) if after else None
    # Only the parts the page's selection needs (`parts`, None for whole cases): never a case's history.
    page = await context.services.cases.find(criteria, order, size, keyset, parts, scope=context.scope)
    total = LazyCount(lambda: context.services.cases.count(criteria, scope=context.scope))
    context.audit.cases_returned(page.cases)
    if parts is None:
        for doc in page.cases:
            # Later field resolvers (Customer, Task entities) find these cases without another read; a case read
            # in part is not primed, so nothing later takes it for the whole case.
            context.loaders.case.prime(doc["_id"], doc)
    cursors = [encode_cursor(order_value(doc, order), doc["_id"], order_name) for doc in page.cases]
    return Page(items=page.cases, cursors=cursors, has_next=page.has_next, total=total)


async def history_page(case: dict[str, Any], context: Context, first: int | None,
                       after: str | None) -> Page[dict[str, Any]]:
    """The case's history, newest first: its rows in the store, or the list of a case rebuilt in memory."""
    size = page_size(first, context.settings.default_page_size, context.settings.max_page_size)
    keyset = decode_cursor(after) if after else None
    if "history" in case:
        entries, has_next = _in_memory_page(case["history"], size, keyset)
        total = len(case["history"])
    else:
        # A pushed state (subscriptions) names its case `id`, a stored one `_id`.
        case_id = case.get("_id") or case["id"]
        entries, has_next = await context.services.history.page([case_id], size, keyset)
        # Counted, not read off the case: rows also come from writes that do not touch the case (a claim).
        total = await context.services.history.count([case_id])
    return Page(items=entries, cursors=[encode_cursor(e["at"], e["id"]) for e in entries], has_next=has_next,
                total=total)


def _in_memory_page(entries: list[dict[str, Any]], size: int,
                    keyset: tuple[Any, str] | None) -> tuple[list[dict[str, Any]], bool]:
    newest_first = sorted(entries, key=lambda e: (e["at"], e["id"]), reverse=True)
    if keyset is not None:
        newest_first = [e for e in newest_first if (e["at"], e["id"]) < keyset]
    return newest_first[:size], len(newest_first) > size


# The field guards (access/guards.py) decide full, masked or denied before these open anything.
def customer_pesel(context: Context, case_id: str, customer: dict[str, Any]) -> str | None:
    """The customer's PESEL as their case `case_id` holds it, in clear."""
    return open_customer_pesel({"_id": case_id, "customer": customer}, context.services.cipher)


def participant_secret(context: Context, case_id: str, participant: dict[str, Any], name: str) -> str | None:
    """A participant's "pesel" or "phone", in clear."""
    case = {"_id": case_id, "participants": [participant]}
    return open_participant_field(case, participant["id"], name, context.services.cipher)
