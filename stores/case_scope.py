"""Row-level visibility of cases, as plain values the store can turn into a filter.

access/ computes a CaseScope from the caller and the policy; every case read in stores/ takes one, so no
path (query, list, customer 360, federation entity, subscription) can skip it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CaseScope:
    nothing: bool = False
    hidden_case_types: frozenset[str] = frozenset()
    branch: str | None = None
    include_restricted: bool = False
    case_ids: frozenset[str] | None = None


EVERYTHING = CaseScope(include_restricted=True)
NOTHING = CaseScope(nothing=True)


def scope_filter(scope: CaseScope, id_field: str = "_id") -> dict[str, Any]:
    """The MongoDB condition that admits exactly the cases `scope_admits` admits; `id_field` names the case id
    in the collection queried (`caseId` in rows that carry their case's visibility, such as tasks)."""
    if scope.nothing:
        return {id_field: {"$in": []}}
    clauses: list[dict[str, Any]] = []
    if scope.case_ids is not None:
        clauses.append({id_field: {"$in": sorted(scope.case_ids)}})
    if scope.hidden_case_types:
        clauses.append({"caseType": {"$nin": sorted(scope.hidden_case_types)}})
    if scope.branch is not None:
        clauses.append({"branch": scope.branch})
    if not scope.include_restricted:
        clauses.append({"restricted": {"$ne": True}})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def scope_admits(scope: CaseScope, case: Mapping[str, Any]) -> bool:
    """The same rule for a case already in hand (pushed to a subscription)."""
    if scope.nothing:
        return False
    case_id = case.get("_id", case.get("id"))
    if scope.case_ids is not None and case_id not in scope.case_ids:
        return False
    if case.get("caseType") in scope.hidden_case_types:
        return False
    if scope.branch is not None and case.get("branch") != scope.branch:
        return False
    return scope.include_restricted or case.get("restricted") is not True


def within_scope(query: dict[str, Any], scope: CaseScope, *, id_field: str = "_id") -> dict[str, Any]:
    """`query` narrowed to the scope: merged into one query document where no key collides (some planners scan
    the collection for a top-level `$and`), else combined with `$and`."""
    visible = scope_filter(scope, id_field)
    if not visible:
        return query
    # An empty query (a list with no filter) is no exception: its scope clauses are merged too.
    return combined([clause for clause in (query, *(visible["$and"] if list(visible) == ["$and"] else [visible]))
                     if clause])


def combined(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    """The clauses as one query document where their keys do not collide, the rest under `$and`."""
    merged: dict[str, Any] = {}
    rest: list[dict[str, Any]] = []
    for clause in clauses:
        if merged.keys().isdisjoint(clause):
            merged.update(clause)
        else:
            rest.append(clause)
    if not rest:
        return merged
    return {"$and": [merged, *rest]}
