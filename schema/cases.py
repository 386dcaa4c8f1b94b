"""The unified Case model (CONTRACT §3)."""
from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from access.sensitive_text import entry_aad, shown_text, shown_tree, text_aad
from resolvers import cases as case_rules
from resolvers import incidents as incident_rules
from resolvers import terms as terms_rules
from resolvers.codes import canonical_codes
from resolvers.notes import case_notes
from schema.connections import Connection, connection_from_page
from schema.notes import Note
from schema.terms import NegotiatedTerms
from stores.case_criteria import CaseCriteria, CaseOrder

if TYPE_CHECKING:
    from schema.customers import Customer
    from schema.tasks import Task


@strawberry.enum
class ActorType(Enum):
    USER = "USER"
    SYSTEM = "SYSTEM"
    CUSTOMER = "CUSTOMER"


@strawberry.type
class Actor:
    type: ActorType
    id: strawberry.ID
    name: str | None


@strawberry.type
class HistoryEntry:
    id: strawberry.ID
    kind: str
    actor: Actor
    channel: str | None
    at: datetime
    stored: strawberry.Private[dict[str, Any]]

    # Free text: a PESEL or phone in it was redacted at ingest; the policy decides who reads it back.
    @strawberry.field
    def summary(self, info: Info) -> str:
        return shown_text(info.context, "HistoryEntry.summary", self.stored, ["summary"], self.stored["summary"],
                          lambda: entry_aad(self.stored))

    @strawberry.field
    def details(self, info: Info) -> JSON | None:
        return shown_tree(info.context, "HistoryEntry.details", self.stored, "details", lambda: entry_aad(self.stored))

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> HistoryEntry:
        actor = doc["actor"]
        return cls(
            id=doc["id"], kind=doc["kind"], channel=doc.get("channel"), at=doc["at"], stored=doc,
            actor=Actor(type=ActorType(actor["type"]), id=actor["id"], name=actor.get("name")),
        )


@strawberry.type
class Product:
    code: str
    name: str
    amount: Decimal | None
    currency: str | None


@strawberry.type
class Participant:
    id: strawberry.ID
    role: str
    name: str
    case_id: strawberry.Private[str]
    sealed: strawberry.Private[dict[str, Any]]

    @strawberry.field(description="Shown full, masked or not at all by the access policy.")
    def phone(self, info: Info) -> str | None:
        return case_rules.participant_secret(info.context, self.case_id, self.sealed, "phone")

    @strawberry.field(description="Shown full, masked or not at all by the access policy.")
    def pesel(self, info: Info) -> str | None:
        return case_rules.participant_secret(info.context, self.case_id, self.sealed, "pesel")


@strawberry.type
class Document:
    id: strawberry.ID
    name: str
    kind: str
    status: str
    participant_id: strawberry.ID | None
    url: str | None = strawberry.field(description=(
        "The link to the document's content; null where the caller's channel hides document content (call center, "
        "customer channels, no channel)."))
    required: bool
    content_type: str | None = strawberry.field(default=None, description=(
        "The type of the content sent in the Customer Panel, as its bytes prove it (PDF, JPEG or PNG)."))
    size: int | None = strawberry.field(default=None, description="The content's size in bytes.")
    sha256: str | None = strawberry.field(default=None, description="The content's SHA-256 (hex).")
    uploaded_at: datetime | None = strawberry.field(default=None, description="When the content was sent.")


@strawberry.type
class Incident:
    id: strawberry.ID
    case_id: strawberry.ID
    kind: str
    service: str | None
    retryable: bool | None
    at: datetime | None
    state: str
    attempts: int = strawberry.field(description="Failures the engine reported: the first raise is attempt 1.")
    last_retry_by: str | None = strawberry.field(description="Username of whoever last asked for a retry.")
    last_retry_at: datetime | None
    stored: strawberry.Private[dict[str, Any]]

    @strawberry.field
    def message(self, info: Info) -> str | None:
        return shown_text(info.context, "Incident.message", self.stored, ["message"], self.stored.get("message"),
                          lambda: text_aad("cases", self.case_id, "incidents", str(self.id)))

    @strawberry.field(description="NONE, PENDING_RETRY, RESOLVED (the engine said so), FAILED_AGAIN (the engine "
                                  "raised it again) or TIMED_OUT (no answer within INCIDENT_RETRY_TIMEOUT_SECONDS).")
    def retry_state(self, info: Info) -> str:
        return incident_rules.retry_state(info.context, self.stored)

    @classmethod
    def from_doc(cls, doc: dict[str, Any], case_id: str) -> Incident:
        return cls(
            id=doc["id"], case_id=case_id, kind=doc.get("kind") or "",
            service=doc.get("service"), retryable=doc.get("retryable"), at=doc.get("at"), state=doc["state"],
            # Incidents stored before attempts were counted had been raised once.
            attempts=doc.get("attempts") or (1 if doc.get("kind") else 0),
            last_retry_by=doc.get("lastRetryBy"), last_retry_at=doc.get("lastRetryAt"), stored=doc,
        )


@strawberry.type
class Process:
    engine: str
    definition_key: str
    instance_id: str
    bpmn_url: str | None


@strawberry.type
class Form:
    id: strawberry.ID
    key: str
    name: str | None
    url: str | None
    status: str | None


@strawberry.type
class Consent:
    id: strawberry.ID
    participant_id: strawberry.ID | None
    kind: str | None
    required: bool | None
    state: str = strawberry.field(description="REQUESTED until the participant answers, then GRANTED or DECLINED.")
    answered_at: datetime | None = strawberry.field(default=None, description="When the participant answered.")
    case_id: strawberry.Private[str] = ""
    stored: strawberry.Private[dict[str, Any] | None] = None

    @strawberry.field
    def text(self, info: Info) -> str | None:
        stored = self.stored or {}
        return shown_text(info.context, "Consent.text", stored, ["text"], stored.get("text"),
                          lambda: text_aad("cases", self.case_id, "consents", str(self.id)))


@strawberry.type
class Offer:
    id: strawberry.ID
    case_id: strawberry.ID
    product_code: str | None
    name: str | None
    amount: Decimal | None
    currency: str | None
    rate: Decimal | None
    term_months: int | None
    valid_until: datetime | None
    status: str | None

    @classmethod
    def from_doc(cls, doc: dict[str, Any], case_id: str) -> Offer:
        return cls(case_id=case_id, **{name: doc.get(stored) for name, stored in _OFFER})


def consent_items(docs: list[dict[str, Any]], case_id: str) -> list[Consent]:
    """Consents from stored dicts; each keeps its stored form, whose free text the policy reveals."""
    return [Consent(**{name: doc.get(stored) for name, stored in _CONSENT}, case_id=case_id, stored=doc)
            for doc in docs]


def _items(cls: type, docs: list[dict[str, Any]], names: tuple[str, ...]) -> list[Any]:
    """Build list items from stored dicts; stored names are camelCase, Python names snake_case."""
    return [cls(**{name: doc.get(stored) for name, stored in names}) for doc in docs]


def _fields(*names: str) -> tuple[tuple[str, str], ...]:
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    return tuple((name, camel(name)) for name in names)


_DOCUMENT = _fields("id", "name", "kind", "status", "participant_id", "url", "required", "content_type", "size",
                    "sha256", "uploaded_at")
_PROCESS = _fields("engine", "definition_key", "instance_id", "bpmn_url")
_FORM = _fields("id", "key", "name", "url", "status")
_CONSENT = _fields("id", "participant_id", "kind", "required", "state", "answered_at")
_OFFER = _fields("id", "product_code", "name", "amount", "currency", "rate", "term_months", "valid_until", "status")


@strawberry.federation.type(keys=["id"])
class Case:
    id: strawberry.ID
    case_type: str
    status: str
    stage: str | None
    channel: str
    branch: str | None
    source_system: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    outcome: str | None
    version: int
    due_at: datetime | None = strawberry.field(description="The case's deadline, if its process set one.")
    doc: strawberry.Private[dict[str, Any]]

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Case:
        return cls(
            id=doc.get("_id") or doc["id"], case_type=doc["caseType"], status=doc["status"],
            stage=doc.get("stage"), channel=doc["channel"], branch=doc.get("branch"),
            source_system=doc["sourceSystem"], created_at=doc["createdAt"], updated_at=doc["updatedAt"],
            closed_at=doc.get("closedAt"), outcome=doc.get("outcome"), version=doc["version"],
            due_at=doc.get("dueAt"), doc=doc,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Case | None:
        doc = await case_rules.get_case(info.context, id)
        return cls.from_doc(doc) if doc else None

    @strawberry.field
    def title(self, info: Info) -> str:
        return shown_text(info.context, "Case.title", self.doc, ["title"], self.doc["title"],
                          lambda: text_aad("cases", self.id))

    @strawberry.field
    def customer(self) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        from schema.customers import Customer

        return Customer.from_doc(self.doc["customer"], case_id=self.id)

    @strawberry.field
    def product(self) -> Product | None:
        product = self.doc.get("product")
        if not product:
            return None
        return Product(code=product["code"], name=product["name"],
                       amount=product.get("amount"), currency=product.get("currency"))

    @strawberry.field
    def participants(self) -> list[Participant]:
        return [Participant(id=p["id"], role=p["role"], name=p["name"], case_id=self.id, sealed=p)
                for p in self.doc.get("participants", [])]

    @strawberry.field
    def documents(self) -> list[Document]:
        return _items(Document, self.doc.get("documents", []), _DOCUMENT)

    @strawberry.field
    def tasks(self) -> list[Annotated[Task, strawberry.lazy("schema.tasks")]]:
        from schema.tasks import Task

        return [Task.from_doc(task, self.id) for task in self.doc.get("tasks", [])]

    @strawberry.field
    def incidents(self) -> list[Incident]:
        return [Incident.from_doc(incident, self.id) for incident in self.doc.get("incidents", [])]

    @strawberry.field
    def processes(self) -> list[Process]:
        return _items(Process, self.doc.get("processes") or [], _PROCESS)

    @strawberry.field
    def forms(self) -> list[Form]:
        return _items(Form, self.doc.get("forms") or [], _FORM)

    @strawberry.field
    def consents(self) -> list[Consent]:
        return consent_items(self.doc.get("consents", []), self.id)

    @strawberry.field
    def offers(self) -> list[Offer]:
        return [Offer.from_doc(offer, self.id) for offer in self.doc.get("offers", [])]

    @strawberry.field(description="The current negotiated terms with every version (roles: access/policy.py).")
    async def negotiated_terms(self, info: Info) -> NegotiatedTerms | None:
        doc = await terms_rules.case_terms(info.context, self.id)
        return NegotiatedTerms.from_doc(doc) if doc else None

    @strawberry.field
    def has_open_incident(self) -> bool:
        return bool(self.doc.get("hasOpenIncident"))

    @strawberry.field(description="The case's actions, newest first.")
    async def history(self, info: Info, first: int | None = None,
                      after: str | None = None) -> Connection[HistoryEntry]:
        # One read per page of this object: `_entities` hands one Case to every copy of a representation
        # (schema/entities.py), and graphql-core resolves the copies' fields concurrently.
        pages = self.__dict__.setdefault("_history_pages", {})
        if (first, after) not in pages:
            pages[(first, after)] = asyncio.ensure_future(
                case_rules.history_page(self.doc, info.context, first, after))
        return connection_from_page(await pages[(first, after)], HistoryEntry.from_doc)

    @strawberry.field(description="Notes written on the case, newest first.")
    async def notes(self, info: Info) -> list[Note]:
        return [Note.from_doc(doc) for doc in await case_notes(info.context, self.id)]


@strawberry.enum
class CaseOrderField(Enum):
    UPDATED_AT = "UPDATED_AT"
    CREATED_AT = "CREATED_AT"
    STATUS = "STATUS"
    CASE_TYPE = "CASE_TYPE"
    ID = "ID"


@strawberry.enum
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input
class CaseOrderInput:
    field: CaseOrderField = CaseOrderField.UPDATED_AT
    direction: OrderDirection = OrderDirection.DESC

    def to_order(self) -> CaseOrder:
        return CaseOrder(field=self.field.value, descending=self.direction is OrderDirection.DESC)


@strawberry.input(description="Every given condition must hold; `and`/`or` combine nested filters.")
class CaseFilter:
    customer_id: strawberry.ID | None = None
    case_type: list[str] | None = None
    status: list[str] | None = None
    stage: list[str] | None = None
    channel: list[str] | None = None
    has_open_incident: bool | None = None
    open: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    text: str | None = None
    and_: list[CaseFilter] | None = strawberry.field(default=None, name="and")
    or_: list[CaseFilter] | None = strawberry.field(default=None, name="or")

    def to_criteria(self) -> CaseCriteria:
        return CaseCriteria(
            customer_id=self.customer_id, case_type=canonical_codes(self.case_type, "caseType"), status=self.status,
            stage=self.stage, channel=canonical_codes(self.channel, "channel"), has_open_incident=self.has_open_incident, is_open=self.open,
            created_from=self.created_from, created_to=self.created_to, updated_from=self.updated_from,
            updated_to=self.updated_to, text=self.text,
            all_of=[f.to_criteria() for f in self.and_ or []], any_of=[f.to_criteria() for f in self.or_ or []],
        )


async def cases_connection(
    info: Info, criteria: CaseCriteria | None, order_by: CaseOrderInput | None, first: int | None, after: str | None,
) -> Connection[Case]:
    order = (order_by or CaseOrderInput()).to_order()
    parts = case_rules.selected_case_parts(info.selected_fields[0])
    page = await case_rules.list_cases(info.context, criteria, order, first, after, parts)
    return connection_from_page(page, Case.from_doc)


@strawberry.type
class CaseQueries:
    @strawberry.field(description="The case now, or with `asOf` as it stood at that moment (rebuilt from its events "
                                  "up to then; null if it did not exist yet).")
    async def case(self, info: Info, id: strawberry.ID, as_of: datetime | None = None) -> Case | None:
        if as_of is None:
            doc = await case_rules.get_case(info.context, id)
        else:
            doc = await case_rules.get_case_as_of(info.context, id, as_of)
        return Case.from_doc(doc) if doc else None

    @strawberry.field
    async def cases(
        self, info: Info, filter: CaseFilter | None = None, order_by: CaseOrderInput | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[Case]:
        return await cases_connection(info, filter.to_criteria() if filter else None, order_by, first, after)
