"""The request context: the only wiring between the app's services and the resolvers."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aiohttp import web
from strawberry.dataloader import DataLoader

from access.scope import case_scope
from auth.principal import Principal
from auth.tokens import TokenVerifier
from consumers.dead_letters import DeadLetters
from consumers.pipeline import EventPipeline
from consumers.relay import OutboxRelay
from consumers.staging import Staging
from consumers.updates import UpdatesBus
from settings import Settings
from stores.appointments import AppointmentStore
from stores.audit import AuditStore
from stores.calendar import CalendarStore
from stores.document_contents import DocumentContentStore
from stores.case_criteria import Person
from stores.case_scope import CaseScope
from stores.counters import WindowCounters
from stores.cases import CaseStore
from stores.events import EventStore
from stores.history import HistoryStore
from stores.notes import NoteStore
from stores.outbox import OutboxStore
from stores.panel_access import PanelStores
from stores.protection import FieldCipher
from stores.tasks import TaskStore
from stores.terms import TermsStore
from edge.refusal_limits import RefusalLimits
from edge.response_cache import ResponseCache


@dataclass(frozen=True)
class Services:
    """Long-lived services, built once per app in server.py."""

    settings: Settings
    cases: CaseStore
    events: EventStore
    history: HistoryStore
    tasks: TaskStore
    terms: TermsStore
    notes: NoteStore
    appointments: AppointmentStore
    calendar: CalendarStore
    outbox: OutboxStore
    staging: Staging
    relay: OutboxRelay
    pipeline: EventPipeline
    bus: UpdatesBus
    dead_letters: DeadLetters
    audit: AuditStore
    cipher: FieldCipher
    verifier: TokenVerifier
    responses: ResponseCache
    panel: PanelStores
    # Per principal: how many PESEL lookups they made in the current window (issue 11: masked means unrecoverable).
    lookups: WindowCounters
    documents: DocumentContentStore
    # Requests without a valid token: limited per client address, their refusals aggregated in the audit (issue 11).
    refusals: RefusalLimits


class Loaders:
    """Per-request DataLoaders: every path to a case, customer or task is batched into one store call.

    Each is made on first use: a request reads through one or two of them, and a DataLoader is not free to make."""

    def __init__(self, services: Services, scope: CaseScope) -> None:
        self._services = services
        self._scope = scope

    @cached_property
    def case(self) -> DataLoader[str, dict[str, Any] | None]:
        cases, scope = self._services.cases, self._scope
        return DataLoader(lambda ids: _in_order(cases.get_many(ids, scope=scope), ids))

    @cached_property
    def customer(self) -> DataLoader[str, dict[str, Any] | None]:
        cases, scope = self._services.cases, self._scope
        return DataLoader(lambda ids: _in_order(cases.latest_customer_snapshots(ids, scope=scope), ids))

    @cached_property
    def customer_summary(self) -> DataLoader[Person, dict[str, Any]]:
        cases, scope = self._services.cases, self._scope
        return DataLoader(lambda ids: _in_order(cases.customer_summaries(ids, scope=scope), ids))

    @cached_property
    def task(self) -> DataLoader[str, dict[str, Any] | None]:
        tasks, scope = self._services.tasks, self._scope
        return DataLoader(lambda ids: _in_order(_by_task_id(tasks.by_ids(ids, scope=scope)), ids))

    @cached_property
    def terms_of_case(self) -> DataLoader[str, dict[str, Any] | None]:
        terms, scope = self._services.terms, self._scope
        return DataLoader(lambda ids: _in_order(terms.of_cases(ids, scope=scope), ids))

    @cached_property
    def terms_of_customer(self) -> DataLoader[str, list[dict[str, Any]] | None]:
        terms, scope = self._services.terms, self._scope
        return DataLoader(lambda ids: _in_order(terms.of_customers(ids, scope=scope), ids))

    # Notes of cases and customers already read through the scope above; missing = no notes.
    @cached_property
    def case_notes(self) -> DataLoader[str, list[dict[str, Any]]]:
        notes = self._services.notes
        return DataLoader(lambda ids: _lists_in_order(notes.for_cases(ids), ids))

    @cached_property
    def customer_notes(self) -> DataLoader[str, list[dict[str, Any]]]:
        notes = self._services.notes
        return DataLoader(lambda ids: _lists_in_order(notes.for_customers(ids), ids))


async def _by_task_id(found: Any) -> dict[str, Any]:
    return {doc["id"]: doc for doc in await found}


async def _in_order(found: Any, ids: list[str]) -> list[Any]:
    by_id = await found
    return [by_id.get(i) for i in ids]


async def _lists_in_order(found: Any, ids: list[str]) -> list[list[Any]]:
    by_id = await found
    return [by_id.get(i, []) for i in ids]


@dataclass
class RequestAudit:
    """What one request read or wrote, collected while it runs and written as one audit record at its end."""

    case_ids: set[str] = field(default_factory=set)
    customer_ids: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    event_ids: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def cases_returned(self, docs: Any) -> None:
        for doc in docs:
            self.case_ids.add(doc.get("_id") or doc.get("id"))
            if doc.get("customerId"):
                self.customer_ids.add(doc["customerId"])

    def customer_returned(self, customer_id: str) -> None:
        self.customer_ids.add(customer_id)

    def revealed(self, key: str, level: str) -> None:
        self.fields.add(f"{key}:{level}")

    def applied(self, event_id: str, changes: list[dict[str, Any]]) -> None:
        self.event_ids.append(event_id)
        self.changes.extend(changes)


@dataclass
class Context:
    """One request (or one WebSocket connection): who is calling, through which channel, and what it saw."""

    services: Services
    request: web.Request | None = None
    response: web.StreamResponse | None = None
    principal: Principal | None = None
    channel: str | None = None
    audit_reason: str | None = None
    audit: RequestAudit = field(default_factory=RequestAudit)
    # Every case id asked for, found or not: a cached answer depends on all of them.
    case_lookups: set[str] = field(default_factory=set)
    # customerByPesel calls in this operation: one is served.
    pesel_lookups: int = 0
    # Set by Strawberry from the graphql-transport-ws connection_init payload.
    connection_params: dict[str, Any] | None = None

    def sign_in(self, principal: Principal) -> None:
        """A WebSocket connection signs in after its context exists: forget what was derived without it."""
        self.principal = principal
        # The token's claim wins over the handshake's X-Channel header, as it does over HTTP.
        self.channel = principal.channel or self.channel
        self.__dict__.pop("scope", None)
        self.begin_operation()

    def begin_operation(self) -> None:
        """A WebSocket connection shares one context across its operations: each starts with a clean record
        and fresh loaders, so it neither reports nor reads what an earlier one saw."""
        self.audit = RequestAudit()
        self.case_lookups = set()
        self.pesel_lookups = 0
        self.__dict__.pop("loaders", None)

    @cached_property
    def scope(self) -> CaseScope:
        return case_scope(self.principal)

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.services, self.scope)

    @property
    def settings(self) -> Settings:
        return self.services.settings
