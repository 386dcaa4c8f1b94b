"""Who may see what: the one policy of the Case Repository, kept as data.

The README's policy table is generated from these tables (`python -m access.policy_table`), the field guards
and operation guards are generated from them at schema build, and the row scope of every case query (case,
cases, customer 360, `_entities`, subscriptions) comes from them. Change access here and nowhere else.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from stores.protection import mask_pesel, mask_phone

ROLES = (
    "case-reader", "case-writer", "advisor", "back-office", "call-center", "team-manager", "auditor",
    "pii-reader", "system-publisher",
)
CHANNELS = ("BRANCH", "CALL_CENTER", "BACK_OFFICE", "ONLINE", "MOBILE", "PANEL")

# Roles that read cases at all. Auditors read the audit trail, not the cases themselves.
CASE_READERS = frozenset({"case-reader", "case-writer", "advisor", "back-office", "call-center", "team-manager"})
ANY_AUTHENTICATED = frozenset({"*"})


class Access(Enum):
    FULL = "full"
    MASKED = "masked"
    DENIED = "denied"


@dataclass(frozen=True)
class FieldRule:
    """`full` roles see the value (only through `full_channels`, if given; elsewhere masked);
    `masked` roles see it masked; everyone else is refused with FORBIDDEN."""

    full: frozenset[str]
    masked: frozenset[str]
    mask: Callable[[str], str]
    full_channels: frozenset[str] | None = None

    def access(self, roles: frozenset[str], channel: str | None) -> Access:
        if roles & self.full:
            if self.full_channels is None or channel in self.full_channels:
                return Access.FULL
            return Access.MASKED
        if roles & self.masked:
            return Access.MASKED
        return Access.DENIED


_PESEL = FieldRule(
    full=frozenset({"pii-reader", "back-office", "advisor"}),
    masked=frozenset({"call-center", "team-manager", "case-reader", "case-writer"}),
    mask=mask_pesel,
    full_channels=frozenset({"BRANCH", "BACK_OFFICE"}),
)

# Sensitive fields, keyed "Type.field" as in the GraphQL schema.
FIELD_POLICY: dict[str, FieldRule] = {
    "Customer.pesel": _PESEL,
    "Participant.pesel": _PESEL,
    "Participant.phone": FieldRule(
        full=frozenset({"pii-reader", "back-office", "advisor", "call-center"}),
        masked=frozenset({"team-manager", "case-reader", "case-writer"}),
        mask=mask_phone,
    ),
}

# Root fields and the roles that may call them ("*" = any signed-in principal). Anything not listed here
# is refused at schema build, so a new root field cannot ship without a rule.
OPERATION_POLICY: dict[str, frozenset[str]] = {
    "Query.me": ANY_AUTHENTICATED,
    "Query.case": CASE_READERS,
    "Query.cases": CASE_READERS,
    "Query.customer": CASE_READERS,
    # Searching by PESEL confirms a person is a customer: only the roles that serve customers.
    "Query.customerByPesel": frozenset({"advisor", "back-office", "call-center", "team-manager"}),
    "Query.auditTrail": frozenset({"auditor"}),
    "Mutation.publishCaseEvent": frozenset({"system-publisher"}),
    "Subscription.caseUpdated": CASE_READERS,
    "Subscription.caseStatusChanged": CASE_READERS,
}

# Case types that only some case readers may see; every other case type is visible to all CASE_READERS.
CASE_TYPE_POLICY: dict[str, frozenset[str]] = {
    "LEASING": frozenset({"advisor", "back-office", "team-manager"}),
    "COMPLAINT": frozenset({"call-center", "back-office", "team-manager", "case-reader"}),
}

# Cases marked `restricted` (staff, VIPs, fraud) are visible only to these roles.
RESTRICTED_CASE_ROLES = frozenset({"team-manager"})

# A token that carries a `branch` claim sees only cases of that branch (organisational unit).
BRANCH_SCOPED = True
