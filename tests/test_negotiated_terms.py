"""Negotiated credit terms over HTTP with real tokens: record, approve, read, and the what-if installment (issue 10).

Installments below were computed independently of resolvers/installments.py, with exact rationals
(`fractions.Fraction`): A = P·r·(1+r)^n / ((1+r)^n − 1), r = annualRate/1200, rounded half up to 0.01 —
e.g. 350000 at 6.85 % over 300 months = 2440.33713616… → 2440.34 (a spreadsheet's =PMT(6.85%/12;300;-350000)
gives the same); 10000 at 12 % over 12 months = 888.4878867… → 888.49 (the textbook figure).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from consumers import staging as staging_module
from errors import BadInput
from resolvers import terms as terms_rules
from resolvers.installments import monthly_installment
from stores.database import Database
from stores.terms import TermsStore
from tests.factories import bearer, case_created_data, created

ADVISOR = bearer(username="anna.nowak", roles=("case-reader", "advisor"), channel="BRANCH", branch="KRK-01")
ADVISOR_WAW = bearer(username="piotr.zielinski", roles=("case-reader", "advisor"), channel="BRANCH", branch="WAW-01")
MANAGER = bearer(username="maria.wojcik", roles=("team-manager", "case-reader"), channel="BRANCH", branch="KRK-01")
BACK_OFFICE = bearer(username="jan.wisniewski", roles=("back-office", "case-reader"), channel="BACK_OFFICE")
CALL_CENTER = bearer(username="ewa.kowalska", roles=("call-center", "case-reader"), channel="CALL_CENTER")

TERMS = ("caseId customerId version rate margin marginMin marginMax amount currency termMonths fees validUntil "
         "monthlyInstallment recordedBy approvedBy versions { version margin monthlyInstallment recordedBy approvedBy }")
RECORD = f"mutation ($id: ID!, $input: NegotiatedTermsInput!) {{ recordNegotiatedTerms(caseId: $id, input: $input) {{ {TERMS} }} }}"
APPROVE = f"mutation ($id: ID!) {{ approveNegotiatedTerms(caseId: $id) {{ {TERMS} }} }}"
CASE_TERMS = f"query ($id: ID!) {{ case(id: $id) {{ id negotiatedTerms {{ {TERMS} }} }} }}"
INSTALLMENT = "query ($a: Decimal!, $r: Decimal!, $n: Int!) { installment(amount: $a, annualRate: $r, termMonths: $n) }"


def terms_input(**overrides: Any) -> dict[str, Any]:
    values = {"rate": "6.85", "margin": "2.05", "marginMin": "1.80", "marginMax": "2.40", "amount": "350000.00",
              "currency": "PLN", "termMonths": 300, "fees": "1200.00", "validUntil": "2027-02-28"}
    return {**values, **overrides}


def version(number: int, margin: str, installment: str, by: str = "anna.nowak",
            approved_by: str | None = None) -> dict[str, Any]:
    return {"version": number, "margin": margin, "monthlyInstallment": installment, "recordedBy": by,
            "approvedBy": approved_by}


async def post(client: TestClient, query: str, variables: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return await response.json()


async def commands(services: Any, client: TestClient) -> list[dict[str, Any]]:
    sent = await services.outbox.sent("commands")
    listed = await (await client.get("/dev/commands")).json()
    assert [e["id"] for e in listed] == [e["id"] for e in sent]
    return [{k: e[k] for k in ("type", "subject", "data")} for e in sent]


def codes(answer: dict[str, Any]) -> list[tuple[list[Any], str]]:
    return [(e["path"], e["extensions"]["code"]) for e in answer["errors"]]


@pytest.fixture
async def cases(services: Any) -> None:
    await services.pipeline.ingest([
        created("CASE-1"), created("CASE-2", data=case_created_data(title="Car loan")),
        created("CASE-3", data=case_created_data(customer={"id": "CUST-2", "name": "Jan Nowak",
                                                           "pesel": "90072412344", "segment": "RETAIL"})),
    ])


# --- the installment, as a pure function ---------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "rate", "months", "expected"), [
    ("350000", "6.85", 300, "2440.34"),   # 2440.33713616…
    ("10000", "12", 12, "888.49"),        # 888.48788678…
    ("1000", "12", 1, "1010.00"),         # one month: the amount plus a month's interest (1 %)
    ("350000", "0", 300, "1166.67"),      # 0 %: P/n = 1166.666…
    ("100.01", "0", 2, "50.01"),          # 50.005 exactly: half up, not to even (50.00)
    ("350000", "6.5", 300, "2363.23"),    # 2363.22506471…
])
def test_the_monthly_installment_is_the_annuity_rounded_half_up_to_a_cent(
        amount: str, rate: str, months: int, expected: str) -> None:
    assert monthly_installment(Decimal(amount), Decimal(rate), months) == Decimal(expected)
    assert str(monthly_installment(Decimal(amount), Decimal(rate), months)) == expected


@pytest.mark.parametrize(("amount", "rate", "months", "named"), [
    ("0", "6.85", 300, "amount"), ("-1", "6.85", 300, "amount"), ("1000000000001", "6.85", 300, "amount"),
    ("NaN", "6.85", 300, "amount"), ("1000", "-0.1", 12, "annualRate"), ("1000", "100.01", 12, "annualRate"),
    ("1000", "6.85", 0, "termMonths"), ("1000", "6.85", 601, "termMonths"),
])
def test_an_installment_outside_sane_ranges_is_bad_input_naming_the_argument(
        amount: str, rate: str, months: int, named: str) -> None:
    with pytest.raises(BadInput, match=f"^{named}:"):
        monthly_installment(Decimal(amount), Decimal(rate), months)


async def test_the_installment_query_answers_without_saving(client: TestClient, database: Database) -> None:
    answer = await post(client, INSTALLMENT, {"a": "350000", "r": "6.85", "n": 300}, ADVISOR)
    literal = await post(client, "{ installment(amount: 350000, annualRate: 6.85, termMonths: 300) }", {}, ADVISOR)
    refused = await post(client, INSTALLMENT, {"a": "350000", "r": "685", "n": 300}, ADVISOR)

    assert answer == {"data": {"installment": "2440.34"}}
    assert literal == {"data": {"installment": "2440.34"}}
    assert codes(refused) == [(["installment"], "BAD_USER_INPUT")]
    assert refused["errors"][0]["message"] == "annualRate: a percentage from 0 to 100 (6.85 = 6.85 % a year)"
    assert await database.collection("negotiated_terms").count_documents({}) == 0


# --- recording ----------------------------------------------------------------------------------------------

async def test_recording_twice_keeps_both_versions_in_order_and_the_second_is_current(
        client: TestClient, cases: None) -> None:
    first = await post(client, RECORD, {"id": "CASE-1", "input": terms_input()}, ADVISOR)
    second = await post(client, RECORD, {"id": "CASE-1", "input": terms_input(rate="6.50", margin="1.80")}, MANAGER)
    read = await post(client, CASE_TERMS, {"id": "CASE-1"}, BACK_OFFICE)

    assert first == {"data": {"recordNegotiatedTerms": {
        "caseId": "CASE-1", "customerId": "CUST-1", "version": 1, "rate": "6.85", "margin": "2.05",
        "marginMin": "1.80", "marginMax": "2.40", "amount": "350000.00", "currency": "PLN", "termMonths": 300,
        "fees": "1200.00", "validUntil": "2027-02-28", "monthlyInstallment": "2440.34", "recordedBy": "anna.nowak",
        "approvedBy": None, "versions": [version(1, "2.05", "2440.34")]}}}
    current = {**first["data"]["recordNegotiatedTerms"], "version": 2, "rate": "6.50", "margin": "1.80",
               "monthlyInstallment": "2363.23", "recordedBy": "maria.wojcik",
               "versions": [version(1, "2.05", "2440.34"), version(2, "1.80", "2363.23", by="maria.wojcik")]}
    assert second == {"data": {"recordNegotiatedTerms": current}}
    assert read == {"data": {"case": {"id": "CASE-1", "negotiatedTerms": current}}}


async def test_recorded_at_is_when_each_version_was_recorded(client: TestClient, cases: None) -> None:
    await post(client, RECORD, {"id": "CASE-1", "input": terms_input()}, ADVISOR)
    await post(client, RECORD, {"id": "CASE-1", "input": terms_input()}, ADVISOR)

    read = await post(client, '{ case(id: "CASE-1") { negotiatedTerms { recordedAt versions { recordedAt } } } }',
                      {}, ADVISOR)

    terms = read["data"]["case"]["negotiatedTerms"]
    first, second = (v["recordedAt"] for v in terms["versions"])
    assert first <= second == terms["recordedAt"]


@pytest.mark.parametrize(("margin", "message"), [
    ("2.41", "margin 2.41 is outside the allowed range [1.80, 2.40]"),
    ("1.79", "margin 1.79 is outside the allowed range [1.80, 2.40]"),
])
async def test_a_margin_outside_the_allowed_range_is_refused_and_nothing_is_stored(
        client: TestClient, database: Database, cases: None, margin: str, message: str) -> None:
    answer = await post(client, RECORD, {"id": "CASE-1", "input": terms_input(margin=margin)}, ADVISOR)

    assert answer["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in answer["errors"]] == [(message, "BAD_USER_INPUT")]
    assert await database.collection("negotiated_terms").count_documents({}) == 0
    assert await post(client, CASE_TERMS, {"id": "CASE-1"}, ADVISOR) == {
        "data": {"case": {"id": "CASE-1", "negotiatedTerms": None}}}


async def test_terms_of_a_case_the_caller_cannot_see_are_not_found_and_not_stored(
        client: TestClient, database: Database, cases: None) -> None:
    other_branch = await post(client, RECORD, {"id": "CASE-1", "input": terms_input()}, ADVISOR_WAW)
    no_case = await post(client, RECORD, {"id": "CASE-404", "input": terms_input()}, ADVISOR)

    assert codes(other_branch) == [(["recordNegotiatedTerms"], "NOT_FOUND")]
    assert codes(no_case) == [(["recordNegotiatedTerms"], "NOT_FOUND")]
    assert await database.collection("negotiated_terms").count_documents({}) == 0


async def test_recording_is_refused_to_roles_that_do_not_negotiate(
        client: TestClient, database: Database, cases: None) -> None:
    for caller in (BACK_OFFICE, CALL_CENTER):
        answer = await post(client, RECORD, {"id": "CASE-1", "input": terms_input()}, caller)
        assert codes(answer) == [(["recordNegotiatedTerms"], "FORBIDDEN")]
    assert await database.collection("negotiated_terms").count_documents({}) == 0


async def test_each_recording_is_audited_with_its_case_customer_and_changes(
        client: TestClient, database: Database, cases: None) -> None:
    await post(client, RECORD, {"id": "CASE-1", "input": terms_input()}, ADVISOR)
    await post(client, RECORD, {"id": "CASE-1", "input": terms_input(margin="2.20")}, ADVISOR)

    record = await database.collection("audit").find_one({}, sort=[("_id", -1)])

    assert (record["caseIds"], record["customerIds"], record["outcome"]) == (["CASE-1"], ["CUST-1"], "ok")
    assert record["changes"] == [
        {"caseId": "CASE-1", "field": "negotiatedTerms.version", "old": 1, "new": 2},
        {"caseId": "CASE-1", "field": "negotiatedTerms.margin", "old": "2.05", "new": "2.20"},
    ]


# --- approving ----------------------------------------------------------------------------------------------

async def test_a_team_manager_approves_the_current_version_and_terms_approved_goes_out_once(
        client: TestClient, services: Any, database: Database, cases: None) -> None:
    await post(client, RECORD, {"id": "CASE-1", "input": terms_input()}, ADVISOR)
    await post(client, RECORD, {"id": "CASE-1", "input": terms_input(margin="2.20")}, ADVISOR)

    approved = await post(client, APPROVE, {"id": "CASE-1"}, MANAGER)
    again = await post(client, APPROVE, {"id": "CASE-1"}, MANAGER)

    terms = approved["data"]["approveNegotiatedTerms"]
    assert (terms["version"], terms["approvedBy"]) == (2, "maria.wojcik")
    assert terms["versions"] == [version(1, "2.05", "2440.34"), version(2, "2.20", "2440.34", approved_by="maria.wojcik")]
    assert again == approved
    assert await commands(services, client) == [{"type": "terms.approved", "subject": "CASE-1", "data": {
        "caseId": "CASE-1", "termsVersion": 2, "approvedBy": "maria.wojcik"}}]
    doc = await database.collection("negotiated_terms").find_one({"_id": "CASE-1"})
    assert (doc["outbox"], "stagedAt" in doc) == ([], False)
    # Two approvals, one change: only the first one wrote.
    records = await database.collection("audit").find(
        {"changes.field": "negotiatedTerms.versions[2].approvedBy"}).to_list(None)
    assert [(r["caseIds"], r["customerIds"], r["changes"]) for r in records] == [(["CASE-1"], ["CUST-1"], [
        {"caseId": "CASE-1", "field": "negotiatedTerms.versions[2].approvedBy", "old": None, "new": "maria.wojcik"}])]


async def test_an_advisor_cannot_approve_and_nothing_is_sent(
        client: TestClient, services: Any, cases: None) -> None:
    await post(client, RECORD, {"id": "CASE-1", "input": terms_input()}, ADVISOR)

    answer = await post(client, APPROVE, {"id": "CASE-1"}, ADVISOR)

    assert codes(answer) == [(["approveNegotiatedTerms"], "FORBIDDEN")]
    assert await commands(services, client) == []
    read = await post(client, CASE_TERMS, {"id": "CASE-1"}, ADVISOR)
    assert read["data"]["case"]["negotiatedTerms"]["approvedBy"] is None


async def test_approving_a_case_without_terms_is_not_found(client: TestClient, services: Any, cases: None) -> None:
    answer = await post(client, APPROVE, {"id": "CASE-1"}, MANAGER)

    assert codes(answer) == [(["approveNegotiatedTerms"], "NOT_FOUND")]
    assert await commands(services, client) == []


async def test_an_approval_whose_writer_stopped_before_relaying_is_sent_by_the_relay_loop(
        client: TestClient, services: Any, database: Database, cases: None, monkeypatch: pytest.MonkeyPatch) -> None:
    await post(client, RECORD, {"id": "CASE-1", "input": terms_input()}, ADVISOR)
    relay_records = services.staging.relay_records

    async def stopped(*_args: Any) -> None:
        return None

    monkeypatch.setattr(services.staging, "relay_records", stopped)
    await post(client, APPROVE, {"id": "CASE-1"}, MANAGER)
    assert await commands(services, client) == []
    monkeypatch.setattr(services.staging, "relay_records", relay_records)
    # Negative: a document staged within this very millisecond counts as abandoned too.
    monkeypatch.setattr(staging_module, "ABANDONED_AFTER", staging_module.ABANDONED_AFTER * -1)

    await services.relay.relay_due()
    await services.relay.relay_due()

    assert await commands(services, client) == [{"type": "terms.approved", "subject": "CASE-1", "data": {
        "caseId": "CASE-1", "termsVersion": 1, "approvedBy": "maria.wojcik"}}]
    doc = await database.collection("negotiated_terms").find_one({"_id": "CASE-1"})
    assert (doc["outbox"], "stagedAt" in doc) == ([], False)


# --- reading ------------------------------------------------------------------------------------------------

async def test_the_call_center_cannot_read_terms_and_the_back_office_can(client: TestClient, cases: None) -> None:
    await post(client, RECORD, {"id": "CASE-1", "input": terms_input()}, ADVISOR)
    query = '{ case(id: "CASE-1") { id negotiatedTerms { version margin } } }'

    call_center = await post(client, query, {}, CALL_CENTER)
    back_office = await post(client, query, {}, BACK_OFFICE)

    assert call_center["data"] == {"case": {"id": "CASE-1", "negotiatedTerms": None}}
    assert codes(call_center) == [(["case", "negotiatedTerms"], "FORBIDDEN")]
    assert back_office == {"data": {"case": {"id": "CASE-1", "negotiatedTerms": {"version": 1, "margin": "2.05"}}}}
    calculator = await post(client, INSTALLMENT, {"a": "1000", "r": "12", "n": 1}, CALL_CENTER)
    assert codes(calculator) == [(["installment"], "FORBIDDEN")]


async def test_a_customer_lists_the_terms_of_their_cases(client: TestClient, cases: None) -> None:
    for case_id, margin in (("CASE-2", "2.40"), ("CASE-1", "1.80"), ("CASE-3", "2.00")):
        await post(client, RECORD, {"id": case_id, "input": terms_input(margin=margin)}, ADVISOR)

    answer = await post(client, '{ customer(id: "CUST-1") { id negotiatedTerms { caseId version margin '
                                'monthlyInstallment } } }', {}, ADVISOR)
    refused = await post(client, '{ customer(id: "CUST-1") { id negotiatedTerms { caseId } } }', {}, CALL_CENTER)

    assert answer == {"data": {"customer": {"id": "CUST-1", "negotiatedTerms": [
        {"caseId": "CASE-1", "version": 1, "margin": "1.80", "monthlyInstallment": "2440.34"},
        {"caseId": "CASE-2", "version": 1, "margin": "2.40", "monthlyInstallment": "2440.34"},
    ]}}}
    assert codes(refused) == [(["customer", "negotiatedTerms"], "FORBIDDEN")]


async def test_terms_of_many_cases_cost_one_store_read(
        client: TestClient, cases: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for case_id in ("CASE-1", "CASE-2", "CASE-3"):
        await post(client, RECORD, {"id": case_id, "input": terms_input()}, ADVISOR)
    reads: list[list[str]] = []
    of_cases = TermsStore.of_cases

    async def counted(self: TermsStore, case_ids: Any, **kwargs: Any) -> Any:
        reads.append(sorted(case_ids))
        return await of_cases(self, case_ids, **kwargs)

    monkeypatch.setattr(TermsStore, "of_cases", counted)

    answer = await post(client, "{ cases { edges { node { id negotiatedTerms { version } } } } }", {}, ADVISOR)

    assert sorted(e["node"]["id"] for e in answer["data"]["cases"]["edges"]) == ["CASE-1", "CASE-2", "CASE-3"]
    assert [e["node"]["negotiatedTerms"] for e in answer["data"]["cases"]["edges"]] == [{"version": 1}] * 3
    assert reads == [["CASE-1", "CASE-2", "CASE-3"]]
