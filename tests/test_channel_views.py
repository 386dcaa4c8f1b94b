"""Views per channel (issue 10): the same query, the same token, through BRANCH, CALL_CENTER, BACK_OFFICE, the
customer channels and no channel, answers with exactly these fields full, masked or null, over real HTTP.

Expected values are typed out here, not computed from access/policy.py: the customer's PESEL 85031207819 is
"*******7819" masked (stores.protection.mask_pesel keeps the last 4 digits), the phone +48601200300 is
"*********300" (mask_phone keeps the last 3). The terms are 350000.00 PLN at 6.85 % over 300 months:
2440.34 a month (2440.33713616…, see tests/test_negotiated_terms.py for how it was computed independently).
"""
from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from context import Services
from tests.factories import bearer, case_created_data, created, event, status_changed
from tests.live import BusWatch, next_frame, signed_in_socket, subscribe

DOCUMENT_URL = "https://dms.bank.example/cases/CASE-1/documents/D-1"
ADVISOR_ROLES = ("advisor", "case-reader")
BACK_OFFICE_ROLES = ("back-office", "case-reader")
AUDITOR = bearer(roles=("auditor",), channel="BACK_OFFICE", username="tomasz.kaminski")

CASE_VIEW = """query CaseView($id: ID!) { case(id: $id) {
  customer { pesel }
  participants { id phone pesel }
  documents { id name url }
  negotiatedTerms { rate margin marginMin marginMax fees amount termMonths monthlyInstallment
                    versions { version margin marginMin marginMax fees monthlyInstallment } }
} }"""
RECORD_TERMS = """mutation ($id: ID!, $input: NegotiatedTermsInput!) {
  recordNegotiatedTerms(caseId: $id, input: $input) { version } }"""
TERMS = {"rate": "6.85", "margin": "2.05", "marginMin": "1.80", "marginMax": "2.40", "amount": "350000.00",
         "currency": "PLN", "termMonths": 300, "fees": "1200.00", "validUntil": "2027-02-28"}
TRAIL = """query ($caseId: ID) { auditTrail(caseId: $caseId, first: 50) { edges { node {
  actorName operation channel fields outcome } } } }"""

# --- what each channel shows: literal answers -----------------------------------------------------------------

FULL_VIEW = {
    "customer": {"pesel": "85031207819"},
    "participants": [{"id": "P-1", "phone": "+48601200300", "pesel": "85031207819"},
                     {"id": "P-2", "phone": "+48602300400", "pesel": "90072412344"}],
    "documents": [{"id": "D-1", "name": "Income statement", "url": DOCUMENT_URL},
                  {"id": "D-2", "name": "Valuation report", "url": None}],
    "negotiatedTerms": {"rate": "6.85", "margin": "2.05", "marginMin": "1.80", "marginMax": "2.40", "fees": "1200.00",
                        "amount": "350000.00", "termMonths": 300, "monthlyInstallment": "2440.34",
                        "versions": [{"version": 1, "margin": "2.05", "marginMin": "1.80", "marginMax": "2.40",
                                      "fees": "1200.00", "monthlyInstallment": "2440.34"}]},
}
# The call center: PESELs masked, phones full (the agent calls back), no document link, no pricing internals, but
# the rate, amount, term and installment a caller asks about.
CALL_CENTER_VIEW = {
    "customer": {"pesel": "*******7819"},
    "participants": [{"id": "P-1", "phone": "+48601200300", "pesel": "*******7819"},
                     {"id": "P-2", "phone": "+48602300400", "pesel": "*******2344"}],
    "documents": [{"id": "D-1", "name": "Income statement", "url": None},
                  {"id": "D-2", "name": "Valuation report", "url": None}],
    "negotiatedTerms": {"rate": "6.85", "margin": None, "marginMin": None, "marginMax": None, "fees": None,
                        "amount": "350000.00", "termMonths": 300, "monthlyInstallment": "2440.34",
                        "versions": [{"version": 1, "margin": None, "marginMin": None, "marginMax": None,
                                      "fees": None, "monthlyInstallment": "2440.34"}]},
}
# Customer channels and no channel: the call center's view with the phones masked too.
LEAST_VIEW = {
    **CALL_CENTER_VIEW,
    "participants": [{"id": "P-1", "phone": "*********300", "pesel": "*******7819"},
                     {"id": "P-2", "phone": "*********400", "pesel": "*******2344"}],
}

FULL_FIELDS = [
    "Customer.pesel:full", "Document.url:full", "NegotiatedTerms.fees:full", "NegotiatedTerms.margin:full",
    "NegotiatedTerms.marginMax:full", "NegotiatedTerms.marginMin:full", "NegotiatedTermsVersion.fees:full",
    "NegotiatedTermsVersion.margin:full", "NegotiatedTermsVersion.marginMax:full",
    "NegotiatedTermsVersion.marginMin:full", "Participant.pesel:full", "Participant.phone:full",
]
CALL_CENTER_FIELDS = [
    "Customer.pesel:masked", "Document.url:hidden", "NegotiatedTerms.fees:hidden", "NegotiatedTerms.margin:hidden",
    "NegotiatedTerms.marginMax:hidden", "NegotiatedTerms.marginMin:hidden", "NegotiatedTermsVersion.fees:hidden",
    "NegotiatedTermsVersion.margin:hidden", "NegotiatedTermsVersion.marginMax:hidden",
    "NegotiatedTermsVersion.marginMin:hidden", "Participant.pesel:masked", "Participant.phone:full",
]
LEAST_FIELDS = [*CALL_CENTER_FIELDS[:-1], "Participant.phone:masked"]

# One row per channel and role that may read terms: (roles, channel, the case as shown, the audit's fields).
ROWS = [
    pytest.param(ADVISOR_ROLES, "BRANCH", FULL_VIEW, FULL_FIELDS, id="advisor-BRANCH"),
    pytest.param(ADVISOR_ROLES, "BACK_OFFICE", FULL_VIEW, FULL_FIELDS, id="advisor-BACK_OFFICE"),
    pytest.param(ADVISOR_ROLES, "CALL_CENTER", CALL_CENTER_VIEW, CALL_CENTER_FIELDS, id="advisor-CALL_CENTER"),
    pytest.param(ADVISOR_ROLES, "ONLINE", LEAST_VIEW, LEAST_FIELDS, id="advisor-ONLINE"),
    pytest.param(ADVISOR_ROLES, "MOBILE", LEAST_VIEW, LEAST_FIELDS, id="advisor-MOBILE"),
    pytest.param(ADVISOR_ROLES, "PANEL", LEAST_VIEW, LEAST_FIELDS, id="advisor-PANEL"),
    pytest.param(BACK_OFFICE_ROLES, "BACK_OFFICE", FULL_VIEW, FULL_FIELDS, id="back-office-BACK_OFFICE"),
    pytest.param(BACK_OFFICE_ROLES, "BRANCH", FULL_VIEW, FULL_FIELDS, id="back-office-BRANCH"),
    pytest.param(BACK_OFFICE_ROLES, "CALL_CENTER", CALL_CENTER_VIEW, CALL_CENTER_FIELDS, id="back-office-CALL_CENTER"),
    pytest.param(BACK_OFFICE_ROLES, "ONLINE", LEAST_VIEW, LEAST_FIELDS, id="back-office-ONLINE"),
]


@pytest.fixture
async def seeded(client: TestClient, services: Services) -> None:
    """CASE-1 (branch KRK-01) with two participants, a document with a content link and one without, and terms
    an advisor recorded at the branch."""
    participants = [
        {"id": "P-1", "role": "PRIMARY_BORROWER", "name": "Anna Kowalska", "phone": "+48601200300",
         "pesel": "85031207819"},
        {"id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak", "phone": "+48602300400", "pesel": "90072412344"},
    ]
    await services.pipeline.ingest([
        created("CASE-1", data=case_created_data(participants=participants)),
        event("case.document_linked", "CASE-1", {"document": {
            "id": "D-1", "name": "Income statement", "kind": "INCOME_STATEMENT", "status": "RECEIVED",
            "participantId": "P-1", "url": DOCUMENT_URL, "required": True}}),
        event("case.document_linked", "CASE-1", {"document": {
            "id": "D-2", "name": "Valuation report", "kind": "VALUATION", "status": "MISSING", "required": True}}),
    ])
    recorded = await post(client, RECORD_TERMS, {"id": "CASE-1", "input": TERMS},
                          bearer(username="anna.nowak", roles=ADVISOR_ROLES, channel="BRANCH", branch="KRK-01"))
    assert recorded == {"data": {"recordNegotiatedTerms": {"version": 1}}}


async def post(client: TestClient, query: str, variables: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return await response.json()


async def audited_reads(client: TestClient) -> list[dict[str, Any]]:
    """The trail of CASE-1's CaseView reads, oldest first, as an auditor reads it."""
    body = await post(client, TRAIL, {"caseId": "CASE-1"}, AUDITOR)
    nodes = [edge["node"] for edge in body["data"]["auditTrail"]["edges"]]
    return [node for node in reversed(nodes) if node["operation"] == "CaseView"]


def through(channel: str, via: str, roles: tuple[str, ...], username: str) -> dict[str, str]:
    """The channel as the token's claim, or as the X-Channel header of a token that carries none."""
    if via == "claim":
        return bearer(username=username, roles=roles, channel=channel)
    return bearer(username=username, roles=roles) | {"X-Channel": channel}


@pytest.mark.parametrize("via", ["claim", "header"])
@pytest.mark.parametrize(("roles", "channel", "view", "fields"), ROWS)
async def test_each_channel_shows_the_case_as_its_row_says_and_the_audit_says_how(
    client: TestClient, seeded: None, roles: tuple[str, ...], channel: str, view: dict[str, Any],
    fields: list[str], via: str,
) -> None:
    answer = await post(client, CASE_VIEW, {"id": "CASE-1"}, through(channel, via, roles, "jan.kowalczyk"))

    # A channel named only by the X-Channel header is the client's word: it never shows more than naming none
    if via == "header":
        view, fields = LEAST_VIEW, LEAST_FIELDS
    assert answer == {"data": {"case": view}}
    assert await audited_reads(client) == [
        {"actorName": "jan.kowalczyk", "operation": "CaseView", "channel": channel, "fields": fields, "outcome": "ok"}]


async def test_a_call_that_names_no_channel_gets_the_most_restrictive_view(client: TestClient, seeded: None) -> None:
    """No claim and no header: leaving the header out must not show more than the call center sees."""
    answer = await post(client, CASE_VIEW, {"id": "CASE-1"}, bearer(username="jan.kowalczyk", roles=ADVISOR_ROLES))

    assert answer == {"data": {"case": LEAST_VIEW}}
    assert await audited_reads(client) == [
        {"actorName": "jan.kowalczyk", "operation": "CaseView", "channel": None, "fields": LEAST_FIELDS,
         "outcome": "ok"}]


async def test_the_same_token_answers_differently_through_branch_call_center_and_back_office(
    client: TestClient, seeded: None,
) -> None:
    """One advisor, one query, through the branch's, the call center's and the back office's app (each token's
    channel claim) in a row: no answer (nor a cached one) leaks from one channel into the next."""
    answers = [await post(client, CASE_VIEW, {"id": "CASE-1"},
                          bearer(username="jan.kowalczyk", roles=ADVISOR_ROLES, channel=channel))
               for channel in ("BRANCH", "CALL_CENTER", "BACK_OFFICE", "CALL_CENTER")]

    assert answers == [{"data": {"case": FULL_VIEW}}, {"data": {"case": CALL_CENTER_VIEW}},
                       {"data": {"case": FULL_VIEW}}, {"data": {"case": CALL_CENTER_VIEW}}]
    assert [(r["channel"], r["fields"]) for r in await audited_reads(client)] == [
        ("BRANCH", FULL_FIELDS), ("CALL_CENTER", CALL_CENTER_FIELDS), ("BACK_OFFICE", FULL_FIELDS),
        ("CALL_CENTER", CALL_CENTER_FIELDS)]


async def test_call_center_vs_branch_on_the_same_customer_exact_masked_and_unmasked_fields(
    client: TestClient, seeded: None,
) -> None:
    """The customer 360 reaches the PESEL and the terms by another path: the same rows apply."""
    query = """{ customer(id: "CUST-1") { name pesel negotiatedTerms { caseId rate margin fees monthlyInstallment }
                 cases { edges { node { documents { id url } participants { id phone pesel } } } } } }"""
    branch = await post(client, query, {}, bearer(username="jan.kowalczyk", roles=ADVISOR_ROLES, channel="BRANCH"))
    call_center = await post(client, query, {},
                             bearer(username="jan.kowalczyk", roles=ADVISOR_ROLES, channel="CALL_CENTER"))

    assert branch == {"data": {"customer": {
        "name": "Anna Kowalska", "pesel": "85031207819",
        "negotiatedTerms": [{"caseId": "CASE-1", "rate": "6.85", "margin": "2.05", "fees": "1200.00",
                             "monthlyInstallment": "2440.34"}],
        "cases": {"edges": [{"node": {
            "documents": [{"id": "D-1", "url": DOCUMENT_URL}, {"id": "D-2", "url": None}],
            "participants": [{"id": "P-1", "phone": "+48601200300", "pesel": "85031207819"},
                             {"id": "P-2", "phone": "+48602300400", "pesel": "90072412344"}]}}]}}}}
    assert call_center == {"data": {"customer": {
        "name": "Anna Kowalska", "pesel": "*******7819",
        "negotiatedTerms": [{"caseId": "CASE-1", "rate": "6.85", "margin": None, "fees": None,
                             "monthlyInstallment": "2440.34"}],
        "cases": {"edges": [{"node": {
            "documents": [{"id": "D-1", "url": None}, {"id": "D-2", "url": None}],
            "participants": [{"id": "P-1", "phone": "+48601200300", "pesel": "*******7819"},
                             {"id": "P-2", "phone": "+48602300400", "pesel": "*******2344"}]}}]}}}}


async def test_the_call_center_role_keeps_its_forbidden_terms_and_the_rest_of_the_page_renders(
    client: TestClient, seeded: None,
) -> None:
    """Role-denied stays FORBIDDEN (call-center does not read terms at all); channel-hidden fields are plain
    nulls, so everything else on the page is there."""
    answer = await post(client, CASE_VIEW, {"id": "CASE-1"},
                        bearer(username="ewa.kowalska", roles=("call-center", "case-reader"), channel="CALL_CENTER"))

    assert answer["data"] == {"case": {**CALL_CENTER_VIEW, "negotiatedTerms": None}}
    assert [(e["path"], e["extensions"]["code"]) for e in answer["errors"]] == [
        (["case", "negotiatedTerms"], "FORBIDDEN")]
    assert "85031207819" not in str(answer) and DOCUMENT_URL not in str(answer) and "2.05" not in str(answer)
    assert [r["fields"] for r in await audited_reads(client)] == [
        ["Customer.pesel:masked", "Document.url:hidden", "Participant.pesel:masked", "Participant.phone:full"]]


async def test_a_field_with_no_value_is_not_on_record_as_hidden(client: TestClient, services: Services) -> None:
    """The audit says what was withheld; a document without a link withheld nothing."""
    await services.pipeline.ingest([created("CASE-1"), event("case.document_linked", "CASE-1", {"document": {
        "id": "D-2", "name": "Valuation report", "kind": "VALUATION", "status": "MISSING", "required": True}})])

    answer = await post(client, 'query CaseView { case(id: "CASE-1") { documents { id url } } }', {},
                        bearer(username="jan.kowalczyk", roles=ADVISOR_ROLES, channel="CALL_CENTER"))

    assert answer == {"data": {"case": {"documents": [{"id": "D-2", "url": None}]}}}
    assert [r["fields"] for r in await audited_reads(client)] == [[]]


async def test_a_live_update_follows_each_subscriber_s_channel(
    client: TestClient, services: Services, seeded: None, bus_watch: BusWatch,
) -> None:
    """caseUpdated pushes through the same field guards: the same push, a branch socket and a call-center socket.
    (A push carries the published state, which holds no PESEL at all: that is null in every channel.)"""
    query = """subscription ($id: ID!) { caseUpdated(id: $id) { status documents { id url }
                 negotiatedTerms { margin fees monthlyInstallment } } }"""
    async with signed_in_socket(client, bearer(roles=ADVISOR_ROLES, channel="BRANCH")) as branch, \
            signed_in_socket(client, bearer(roles=ADVISOR_ROLES, channel="CALL_CENTER")) as call_center:
        await subscribe(branch, "s1", query, {"id": "CASE-1"})
        await subscribe(call_center, "s1", query, {"id": "CASE-1"})
        await bus_watch.until_active(2)

        await services.pipeline.ingest([status_changed("CASE-1", "IN_PROGRESS")])

        frames = [await next_frame(branch), await next_frame(call_center)]
    assert frames == [
        {"id": "s1", "type": "next", "payload": {"data": {"caseUpdated": {
            "status": "IN_PROGRESS", "documents": [{"id": "D-1", "url": DOCUMENT_URL}, {"id": "D-2", "url": None}],
            "negotiatedTerms": {"margin": "2.05", "fees": "1200.00", "monthlyInstallment": "2440.34"}}}}},
        {"id": "s1", "type": "next", "payload": {"data": {"caseUpdated": {
            "status": "IN_PROGRESS", "documents": [{"id": "D-1", "url": None}, {"id": "D-2", "url": None}],
            "negotiatedTerms": {"margin": None, "fees": None, "monthlyInstallment": "2440.34"}}}}},
    ]
