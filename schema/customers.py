"""The customer 360 view."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from resolvers import cases as case_rules
from resolvers import customers as customer_rules
from resolvers import terms as terms_rules
from resolvers.notes import customer_notes
from schema.cases import Case, CaseFilter, CaseOrderInput, HistoryEntry, Offer, cases_connection
from schema.connections import Connection, connection_from_page
from schema.notes import Note
from schema.terms import NegotiatedTerms
from stores.case_criteria import CaseCriteria, Person


@strawberry.type
class CountByKey:
    key: str | None
    count: int


@strawberry.type
class CustomerSummary:
    open: int
    closed: int
    total: int
    by_status: list[CountByKey]
    by_channel: list[CountByKey]
    by_product: list[CountByKey]
    last_contact_at: datetime | None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> CustomerSummary:
        def counts(by_key: dict[str, int]) -> list[CountByKey]:
            return [CountByKey(key=k, count=n) for k, n in sorted(by_key.items(), key=lambda kv: (-kv[1], str(kv[0])))]

        return cls(
            open=doc["open"], closed=doc["closed"], total=doc["open"] + doc["closed"],
            by_status=counts(doc["byStatus"]), by_channel=counts(doc["byChannel"]),
            by_product=counts(doc["byProduct"]), last_contact_at=doc["lastContactAt"],
        )


@strawberry.type
class TimelineEntry(HistoryEntry):
    case_id: strawberry.ID

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TimelineEntry:
        entry = HistoryEntry.from_doc(doc)
        return cls(**{**entry.__dict__, "case_id": doc["caseId"]})


@strawberry.federation.type(keys=["id"])
class Customer:
    id: strawberry.ID
    name: str | None
    segment: str | None
    case_id: strawberry.Private[str | None]
    described_as: strawberry.Private[dict[str, Any]]

    @classmethod
    def from_doc(cls, doc: dict[str, Any], case_id: str | None = None) -> Customer:
        """`doc` is the customer as a case describes them; `case_id` names that case (their PESEL is bound to it)."""
        return cls(id=doc["id"], name=doc.get("name"), segment=doc.get("segment"),
                   case_id=case_id or doc.get("caseId"), described_as=doc)

    @strawberry.field(description="Shown full, masked or not at all by the access policy.")
    def pesel(self, info: Info) -> str | None:
        if self.case_id is None:
            return None
        return case_rules.customer_pesel(info.context, self.case_id, self.described_as)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Customer | None:
        doc = await customer_rules.get_customer(info.context, id)
        return cls.from_doc(doc) if doc else None

    @property
    def person(self) -> Person:
        """Whose cases the 360 follows: this customer's, and those where a participant has their PESEL."""
        return Person(self.id, self.described_as.get("peselIndex"))

    @strawberry.field(description="The customer's cases, including those where they are a participant (a "
                                  "co-applicant, by their PESEL); `filter` narrows them further.")
    async def cases(
        self, info: Info, filter: CaseFilter | None = None, order_by: CaseOrderInput | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[Case]:
        theirs = CaseCriteria(person=self.person)
        criteria = CaseCriteria(all_of=[theirs, filter.to_criteria()]) if filter else theirs
        return await cases_connection(info, criteria, order_by, first, after)

    @strawberry.field(description="Counts over the same cases as `cases`.")
    async def summary(self, info: Info) -> CustomerSummary:
        return CustomerSummary.from_doc(await customer_rules.customer_summary(info.context, self.person))

    @strawberry.field(description="Actions of all the customer's cases (as `cases`), newest first.")
    async def timeline(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[TimelineEntry]:
        page = await customer_rules.customer_timeline(info.context, self.person, first, after)
        return connection_from_page(page, TimelineEntry.from_doc)

    @strawberry.field(description="The offers of all the customer's cases (as `cases`), the most recently changed "
                                  "case first.")
    async def offers(self, info: Info) -> list[Offer]:
        return [Offer.from_doc(offer, case_id) for case_id, offer in
                await customer_rules.customer_offers(info.context, self.person)]

    @strawberry.field(description="The negotiated terms of the customer's visible cases, by case id.")
    async def negotiated_terms(self, info: Info) -> list[NegotiatedTerms]:
        return [NegotiatedTerms.from_doc(doc) for doc in await terms_rules.customer_terms(info.context, self.id)]

    @strawberry.field(description="Notes written on the customer (not on one of their cases), newest first.")
    async def notes(self, info: Info) -> list[Note]:
        return [Note.from_doc(doc) for doc in await customer_notes(info.context, self.id)]


@strawberry.type
class CustomerQueries:
    @strawberry.field(description="The customer 360 view.")
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        doc = await customer_rules.get_customer(info.context, id)
        return Customer.from_doc(doc) if doc else None

    @strawberry.field(description="The customer 360 found by PESEL (looked up by a keyed blind index).")
    async def customer_by_pesel(self, info: Info, pesel: str) -> Customer | None:
        doc = await customer_rules.find_customer_by_pesel(info.context, pesel)
        return Customer.from_doc(doc) if doc else None
