"""A realistic small bank day: a mortgage with a co-borrower, a card with an incident, a complaint, ..."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from consumers.cloudevents import parse_envelope
from consumers.pipeline import EventPipeline

START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)

ANNA = {"id": "CUST-1001", "name": "Anna Kowalska", "pesel": "85031207819", "segment": "RETAIL"}
PIOTR = {"id": "CUST-1002", "name": "Piotr Nowak", "pesel": "90072412344", "segment": "AFFLUENT"}
ZOFIA = {"id": "CUST-1003", "name": "Zofia Wiśniewska", "pesel": "78010156787", "segment": "RETAIL"}
FIRM = {"id": "CUST-2001", "name": "Kowalski Transport sp. z o.o.", "segment": "SME"}


class _Case:
    """Builds one case's events with increasing sequence numbers and times."""

    def __init__(self, case_id: str, source: str, start: datetime) -> None:
        self.case_id, self.source, self.at, self.sequence = case_id, source, start, 0
        self.events: list[dict[str, Any]] = []

    def add(self, event_type: str, data: dict[str, Any], minutes: int = 30) -> _Case:
        self.sequence += 1
        self.at += timedelta(minutes=minutes)
        self.events.append({
            "specversion": "1.0", "id": f"{self.case_id}-e{self.sequence:03d}", "source": self.source,
            "type": event_type, "subject": self.case_id, "time": self.at.isoformat(),
            "sequence": str(self.sequence), "datacontenttype": "application/json", "data": data,
        })
        return self

    def action(self, kind: str, summary: str, actor: dict[str, Any], channel: str) -> _Case:
        action_id = f"{self.case_id}-a{self.sequence + 1:03d}"
        return self.add("case.action_recorded", {"action": {
            "id": action_id, "kind": kind, "summary": summary, "actor": actor, "channel": channel,
            "at": (self.at + timedelta(minutes=30)).isoformat()}})


ADVISOR = {"type": "USER", "id": "u-ewa", "name": "Ewa Zielińska (advisor)"}
AGENT = {"type": "USER", "id": "u-marek", "name": "Marek Lis (call center)"}
ENGINE = {"type": "SYSTEM", "id": "bpms", "name": "Process engine"}


def _mortgage() -> _Case:
    case = _Case("CASE-2026-000123", "bpms/mortgage", START)
    case.add("case.created", {
        "caseType": "MORTGAGE", "title": "Mortgage 350,000 PLN – flat in Kraków", "channel": "BRANCH",
        "branch": "KRK-01", "sourceSystem": "branch-frontend", "customer": ANNA,
        "product": {"code": "MORT-FIX5", "name": "Mortgage, 5-year fixed rate", "amount": "350000.00",
                    "currency": "PLN"},
        "status": "IN_PROGRESS", "stage": "APPLICATION", "dueAt": "2026-12-15T16:00:00+00:00",
        "participants": [
            {"id": "P-1", "role": "PRIMARY_BORROWER", "name": ANNA["name"], "phone": "+48601200300",
             "pesel": ANNA["pesel"]},
        ],
        "processes": [{"engine": "camunda8", "definitionKey": "mortgage-origination",
                       "instanceId": "2251799813685249", "bpmnUrl": "https://bpms.bank.local/processes/2251799813685249"}],
        "forms": [{"id": "F-1", "key": "mortgage-application", "name": "Mortgage application", "status": "SUBMITTED"}],
    })
    case.add("case.participant_added", {"participant": {
        "id": "P-2", "role": "CO_BORROWER", "name": PIOTR["name"], "phone": "+48602300400", "pesel": PIOTR["pesel"]}})
    case.action("MEETING", "Application signed at the branch", ADVISOR, "BRANCH")
    case.add("case.document_linked", {"document": {
        "id": "D-1", "name": "Income statement – Anna", "kind": "INCOME_STATEMENT", "status": "RECEIVED",
        "participantId": "P-1", "required": True}})
    case.add("case.document_linked", {"document": {
        "id": "D-2", "name": "Income statement – Piotr", "kind": "INCOME_STATEMENT", "status": "MISSING",
        "participantId": "P-2", "required": True}})
    case.add("case.document_linked", {"document": {
        "id": "D-3", "name": "Property valuation", "kind": "VALUATION", "status": "ORDERED", "required": True}})
    case.add("case.status_changed", {"status": "IN_PROGRESS", "stage": "ANALYSIS"})
    case.add("case.task_created", {"task": {
        "id": "T-123-1", "name": "Verify income documents", "formKey": "verify-income",
        "candidateGroups": ["back-office"], "state": "CREATED", "dueAt": "2026-11-06T16:00:00+00:00"}})
    case.add("case.task_created", {"task": {
        "id": "T-123-2", "name": "Upload income statement", "candidateGroups": [], "participantId": "P-2",
        "state": "CREATED"}})
    case.add("case.consent_requested", {"consent": {
        "id": "C-1", "participantId": "P-2", "kind": "CREDIT_BUREAU", "required": True,
        "text": "I consent to the bank checking my credit history in BIK."}})
    case.add("case.offer_presented", {"offer": {
        "id": "O-1", "productCode": "MORT-FIX5", "name": "Fixed 5y, 25 years", "amount": "350000.00",
        "currency": "PLN", "rate": "6.85", "termMonths": 300, "validUntil": "2026-12-15T00:00:00+00:00",
        "status": "PRESENTED"}})
    case.action("CALL", "Co-borrower asked about the missing document", AGENT, "CALL_CENTER")
    case.add("case.task_created", {"task": {
        "id": "T-123-3", "name": "Prepare the credit decision", "formKey": "credit-decision",
        "candidateGroups": ["mortgage-advisors"], "state": "CREATED", "priority": 80,
        "dueAt": "2026-12-10T15:00:00+00:00"}})
    case.add("case.task_created", {"task": {
        "id": "T-123-4", "name": "Call the co-borrower about the missing income statement",
        "candidateGroups": ["mortgage-advisors"], "assignee": "anna.nowak", "state": "ASSIGNED", "priority": 50,
        "dueAt": "2026-12-03T10:00:00+00:00"}})
    # The primary borrower's own part, beside the co-borrower's (T-123-2, C-1, D-2): each signs in to the Customer
    # Panel and sees only theirs.
    case.add("case.task_created", {"task": {
        "id": "T-123-5", "name": "Confirm your employment details", "candidateGroups": [], "participantId": "P-1",
        "state": "CREATED"}})
    case.add("case.consent_requested", {"consent": {
        "id": "C-2", "participantId": "P-1", "kind": "CREDIT_BUREAU", "required": True,
        "text": "I consent to the bank checking my credit history in BIK."}})
    return case


def _card_with_incident() -> _Case:
    case = _Case("CASE-2026-000124", "bpms/cards", START + timedelta(days=1))
    case.add("case.created", {
        "caseType": "CREDIT_CARD", "title": "Credit card application", "channel": "ONLINE",
        "sourceSystem": "online-banking", "customer": PIOTR,
        "product": {"code": "CARD-GOLD", "name": "Gold credit card", "amount": "20000.00", "currency": "PLN"},
        "status": "IN_PROGRESS", "stage": "SCORING",
        "participants": [{"id": "P-1", "role": "APPLICANT", "name": PIOTR["name"], "phone": "+48602300400",
                          "pesel": PIOTR["pesel"]}],
        "processes": [{"engine": "camunda8", "definitionKey": "card-origination", "instanceId": "2251799813690001"}],
    })
    case.add("case.incident_raised", {"incident": {
        "id": "I-1", "kind": "SERVICE_TIMEOUT", "message": "Credit bureau did not answer within 30 s",
        "service": "bik-gateway", "retryable": True, "at": (case.at + timedelta(minutes=1)).isoformat()}})
    case.add("case.status_changed", {"status": "ON_HOLD", "stage": "SCORING", "reason": "credit bureau timeout"})
    case.add("case.incident_raised", {"incident": {
        "id": "I-2", "kind": "DATA_ERROR", "message": "Declared income is missing from the application form",
        "service": "card-scoring", "retryable": False, "at": (case.at + timedelta(minutes=1)).isoformat()}})
    case.add("case.task_created", {"task": {
        "id": "T-124-1", "name": "Complete the declared income with the customer", "candidateGroups": ["back-office"],
        "state": "CREATED", "dueAt": "2026-12-02T12:00:00+00:00"}})
    return case


def _closed_loan() -> _Case:
    case = _Case("CASE-2026-000098", "bpms/loans", START - timedelta(days=20))
    case.add("case.created", {
        "caseType": "CASH_LOAN", "title": "Cash loan 15,000 PLN", "channel": "MOBILE",
        "sourceSystem": "mobile-app", "customer": ANNA,
        "product": {"code": "LOAN-CASH", "name": "Cash loan", "amount": "15000.00", "currency": "PLN"},
        "status": "NEW", "stage": "APPLICATION",
        "participants": [{"id": "P-1", "role": "APPLICANT", "name": ANNA["name"], "phone": "+48601200300",
                          "pesel": ANNA["pesel"]}],
    })
    case.add("case.status_changed", {"status": "DECISION", "stage": "DECISION"}, minutes=60)
    case.add("case.closed", {"outcome": "APPROVED", "at": (case.at + timedelta(hours=2)).isoformat()}, minutes=120)
    return case


def _archived_account() -> _Case:
    case = _Case("CASE-2025-004410", "core/accounts", START - timedelta(days=400))
    case.add("case.created", {
        "caseType": "ACCOUNT_OPENING", "title": "Personal account opening", "channel": "BRANCH", "branch": "WAW-03",
        "sourceSystem": "branch-frontend", "customer": ZOFIA,
        "product": {"code": "ACC-PERS", "name": "Personal account"}, "status": "NEW", "stage": "KYC",
    })
    case.add("case.closed", {"outcome": "COMPLETED", "at": (case.at + timedelta(days=1)).isoformat()}, minutes=60)
    case.add("case.status_changed", {"status": "ARCHIVED", "stage": "ARCHIVE", "reason": "retention"},
             minutes=60 * 24 * 300)
    return case


def _complaint() -> _Case:
    case = _Case("CASE-2026-000131", "crm/complaints", START + timedelta(days=3))
    case.add("case.created", {
        "caseType": "COMPLAINT", "title": "Complaint: double card charge", "channel": "CALL_CENTER",
        "sourceSystem": "crm", "customer": ZOFIA, "restricted": False,
        "product": {"code": "ACC-PERS", "name": "Personal account"}, "status": "NEW", "stage": "REGISTERED",
    })
    case.action("CALL", "Customer reported a double charge of 249.99 PLN", AGENT, "CALL_CENTER")
    case.add("case.task_created", {"task": {
        "id": "T-131-1", "name": "Investigate card transaction", "candidateGroups": ["back-office"],
        "assignee": "jan.wisniewski", "state": "ASSIGNED", "dueAt": "2026-11-20T16:00:00+00:00"}})
    case.add("case.task_created", {"task": {
        "id": "T-131-2", "name": "Call the customer back with the outcome", "candidateGroups": ["call-center"],
        "state": "CREATED", "dueAt": "2026-12-04T09:00:00+00:00"}})
    # A second kind of case in the Customer Panel: other words, a 30-day window, and one participant.
    case.add("case.participant_added", {"participant": {
        "id": "P-1", "role": "CUSTOMER", "name": ZOFIA["name"], "phone": "+48603400500", "pesel": ZOFIA["pesel"]}})
    case.add("case.document_linked", {"document": {
        "id": "D-1", "name": "Card statement for November", "kind": "BANK_STATEMENT", "status": "MISSING",
        "participantId": "P-1", "required": True}})
    return case


def _warsaw_mortgage() -> _Case:
    case = _Case("CASE-2026-000150", "bpms/mortgage", START + timedelta(days=5))
    case.add("case.created", {
        "caseType": "MORTGAGE", "title": "Mortgage 520,000 PLN – house in Piaseczno", "channel": "BRANCH",
        "branch": "WAW-01", "sourceSystem": "branch-frontend", "customer": ZOFIA,
        "product": {"code": "MORT-VAR", "name": "Mortgage, variable rate", "amount": "520000.00", "currency": "PLN"},
        "status": "IN_PROGRESS", "stage": "ANALYSIS",
        "participants": [{"id": "P-1", "role": "PRIMARY_BORROWER", "name": ZOFIA["name"], "phone": "+48603400500",
                          "pesel": ZOFIA["pesel"]}],
    })
    case.add("case.task_created", {"task": {
        "id": "T-150-1", "name": "Prepare the credit decision", "formKey": "credit-decision",
        "candidateGroups": ["mortgage-advisors"], "state": "CREATED", "dueAt": "2026-12-08T15:00:00+00:00"}})
    return case


def _business_loan() -> _Case:
    case = _Case("CASE-2026-000140", "partner/leasing", START + timedelta(days=4))
    case.add("case.created", {
        "caseType": "LEASING", "title": "Truck leasing 480,000 PLN", "channel": "BACK_OFFICE",
        "branch": "KRK-01", "sourceSystem": "partner-leasing", "customer": FIRM,
        "product": {"code": "LEASE-TRUCK", "name": "Operating lease", "amount": "480000.00", "currency": "PLN"},
        "status": "IN_PROGRESS", "stage": "OFFER",
    })
    case.add("case.offer_presented", {"offer": {
        "id": "O-1", "productCode": "LEASE-TRUCK", "name": "48 months, 10% down", "amount": "480000.00",
        "currency": "PLN", "termMonths": 48, "status": "PRESENTED"}})
    case.add("case.offer_updated", {"offer": {
        "id": "O-1", "productCode": "LEASE-TRUCK", "name": "48 months, 15% down", "amount": "480000.00",
        "currency": "PLN", "termMonths": 48, "status": "NEGOTIATED"}})
    return case


def demo_envelopes() -> list[dict[str, Any]]:
    """Every demo event as a structured CloudEvent, in the order producers would send them."""
    cases = [_mortgage(), _card_with_incident(), _closed_loan(), _archived_account(), _complaint(), _business_loan(),
             _warsaw_mortgage()]
    return [event for case in cases for event in case.events]


async def load_demo_cases(pipeline: EventPipeline) -> int:
    events = [parse_envelope(envelope) for envelope in demo_envelopes()]
    await pipeline.ingest(events, actor="demo-loader")
    return len(events)
