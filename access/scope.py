"""The row scope of a caller, derived from the policy tables."""
from __future__ import annotations

from typing import Protocol

from access.policy import BRANCH_SCOPED, CASE_READERS, CASE_TYPE_POLICY, RESTRICTED_CASE_ROLES
from stores.case_scope import NOTHING, CaseScope


class Caller(Protocol):
    kind: str
    roles: frozenset[str]
    branch: str | None
    case_id: str | None


def case_scope(principal: Caller | None) -> CaseScope:
    """Which cases `principal` may see; nobody signed in sees none."""
    if principal is None:
        return NOTHING
    if principal.kind == "PANEL":
        # A panel participant's rows are their one case; no operation of the policy admits a PANEL token yet,
        # so today this only narrows what the Customer Panel will be given.
        return CaseScope(case_ids=frozenset({principal.case_id})) if principal.case_id else NOTHING
    roles = principal.roles
    if not roles & CASE_READERS:
        return NOTHING
    return CaseScope(
        hidden_case_types=frozenset(t for t, allowed in CASE_TYPE_POLICY.items() if not roles & allowed),
        branch=principal.branch if BRANCH_SCOPED else None,
        include_restricted=bool(roles & RESTRICTED_CASE_ROLES),
    )
