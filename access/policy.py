"""Who may see what: the one policy of the Case Repository, kept as data.

The README's policy table is generated from these tables (`python -m access.policy_table`), the field guards
and operation guards are generated from them at schema build, and the row scope of every case query (case,
cases, customer 360, `_entities`, subscriptions) comes from them. Change access here and nowhere else.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from stores.protection import mask_pesel, mask_phone

ROLES = (
    "case-reader", "case-writer", "advisor", "back-office", "call-center", "team-manager", "auditor",
    "pii-reader", "system-publisher",
)
# Online / mobile banking customers (a `customer_id` claim): not a staff role, so not a column of the field table.
CUSTOMER_ROLE = "customer"
CHANNELS = ("BRANCH", "CALL_CENTER", "BACK_OFFICE", "ONLINE", "MOBILE", "PANEL")

# Roles that read cases at all. Auditors read the audit trail, not the cases themselves.
CASE_READERS = frozenset({"case-reader", "case-writer", "advisor", "back-office", "call-center", "team-manager"})
# Who writes notes on cases and customers (the customer card); which case or customer is a row rule.
NOTE_WRITERS = frozenset({"advisor", "back-office", "call-center", "team-manager", "case-writer"})
# Who assigns tasks to others and releases a task someone else holds.
TASK_MANAGER_ROLES = frozenset({"team-manager"})
# Negotiated credit terms (the customer card): who records them, who approves them, who reads them at all
# (the call center sees no terms: their internals are the branch's and the back office's business).
TERMS_NEGOTIATORS = frozenset({"advisor", "team-manager"})
TERMS_APPROVERS = frozenset({"team-manager"})
TERMS_READERS = frozenset({"advisor", "back-office", "team-manager"})
# Appointments with customers and the calendar they fill: the roles that serve customers (the note writers but
# `case-writer`, a technical role that edits cases without meeting anyone). Which case is a row rule.
APPOINTMENT_MAKERS = NOTE_WRITERS - {"case-writer"}
ANY_AUTHENTICATED = frozenset({"*"})
# Client-credentials (service account) tokens, whatever their roles: gateways fetching the subgraph SDL.
SYSTEM_CLIENTS = frozenset({"@system"})
# No token needed: the Customer Panel's sign-in (the caller is who they prove to be, with a code).
ANYONE = frozenset({"@anyone"})
# A Customer Panel session (panelLogin), whatever else: it holds no roles.
PANEL_PARTICIPANTS = frozenset({"@panel"})
# Who invites a participant to the Customer Panel: employees who write cases, and the process engine (a system
# client publishing case events).
PANEL_INVITERS = frozenset({"case-writer", "advisor", "back-office", "team-manager"}) | SYSTEM_CLIENTS


class Access(Enum):
    """How a field is shown, from the least to the most restrictive."""

    FULL = "full"
    MASKED = "masked"
    HIDDEN = "hidden"  # null, without an error: the channel's view leaves it out
    DENIED = "denied"  # FORBIDDEN: the caller's roles may not read it at all


_STRICTNESS = tuple(Access)


@dataclass(frozen=True)
class FieldRule:
    """By role: `full` roles see the value, `masked` roles see it masked; everyone else is refused (FORBIDDEN).
    The channel's view (CHANNEL_VIEWS) may restrict it further."""

    full: frozenset[str]
    masked: frozenset[str]
    mask: Callable[[str], str]

    def access(self, roles: frozenset[str]) -> Access:
        if roles & self.full:
            return Access.FULL
        if roles & self.masked:
            return Access.MASKED
        return Access.DENIED


_PESEL = FieldRule(
    full=frozenset({"pii-reader", "back-office", "advisor"}),
    masked=frozenset({"call-center", "team-manager", "case-reader", "case-writer"}),
    mask=mask_pesel,
)

# Sensitive fields by role, keyed "Type.field" as in the GraphQL schema.
FIELD_POLICY: dict[str, FieldRule] = {
    "Customer.pesel": _PESEL,
    "Participant.pesel": _PESEL,
    "Participant.phone": FieldRule(
        full=frozenset({"pii-reader", "back-office", "advisor", "call-center"}),
        masked=frozenset({"team-manager", "case-reader", "case-writer"}),
        mask=mask_phone,
    ),
}


@dataclass(frozen=True)
class ChannelView:
    """What one channel shows: `masked` fields masked, `hidden` fields null (no error), the rest as the roles allow."""

    masked: frozenset[str]
    hidden: frozenset[str]
    why: str

    def access(self, key: str) -> Access:
        if key in self.hidden:
            return Access.HIDDEN
        if key in self.masked:
            return Access.MASKED
        return Access.FULL


_PESELS = frozenset({"Customer.pesel", "Participant.pesel"})
# The link to a document's content (scans of ID cards, payslips); its name, kind and status stay visible.
_DOCUMENT_CONTENT = frozenset({"Document.url"})
# How the bank priced the loan: the margin, the room it had to negotiate in, the fees it charged or waived. The
# whole rate, amount, term and the installment stay: they are on the customer's own schedule, and the installment
# is what a caller asks. NegotiatedTerms inherits the fields of NegotiatedTermsVersion, so both types are named.
_TERMS_INTERNALS = frozenset(f"{type_name}.{field}" for type_name in ("NegotiatedTerms", "NegotiatedTermsVersion")
                             for field in ("margin", "marginMin", "marginMax", "fees"))
# The most restrictive view, for channels where no employee tool runs.
_CUSTOMER_CHANNEL = ChannelView(
    masked=_PESELS | frozenset({"Participant.phone"}), hidden=_DOCUMENT_CONTENT | _TERMS_INTERNALS,
    why="a customer's own channel: no employee tool runs here, so an employee token calling through it is "
        "unexpected and gets the most restrictive view")

# Per channel of the call (CONTRACT §4); None = no channel claim and no X-Channel header.
CHANNEL_VIEWS: dict[str | None, ChannelView] = {
    "BRANCH": ChannelView(masked=frozenset(), hidden=frozenset(),
                          why="the customer is at the desk and has shown an ID document"),
    "BACK_OFFICE": ChannelView(masked=frozenset(), hidden=frozenset(),
                               why="verifies documents and prices terms; no customer on the line"),
    "CALL_CENTER": ChannelView(
        masked=_PESELS, hidden=_DOCUMENT_CONTENT | _TERMS_INTERNALS,
        why="a caller is known by a few answers: the agent checks the PESEL's last digits, calls back on the "
            "participant's phone and tells the installment; document content and pricing stay with the branch and "
            "the back office"),
    "ONLINE": _CUSTOMER_CHANNEL,
    "MOBILE": _CUSTOMER_CHANNEL,
    "PANEL": _CUSTOMER_CHANNEL,
    # Without a channel claim the X-Channel header is the client's to send, omit or forge: the view is chosen by the
    # claim alone (access/guards.py), and no claim is the most restrictive view too.
    None: replace(_CUSTOMER_CHANNEL, why="the token has no `channel` claim: an `X-Channel` header is the client's "
                                        "own word (recorded, never trusted), so naming no channel or naming one "
                                        "only there must not show more than the narrowest channel"),
}

# Every field whose value depends on the caller's roles or channel; each carries a guard (access/guards.py).
VIEWED_FIELDS: frozenset[str] = frozenset(FIELD_POLICY).union(
    *(view.masked | view.hidden for view in CHANNEL_VIEWS.values()))


def field_access(key: str, roles: frozenset[str], channel: str | None) -> Access:
    """How `key` is shown: the more restrictive of its role rule (none = full to whoever reads the object) and
    the channel's view."""
    rule = FIELD_POLICY.get(key)
    by_role = rule.access(roles) if rule is not None else Access.FULL
    return max(by_role, CHANNEL_VIEWS[channel].access(key), key=_STRICTNESS.index)


def _check_channel_views() -> None:
    missing = set(CHANNELS) - set(CHANNEL_VIEWS)
    if missing:
        raise RuntimeError(f"channels without a view in access/policy.py: {sorted(missing)}")
    for channel, view in CHANNEL_VIEWS.items():
        unmaskable = view.masked - set(FIELD_POLICY)
        if unmaskable:
            raise RuntimeError(f"{channel} masks {sorted(unmaskable)}, which have no mask in FIELD_POLICY")


_check_channel_views()

# Non-root fields only some roles may read ("Type.field" as in the schema); anyone else gets FORBIDDEN.
ROLE_FIELD_POLICY: dict[str, frozenset[str]] = {
    "Case.negotiatedTerms": TERMS_READERS,
    "Customer.negotiatedTerms": TERMS_READERS,
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
    # The dashboard. Whoever reads cases has an inbox (what they hold, what is offered to their groups); the list
    # of every task in the caller's row scope is for those who distribute and chase work. Who "I" am and my
    # groups come from the token; rows (branch, restricted, case types) are filtered in the store query.
    "Query.myTasks": CASE_READERS,
    "Query.tasks": frozenset({"team-manager", "back-office"}),
    # The what-if installment calculator saves and reads nothing; offered to those who read terms.
    "Query.installment": TERMS_READERS,
    # My calendar: my appointments, the due dates of my tasks and the deadlines of my cases (resolvers/calendar.py).
    "Query.calendar": APPOINTMENT_MAKERS,
    "Query.auditTrail": frozenset({"auditor"}),
    # Generated by Apollo Federation; a router forwards the caller's token, and the row scope applies too.
    "Query._entities": CASE_READERS,
    # The SDL is the schema: to system clients only, unless introspection is on (dev, GRAPHQL_INTROSPECTION=1).
    "Query._service": SYSTEM_CLIENTS,
    "Mutation.publishCaseEvent": frozenset({"system-publisher"}),
    # Dashboard claims: any case reader may claim, release and complete; which task is a row rule (its candidate
    # groups, its holder) in resolvers/task_claims.py. Assigning a task to someone else is a manager's act.
    "Mutation.claimTask": CASE_READERS,
    "Mutation.unclaimTask": CASE_READERS,
    "Mutation.assignTask": TASK_MANAGER_ROLES,
    "Mutation.completeTask": CASE_READERS,
    # The verified retry of an incident (CONTRACT §5): the back office that runs the processes, and managers.
    "Mutation.retryIncident": frozenset({"back-office", "team-manager"}),
    # Negotiated terms: which case is a row rule (the case must be visible); rules in resolvers/terms.py.
    "Mutation.recordNegotiatedTerms": TERMS_NEGOTIATORS,
    "Mutation.approveNegotiatedTerms": TERMS_APPROVERS,
    # Notes: the author (from the token) edits and deletes their own; rules in resolvers/notes.py.
    "Mutation.addNote": NOTE_WRITERS,
    "Mutation.editNote": NOTE_WRITERS,
    "Mutation.deleteNote": NOTE_WRITERS,
    # Appointments: the booking employee comes from the token; rules in resolvers/appointments.py.
    "Mutation.scheduleAppointment": APPOINTMENT_MAKERS,
    "Subscription.caseUpdated": CASE_READERS,
    "Subscription.caseStatusChanged": CASE_READERS,
    # Employees' own feed (tasks assigned to them, their tasks' changes, incidents in their cases); a system or panel
    # token holds no tasks and is refused in resolvers/notifications.py whatever its roles.
    "Subscription.myNotifications": CASE_READERS,
    # The Customer Panel (CONTRACT §5): sign-in needs no token; what a session reads is its own case and participant
    # (rules in resolvers/panel_signin.py and resolvers/panel_case.py).
    "Mutation.panelRequestCode": ANYONE,
    "Mutation.panelLogin": ANYONE,
    "Mutation.panelLogout": PANEL_PARTICIPANTS,
    # A participant's own consents, actions and documents (rules in resolvers/panel_actions.py, panel_uploads.py).
    "Mutation.panelGiveConsent": PANEL_PARTICIPANTS,
    "Mutation.panelCompleteAction": PANEL_PARTICIPANTS,
    "Mutation.panelUploadDocument": PANEL_PARTICIPANTS,
    "Query.panelCase": PANEL_PARTICIPANTS,
    "Mutation.issuePanelAccess": PANEL_INVITERS,
    # Online / mobile banking: the cases where the token's customer is the customer or a participant.
    "Query.myCases": frozenset({CUSTOMER_ROLE}),
    "Query.myCase": frozenset({CUSTOMER_ROLE}),
    # The panel's live view: a panel session's own case, or a customer's own case, in the PanelCase shape.
    "Subscription.panelCaseUpdated": PANEL_PARTICIPANTS | {CUSTOMER_ROLE},
}

# Principals that are not staff reach only the operations listed for their kind, whatever OPERATION_POLICY's roles
# say (and `_entities` / `_service` never): a panel session or a customer token must not become an employee by a
# role claim or a "*" row. Operations open to ANYONE are open to them too.
OPERATIONS_BY_KIND: dict[str, frozenset[str]] = {
    "PANEL": frozenset({"Query.panelCase", "Mutation.panelLogout", "Subscription.panelCaseUpdated",
                        "Mutation.panelGiveConsent", "Mutation.panelCompleteAction", "Mutation.panelUploadDocument"}),
    "CUSTOMER": frozenset({"Query.myCases", "Query.myCase", "Subscription.panelCaseUpdated"}),
}


def kind_may_call(kind: str, key: str) -> bool:
    """Whether a principal of `kind` may call root field `key` at all (staff kinds: their roles decide)."""
    allowed = OPERATIONS_BY_KIND.get(kind)
    return allowed is None or key in allowed or OPERATION_POLICY.get(key) is ANYONE

# Case types that only some case readers may see; every other case type is visible to all CASE_READERS.
CASE_TYPE_POLICY: dict[str, frozenset[str]] = {
    "LEASING": frozenset({"advisor", "back-office", "team-manager"}),
    "COMPLAINT": frozenset({"call-center", "back-office", "team-manager", "case-reader"}),
}

# Cases marked `restricted` (staff, VIPs, fraud) are visible only to these roles.
RESTRICTED_CASE_ROLES = frozenset({"team-manager"})

# A token that carries a `branch` claim sees only cases of that branch (organisational unit).
BRANCH_SCOPED = True
