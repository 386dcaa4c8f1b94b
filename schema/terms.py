"""Negotiated credit terms: types, the what-if `installment` query and the record/approve mutations.

Rules in resolvers/terms.py; the installment formula and its rounding in resolvers/installments.py.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types import Info

from resolvers import terms as terms_rules
from resolvers.installments import monthly_installment

_PERCENT = "a percentage: 6.85 = 6.85 % a year"
_HIDDEN = "null where the caller's channel hides pricing internals (call center, customer channels, no channel)."


@strawberry.type(description="One recorded version of a case's negotiated terms, with who recorded it and when.")
class NegotiatedTermsVersion:
    version: int
    rate: Decimal = strawberry.field(description=f"The whole annual interest rate, {_PERCENT}.")
    # Pricing internals: null where the channel's view hides them (access/policy.py CHANNEL_VIEWS).
    margin: Decimal | None = strawberry.field(
        description=f"The bank's margin within the rate, percentage points; {_HIDDEN}")
    margin_min: Decimal | None = strawberry.field(
        description=f"The lowest margin allowed, percentage points; {_HIDDEN}")
    margin_max: Decimal | None = strawberry.field(
        description=f"The highest margin allowed, percentage points; {_HIDDEN}")
    amount: Decimal
    currency: str
    term_months: int
    fees: Decimal | None = strawberry.field(description=f"One-off fees, in `currency`; {_HIDDEN}")
    valid_until: date
    monthly_installment: Decimal = strawberry.field(
        description="The annuity installment from amount, rate and term, rounded to 0.01 half up.")
    recorded_by: str
    recorded_at: datetime
    approved_by: str | None
    approved_at: datetime | None

    @staticmethod
    def fields_of(version: dict[str, Any]) -> dict[str, Any]:
        return {
            "version": version["version"], "rate": Decimal(version["rate"]), "margin": Decimal(version["margin"]),
            "margin_min": Decimal(version["marginMin"]), "margin_max": Decimal(version["marginMax"]),
            "amount": Decimal(version["amount"]), "currency": version["currency"],
            "term_months": version["termMonths"], "fees": Decimal(version["fees"]),
            "valid_until": date.fromisoformat(version["validUntil"]),
            "monthly_installment": Decimal(version["monthlyInstallment"]), "recorded_by": version["recordedBy"],
            "recorded_at": version["recordedAt"], "approved_by": version.get("approvedBy"),
            "approved_at": version.get("approvedAt"),
        }

    @classmethod
    def from_doc(cls, version: dict[str, Any]) -> NegotiatedTermsVersion:
        return cls(**cls.fields_of(version))


@strawberry.type(description="A case's negotiated terms: the current version's fields, and every version in order.")
class NegotiatedTerms(NegotiatedTermsVersion):
    case_id: strawberry.ID
    customer_id: strawberry.ID | None
    versions: list[NegotiatedTermsVersion]

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> NegotiatedTerms:
        return cls(**NegotiatedTermsVersion.fields_of(terms_rules.current_version(doc)),
                   case_id=doc["caseId"], customer_id=doc.get("customerId"),
                   versions=[NegotiatedTermsVersion.from_doc(v) for v in doc["versions"]])


@strawberry.input(description=f"Terms as negotiated; rate and margins are percentages (6.85 = 6.85 %).")
class NegotiatedTermsInput:
    rate: Decimal
    margin: Decimal
    margin_min: Decimal
    margin_max: Decimal
    amount: Decimal
    currency: str
    term_months: int
    fees: Decimal
    valid_until: date

    def to_proposal(self) -> terms_rules.TermsProposal:
        return terms_rules.TermsProposal(
            rate=self.rate, margin=self.margin, margin_min=self.margin_min, margin_max=self.margin_max,
            amount=self.amount, currency=self.currency, term_months=self.term_months, fees=self.fees,
            valid_until=self.valid_until)


@strawberry.type
class TermsQueries:
    @strawberry.field(description=(
        "What-if: the monthly installment of an annuity loan, saving nothing. `annualRate` is a percentage "
        "(6.85 = 6.85 % a year; 0 to 100), `termMonths` 1 to 600, `amount` above 0. A = P·r/(1−(1+r)^−n) with "
        "r = annualRate/1200 (P/n at 0 %), exact decimal arithmetic, rounded to 0.01 with ROUND_HALF_UP."))
    def installment(self, amount: Decimal, annual_rate: Decimal, term_months: int) -> Decimal:
        return monthly_installment(amount, annual_rate, term_months)


@strawberry.type
class TermsMutations:
    @strawberry.mutation(description="Record a new version of the case's negotiated terms; BAD_USER_INPUT when the "
                                     "margin is outside [marginMin, marginMax].")
    async def record_negotiated_terms(self, info: Info, case_id: strawberry.ID,
                                      input: NegotiatedTermsInput) -> NegotiatedTerms:
        return NegotiatedTerms.from_doc(await terms_rules.record_terms(info.context, case_id, input.to_proposal()))

    @strawberry.mutation(description="Approve the current version of the case's terms; sends `terms.approved` on "
                                     "`case-commands` (approving an approved version sends nothing new).")
    async def approve_negotiated_terms(self, info: Info, case_id: strawberry.ID) -> NegotiatedTerms:
        return NegotiatedTerms.from_doc(await terms_rules.approve_terms(info.context, case_id))
