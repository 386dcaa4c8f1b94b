"""Plain filter and order values for case queries, and their MongoDB form."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Public order names -> stored field; every order ends with _id so keyset cursors are total.
ORDER_FIELDS = {
    "UPDATED_AT": "updatedAt",
    "CREATED_AT": "createdAt",
    "STATUS": "status",
    "CASE_TYPE": "caseType",
    "ID": "_id",
}


# The text filter's keywords, stored on each case at every write (stores/cases.py) and indexed (multikey): every
# prefix of each lower-cased, accent-folded word of its id, title and customer name ("nowak" is stored as "n",
# "no", "now", "nowa", "nowak"). A search matches the cases that have, for each of its words, a word starting with
# it: one equality per word on the index, where the case-insensitive, unanchored regex over three fields it
# replaces scanned every case. Prefixes rather than a range per word: on an array, `$gte`/`$lt` may be met by two
# different keywords (it needs `$elemMatch`, which the wire server's planner does not serve from an index).
SEARCH_TERMS = "searchTerms"
_WORD = re.compile(r"[^\W_]+")
# Letters NFKD does not decompose into a base letter and an accent.
_FOLDED = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "ı": "i"})


def keywords(text: str) -> list[str]:
    """The words of `text`, lower-cased and accent-folded ("Łódź 15,000" -> ["lodz", "15", "000"])."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.lower().translate(_FOLDED))
                     if not unicodedata.combining(c))
    return _WORD.findall(folded)


def search_terms(case: dict[str, Any]) -> list[str]:
    """What a case is found by: every prefix of every word of its id, title and customer's name, each once."""
    customer = case.get("customer") or {}
    texts = (case.get("_id"), case.get("title"), customer.get("name") if isinstance(customer, dict) else None)
    words = {word for text in texts if isinstance(text, str) for word in keywords(text)}
    return sorted({word[:end] for word in words for end in range(1, len(word) + 1)})


def _text_filter(text: str) -> dict[str, Any]:
    words = list(dict.fromkeys(keywords(text)))
    if not words:
        return {"_id": {"$in": []}}  # no word to look for (".*", "--"): nothing matches, as no regex text did
    return {SEARCH_TERMS: words[0]} if len(words) == 1 else {SEARCH_TERMS: {"$all": words}}


@dataclass(frozen=True)
class Person:
    """A customer as the 360 view follows them: the cases they are the customer of, and the cases where a
    participant has their PESEL (a co-applicant, a guarantor), found by its blind index, never by plaintext."""

    customer_id: str
    pesel_index: str | None = None

    def filter(self) -> dict[str, Any]:
        own = {"customerId": self.customer_id}
        if self.pesel_index is None:
            return own
        return {"$or": [own, {"participants.peselIndex": self.pesel_index}]}

    def takes_part_in(self, case: dict[str, Any]) -> bool:
        """Whether `case` (with `customerId` and its participants' `peselIndex`) is one of this person's cases."""
        return case.get("customerId") == self.customer_id or (
            self.pesel_index is not None
            and any(p.get("peselIndex") == self.pesel_index for p in case.get("participants") or ()))


@dataclass(frozen=True)
class CaseCriteria:
    customer_id: str | None = None
    person: Person | None = None
    case_type: list[str] | None = None
    status: list[str] | None = None
    stage: list[str] | None = None
    channel: list[str] | None = None
    has_open_incident: bool | None = None
    is_open: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    text: str | None = None
    all_of: list[CaseCriteria] = field(default_factory=list)
    any_of: list[CaseCriteria] = field(default_factory=list)


@dataclass(frozen=True)
class CaseOrder:
    field: str = "UPDATED_AT"
    descending: bool = True


def _range(low: datetime | None, high: datetime | None) -> dict[str, Any] | None:
    bounds = {}
    if low is not None:
        bounds["$gte"] = low
    if high is not None:
        bounds["$lt"] = high
    return bounds or None


def criteria_filter(criteria: CaseCriteria | None) -> dict[str, Any]:
    """MongoDB filter for `criteria`; every clause is index-friendly, the text search too (SEARCH_TERMS)."""
    if criteria is None:
        return {}
    clauses: list[dict[str, Any]] = []
    if criteria.customer_id is not None:
        clauses.append({"customerId": criteria.customer_id})
    if criteria.person is not None:
        clauses.append(criteria.person.filter())
    for stored, values in (("caseType", criteria.case_type), ("status", criteria.status),
                           ("stage", criteria.stage), ("channel", criteria.channel)):
        if values is not None:
            clauses.append({stored: {"$in": list(values)}})
    if criteria.has_open_incident is not None:
        clauses.append({"hasOpenIncident": criteria.has_open_incident})
    if criteria.is_open is not None:
        clauses.append({"isOpen": criteria.is_open})
    for stored, bounds in (("createdAt", _range(criteria.created_from, criteria.created_to)),
                           ("updatedAt", _range(criteria.updated_from, criteria.updated_to))):
        if bounds:
            clauses.append({stored: bounds})
    if criteria.text:
        clauses.append(_text_filter(criteria.text))
    if criteria.all_of:
        clauses.append({"$and": [criteria_filter(c) for c in criteria.all_of]})
    if criteria.any_of:
        clauses.append({"$or": [criteria_filter(c) for c in criteria.any_of]})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def after_filter(order: CaseOrder, value: Any, last_id: str) -> dict[str, Any]:
    """Keyset condition: rows strictly after (value, last_id) in `order`."""
    stored = ORDER_FIELDS[order.field]
    op = "$lt" if order.descending else "$gt"
    if stored == "_id":
        return {"_id": {op: last_id}}
    return {"$or": [{stored: {op: value}}, {stored: value, "_id": {op: last_id}}]}


def sort_spec(order: CaseOrder) -> list[tuple[str, int]]:
    direction = -1 if order.descending else 1
    stored = ORDER_FIELDS[order.field]
    return [(stored, direction)] if stored == "_id" else [(stored, direction), ("_id", direction)]
