"""Negotiated credit terms of a case: record a new version, approve the current one, read them (issue 10).

Rules (CONTRACT §5 "Dashboard"; who may call what is access/policy.py's TERMS_* rows):

* recordNegotiatedTerms: the case must be visible to the caller (else NOT_FOUND); the margin must lie within
  [marginMin, marginMax] (else BAD_USER_INPUT naming the range); each recording is a new version with who
  (`preferred_username`) and when, and its monthly installment computed from amount, rate and term
  (resolvers/installments.py). Rates and margins are percentages (6.85 = 6.85 % a year); `rate` is the whole
  annual rate the installment is computed from, the margin the bank's part of it.
* approveNegotiatedTerms: the current version becomes approved (who, when) and `terms.approved`
  {caseId, termsVersion, approvedBy} goes out on `case-commands`, staged in the same single-document update and
  relayed right after (consumers/staging.py `relay_records`). Approving an approved version returns it and sends nothing.
* Each recording and approval also stages `case.terms_changed` {caseId, the case's visibility, termsVersion,
  change (TERMS_RECORDED, TERMS_APPROVED), by} for `case-updates`: every instance's response cache forgets the
  case's answers (`Case.negotiatedTerms`), this one's through its own bus.
* Writes are conditional on the version read; a lost race is decided again on the document as it is now.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from auth.principal import Principal
from consumers.publication import SOURCE, TERMS_CHANGED, record_event
from context import Context
from resolvers.employees import employee
from errors import BadInput, Conflict, NotFound
from resolvers.cases import get_case
from resolvers.installments import monthly_installment
from stores.outbox import COMMANDS, UPDATES, Message
from stores.terms import VISIBILITY_FIELDS

MAX_ATTEMPTS = 3
MAX_PERCENT = Decimal("100")
_CURRENCY = re.compile(r"[A-Z]{3}")
# The version fields a recording sets, compared with the previous version for the audit record.
TERMS_FIELDS = ("rate", "margin", "marginMin", "marginMax", "amount", "currency", "termMonths", "fees",
                "validUntil", "monthlyInstallment")


@dataclass(frozen=True)
class TermsProposal:
    """What an employee negotiated, as given (schema/terms.py's NegotiatedTermsInput)."""

    rate: Decimal
    margin: Decimal
    margin_min: Decimal
    margin_max: Decimal
    amount: Decimal
    currency: str
    term_months: int
    fees: Decimal
    valid_until: date


def _percent(name: str, value: Decimal) -> None:
    if not value.is_finite() or not Decimal(0) <= value <= MAX_PERCENT:
        raise BadInput(f"{name}: a percentage from 0 to {MAX_PERCENT}")


def terms_version(proposal: TermsProposal, number: int, by: str, at: datetime) -> dict[str, Any]:
    """The stored version for `proposal`; BadInput for a margin outside its range or a value out of bounds."""
    for name in ("rate", "margin", "margin_min", "margin_max"):
        _percent(re.sub(r"_(\w)", lambda m: m.group(1).upper(), name), getattr(proposal, name))
    if proposal.margin_min > proposal.margin_max:
        raise BadInput(f"marginMin {proposal.margin_min} is above marginMax {proposal.margin_max}")
    if not proposal.margin_min <= proposal.margin <= proposal.margin_max:
        raise BadInput(f"margin {proposal.margin} is outside the allowed range "
                       f"[{proposal.margin_min}, {proposal.margin_max}]")
    if not _CURRENCY.fullmatch(proposal.currency):
        raise BadInput("currency: an ISO 4217 code such as PLN")
    if not proposal.fees.is_finite() or proposal.fees < 0:
        raise BadInput("fees: 0 or more")
    installment = monthly_installment(proposal.amount, proposal.rate, proposal.term_months)
    return {
        "version": number, "rate": str(proposal.rate), "margin": str(proposal.margin),
        "marginMin": str(proposal.margin_min), "marginMax": str(proposal.margin_max),
        "amount": str(proposal.amount), "currency": proposal.currency, "termMonths": proposal.term_months,
        "fees": str(proposal.fees), "validUntil": proposal.valid_until.isoformat(),
        "monthlyInstallment": str(installment), "recordedBy": by, "recordedAt": at,
    }


def current_version(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["versions"][doc["current"] - 1]


async def case_terms(context: Context, case_id: str) -> dict[str, Any] | None:
    """The terms of a case (batched: N cases asking cost one store read)."""
    return await context.loaders.terms_of_case.load(case_id)


async def customer_terms(context: Context, customer_id: str) -> list[dict[str, Any]]:
    """The terms of the customer's visible cases, by case id (batched like case_terms)."""
    return await context.loaders.terms_of_customer.load(customer_id) or []


async def record_terms(context: Context, case_id: str, proposal: TermsProposal) -> dict[str, Any]:
    principal = employee(context, "negotiate and approve terms")
    case = await get_case(context, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    # The case's visibility as it is now: the terms' row scope follows the case at each recording.
    visibility = {name: case.get(name) for name in VISIBILITY_FIELDS}
    customer_id = visibility["customerId"]
    terms = context.services.terms
    for _attempt in range(MAX_ATTEMPTS):
        existing = await terms.get(case_id)
        number = existing["current"] if existing else 0
        now = datetime.now(timezone.utc)
        version = terms_version(proposal, number + 1, principal.username, now)
        changed = _terms_changed({"caseId": case_id, **visibility}, number + 1, "TERMS_RECORDED", principal, now)
        written = await terms.record(case_id, visibility, version, number, [changed])
        if written is not None:
            previous = current_version(existing) if existing else {}
            _audited(context, case_id, customer_id, [("version", number or None, number + 1)] + [
                (name, previous.get(name), version[name]) for name in TERMS_FIELDS if previous.get(name) != version[name]])
            # The fast path; if this process stops first, the relay loop sends what the document staged.
            await context.services.staging.relay_records(terms, [written])
            return written
    raise Conflict(f"the terms of case {case_id} kept changing; read them again")


async def approve_terms(context: Context, case_id: str) -> dict[str, Any]:
    principal = employee(context, "negotiate and approve terms")
    if await get_case(context, case_id) is None:
        raise NotFound(f"case {case_id} not found")
    terms = context.services.terms
    doc = await terms.get(case_id)
    if doc is None:
        raise NotFound(f"case {case_id} has no negotiated terms to approve")
    context.audit.customer_ids.add(doc.get("customerId"))
    number = doc["current"]
    if current_version(doc).get("approvedBy"):
        await context.services.staging.relay_records(terms, [doc])  # what a stopped writer left, if anything; nothing new
        return doc
    now = datetime.now(timezone.utc)
    written = await terms.approve(case_id, number, principal.username, now, [
        _approved_command(case_id, number, principal.username, now),
        _terms_changed(doc, number, "TERMS_APPROVED", principal, now)])
    if written is None:
        again = await terms.get(case_id)
        if again is not None and again["current"] == number and current_version(again).get("approvedBy"):
            return again  # a concurrent approval of the same version won; it sent the command
        raise Conflict(f"the terms of case {case_id} changed while being approved; read them again")
    _audited(context, case_id, doc.get("customerId"), [
        (f"versions[{number}].approvedBy", None, principal.username)])
    # The fast path; if this process stops first, the relay loop sends what the document staged.
    await context.services.staging.relay_records(terms, [written])
    return written


def _approved_command(case_id: str, number: int, by: str, now: datetime) -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    event = {
        "specversion": "1.0", "id": event_id, "source": SOURCE, "type": "terms.approved", "subject": case_id,
        "time": now.isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
        "data": {"caseId": case_id, "termsVersion": number, "approvedBy": by},
    }
    return Message(id=event_id, topic=COMMANDS, key=case_id, event=event).staged()


def _terms_changed(doc: dict[str, Any], number: int, change: str, by: Principal, now: datetime) -> dict[str, Any]:
    """`case.terms_changed` for `case-updates`, staged with the write (`doc` carries the case id and visibility)."""
    event = record_event(TERMS_CHANGED, str(uuid.uuid4()), doc, now,
                         {"termsVersion": number, "change": change, "by": by.username})
    return Message(id=event["id"], topic=UPDATES, key=doc["caseId"], event=event).staged()


def _audited(context: Context, case_id: str, customer_id: str | None, changes: list[tuple[str, Any, Any]]) -> None:
    context.audit.case_ids.add(case_id)
    if customer_id:
        context.audit.customer_ids.add(customer_id)
    context.audit.changes.extend({"caseId": case_id, "field": f"negotiatedTerms.{name}", "old": old, "new": new}
                                 for name, old, new in changes)

