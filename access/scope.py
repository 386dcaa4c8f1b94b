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
    if principal.kind in ("PANEL", "CUSTOMER"):
        # Panel sessions and customers read their cases only in the PanelCase shape, which resolvers/panel_case.py
        # builds from an explicit read; through every employee path (a Task's `case`, entities) they see none.
        return NOTHING
    roles = principal.roles
    if not roles & CASE_READERS:
        return NOTHING
    return CaseScope(
        hidden_case_types=frozenset(t for t, allowed in CASE_TYPE_POLICY.items() if not roles & allowed),
        branch=principal.branch if BRANCH_SCOPED else None,
        include_restricted=bool(roles & RESTRICTED_CASE_ROLES),
    )
