"""What each participant sees of their case (`panelCase`), whole responses asserted (issue 9, CONTRACT §5).

Would a co-borrower in a divorce see anything of the other they should not? Anna (P-1) and Piotr (P-2) of the demo
mortgage each see their own action, consent and document, the shared valuation, and only yes/no progress of the
other; no PESEL, phone, incident, note, offer, employee name or the other's items. A panel token reaches no
employee operation.
"""
from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from settings import Settings
from tests.panel_flow import ANNA_DIGITS, MORTGAGE, PIOTR_DIGITS, post, signed_in

PANEL_CASE = """
{ panelCase { caseId title caseType product status statusText stage stageText nextSteps
  participant { id role name }
  actions { id name formKey state assignee candidateGroups participantId dueAt case { id } }
  consents { id participantId kind text required state }
  documents { id name kind status participantId url required }
  others { role roleText consentsGiven documentsComplete actionsComplete summary }
  faq { question answer } availableUntil
  history(first: 50) { totalCount pageInfo { hasNextPage } edges { node { id kind summary channel details actor { type id name } at } } } } }
"""


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=True, outbox_relay_seconds=3600.0, panel_answer_floor_seconds=0.0)


ANNA_SEES = {'caseId': 'CASE-2026-000123',
 'title': 'Mortgage 350,000 PLN – flat in Kraków',
 'caseType': 'MORTGAGE',
 'product': 'Mortgage, 5-year fixed rate',
 'status': 'IN_PROGRESS',
 'statusText': 'In progress',
 'stage': 'ANALYSIS',
 'stageText': 'The bank is assessing the application',
 'nextSteps': ['Give the consents and send the documents listed here; each borrower does their own.',
               'The bank checks your income and orders the property valuation.'],
 'participant': {'id': 'P-1', 'role': 'PRIMARY_BORROWER', 'name': 'Anna Kowalska'},
 'actions': [{'id': 'T-123-5',
              'name': 'Confirm your employment details',
              'formKey': None,
              'state': 'CREATED',
              'assignee': None,
              'candidateGroups': [],
              'participantId': 'P-1',
              'dueAt': None,
              'case': None}],
 'consents': [{'id': 'C-2',
               'participantId': 'P-1',
               'kind': 'CREDIT_BUREAU',
               'text': 'I consent to the bank checking my credit history in BIK.',
               'required': True,
               'state': 'REQUESTED'}],
 'documents': [{'id': 'D-1',
                'name': 'Income statement – Anna',
                'kind': 'INCOME_STATEMENT',
                'status': 'RECEIVED',
                'participantId': 'P-1',
                'url': None,
                'required': True},
               {'id': 'D-3',
                'name': 'Property valuation',
                'kind': 'VALUATION',
                'status': 'ORDERED',
                'participantId': None,
                'url': None,
                'required': True}],
 'others': [{'role': 'CO_BORROWER',
             'roleText': 'the co-borrower',
             'consentsGiven': False,
             'documentsComplete': False,
             'actionsComplete': False,
             'summary': 'The co-borrower still has consents to give, documents to send and actions to complete'}],
 'faq': [{'question': 'Why do I sign in to the case and not to internet banking?',
          'answer': 'Each borrower sees only their own part of the application: their actions, consents and '
                    'documents.'},
         {'question': 'How long does the assessment take?',
          'answer': 'Usually 5 to 10 working days after the last document arrives.'},
         {'question': 'My co-borrower has not finished yet. What can I do?',
          'answer': 'Nothing on their behalf: each borrower completes their own part. You can see whether they '
                    'have.'}],
 'availableUntil': None,
 'history': {'totalCount': 6,
             'pageInfo': {'hasNextPage': False},
             'edges': [{'node': {'id': 'CASE-2026-000123-e016',
                                 'kind': 'CONSENT_REQUESTED',
                                 'summary': 'The bank asked for your consent',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T17:00:00+00:00'}},
                       {'node': {'id': 'CASE-2026-000123-e015',
                                 'kind': 'TASK_CREATED',
                                 'summary': 'New action for you: Confirm your employment details',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T16:30:00+00:00'}},
                       {'node': {'id': 'CASE-2026-000123-e007',
                                 'kind': 'STATUS_CHANGED',
                                 'summary': 'Status: In progress – The bank is assessing the application',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T12:30:00+00:00'}},
                       {'node': {'id': 'CASE-2026-000123-e006',
                                 'kind': 'DOCUMENT_LINKED',
                                 'summary': 'Document: Property valuation',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T12:00:00+00:00'}},
                       {'node': {'id': 'CASE-2026-000123-e004',
                                 'kind': 'DOCUMENT_LINKED',
                                 'summary': 'Document: Income statement – Anna',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T11:00:00+00:00'}},
                       {'node': {'id': 'CASE-2026-000123-e001',
                                 'kind': 'CASE_CREATED',
                                 'summary': 'Your case was opened',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T09:30:00+00:00'}}]}}

PIOTR_SEES = {'caseId': 'CASE-2026-000123',
 'title': 'Mortgage 350,000 PLN – flat in Kraków',
 'caseType': 'MORTGAGE',
 'product': 'Mortgage, 5-year fixed rate',
 'status': 'IN_PROGRESS',
 'statusText': 'In progress',
 'stage': 'ANALYSIS',
 'stageText': 'The bank is assessing the application',
 'nextSteps': ['Give the consents and send the documents listed here; each borrower does their own.',
               'The bank checks your income and orders the property valuation.'],
 'participant': {'id': 'P-2', 'role': 'CO_BORROWER', 'name': 'Piotr Nowak'},
 'actions': [{'id': 'T-123-2',
              'name': 'Upload income statement',
              'formKey': None,
              'state': 'CREATED',
              'assignee': None,
              'candidateGroups': [],
              'participantId': 'P-2',
              'dueAt': None,
              'case': None}],
 'consents': [{'id': 'C-1',
               'participantId': 'P-2',
               'kind': 'CREDIT_BUREAU',
               'text': 'I consent to the bank checking my credit history in BIK.',
               'required': True,
               'state': 'REQUESTED'}],
 'documents': [{'id': 'D-2',
                'name': 'Income statement – Piotr',
                'kind': 'INCOME_STATEMENT',
                'status': 'MISSING',
                'participantId': 'P-2',
                'url': None,
                'required': True},
               {'id': 'D-3',
                'name': 'Property valuation',
                'kind': 'VALUATION',
                'status': 'ORDERED',
                'participantId': None,
                'url': None,
                'required': True}],
 'others': [{'role': 'PRIMARY_BORROWER',
             'roleText': 'the borrower',
             'consentsGiven': False,
             'documentsComplete': True,
             'actionsComplete': False,
             'summary': 'The borrower still has consents to give and actions to complete'}],
 'faq': [{'question': 'Why do I sign in to the case and not to internet banking?',
          'answer': 'Each borrower sees only their own part of the application: their actions, consents and '
                    'documents.'},
         {'question': 'How long does the assessment take?',
          'answer': 'Usually 5 to 10 working days after the last document arrives.'},
         {'question': 'My co-borrower has not finished yet. What can I do?',
          'answer': 'Nothing on their behalf: each borrower completes their own part. You can see whether they '
                    'have.'}],
 'availableUntil': None,
 'history': {'totalCount': 6,
             'pageInfo': {'hasNextPage': False},
             'edges': [{'node': {'id': 'CASE-2026-000123-e010',
                                 'kind': 'CONSENT_REQUESTED',
                                 'summary': 'The bank asked for your consent',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T14:00:00+00:00'}},
                       {'node': {'id': 'CASE-2026-000123-e009',
                                 'kind': 'TASK_CREATED',
                                 'summary': 'New action for you: Upload income statement',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T13:30:00+00:00'}},
                       {'node': {'id': 'CASE-2026-000123-e007',
                                 'kind': 'STATUS_CHANGED',
                                 'summary': 'Status: In progress – The bank is assessing the application',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T12:30:00+00:00'}},
                       {'node': {'id': 'CASE-2026-000123-e006',
                                 'kind': 'DOCUMENT_LINKED',
                                 'summary': 'Document: Property valuation',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T12:00:00+00:00'}},
                       {'node': {'id': 'CASE-2026-000123-e005',
                                 'kind': 'DOCUMENT_LINKED',
                                 'summary': 'Document: Income statement – Piotr',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T11:30:00+00:00'}},
                       {'node': {'id': 'CASE-2026-000123-e001',
                                 'kind': 'CASE_CREATED',
                                 'summary': 'Your case was opened',
                                 'channel': None,
                                 'details': None,
                                 'actor': {'type': 'SYSTEM', 'id': 'bank', 'name': 'the bank'},
                                 'at': '2026-11-02T09:30:00+00:00'}}]}}

# What neither may ever read in the other's view, nor in their own: PESELs (and the fragments that sign in),
# phones, employees, incidents, offers, the engine's groups.
NEVER = ("85031207819", "90072412344", "+48601200300", "+48602300400", "Ewa", "Marek", "anna.nowak",
         "back-office", "mortgage-advisors", "Fixed 5y", "6.85", "O-1", "Verify income", "Prepare the credit decision",
         "Co-borrower asked", "Application signed", "peselIndex")


async def test_each_co_borrower_sees_exactly_their_part(client: TestClient) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)

    anna_sees = await client.post("/graphql", json={"query": PANEL_CASE}, headers=anna)
    piotr_sees = await client.post("/graphql", json={"query": PANEL_CASE}, headers=piotr)

    anna_text, piotr_text = await anna_sees.text(), await piotr_sees.text()
    assert await anna_sees.json() == {"data": {"panelCase": ANNA_SEES}}
    assert await piotr_sees.json() == {"data": {"panelCase": PIOTR_SEES}}
    for secret in NEVER:
        assert secret not in anna_text and secret not in piotr_text
    # nothing of the other's name or items
    for theirs in ("Piotr", "T-123-2", "C-1", "D-2", PIOTR_DIGITS):
        assert theirs not in anna_text
    for theirs in ("Anna", "T-123-5", "C-2", "D-1", ANNA_DIGITS):
        assert theirs not in piotr_text


async def test_the_history_pages_with_its_own_cursors(client: TestClient) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    query = "query ($a: String) { panelCase { history(first: 4, after: $a) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } } }"

    first = (await post(client, query, {}, anna))["data"]["panelCase"]["history"]
    second = (await post(client, query, {"a": first["pageInfo"]["endCursor"]}, anna))["data"]["panelCase"]["history"]

    assert [e["node"]["id"] for e in first["edges"]] == [
        "CASE-2026-000123-e016", "CASE-2026-000123-e015", "CASE-2026-000123-e007", "CASE-2026-000123-e006"]
    assert [e["node"]["id"] for e in second["edges"]] == ["CASE-2026-000123-e004", "CASE-2026-000123-e001"]
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"], second["pageInfo"]["hasNextPage"]) == (6, True, False)


async def test_the_complaint_speaks_its_own_words(client: TestClient) -> None:
    zofia = await signed_in(client, "P-1", "6787", case_id="CASE-2026-000131")

    answer = await post(client, "{ panelCase { caseType statusText stageText nextSteps documents { id name } "
                                 "actions { id } faq { question } } }", headers=zofia)

    assert answer == {"data": {"panelCase": {
        "caseType": "COMPLAINT", "statusText": "Registered", "stageText": "Registered",
        "nextSteps": ["The bank investigates your complaint and answers within 30 days."],
        "documents": [{"id": "D-1", "name": "Card statement for November"}], "actions": [],
        "faq": [{"question": "When will I get an answer?"}, {"question": "Can I appeal the answer?"}]}}}


def forbidden(path: str, message: str, column: int = 3, nullable: bool = False) -> dict[str, Any]:
    """A refused root field: no data (a nullable field answers null)."""
    return {"data": {path: None} if nullable else None, "errors": [{"message": message, "locations": [{"line": 1, "column": column}],
                                      "path": [path], "extensions": {"code": "FORBIDDEN"}}]}


@pytest.mark.parametrize(("query", "expected"), [
    ('{ case(id: "CASE-2026-000123") { id title } }',
     forbidden("case", "case is not available to a Customer Panel session", nullable=True)),
    ("{ cases { totalCount } }", forbidden("cases", "cases is not available to a Customer Panel session")),
    ('{ customer(id: "CUST-1001") { id name } }',
     forbidden("customer", "customer is not available to a Customer Panel session", nullable=True)),
    ("{ tasks { totalCount } }", forbidden("tasks", "tasks is not available to a Customer Panel session")),
    ("{ myTasks { totalCount } }", forbidden("myTasks", "myTasks is not available to a Customer Panel session")),
    ('{ myCase(id: "CASE-2026-000124") { caseId } }',
     {"data": {"myCase": None}, "errors": [{"message": "myCase is not available to a Customer Panel session",
                                            "locations": [{"line": 1, "column": 3}], "path": ["myCase"],
                                            "extensions": {"code": "FORBIDDEN"}}]}),
    ('{ _entities(representations: [{__typename: "Case", id: "CASE-2026-000123"}]) { ... on Case { id title } } }',
     {"data": None, "errors": [{"message": "_entities is not available to this caller",
                                "extensions": {"code": "FORBIDDEN"}}]}),
    ('mutation { issuePanelAccess(caseId: "CASE-2026-000123", participantId: "P-2") }',
     forbidden("issuePanelAccess", "issuePanelAccess is not available to a Customer Panel session", 12)),
], ids=["case", "cases", "customer", "tasks", "myTasks", "myCase", "_entities", "issuePanelAccess"])
async def test_a_panel_token_gets_no_data_from_any_employee_operation(
    client: TestClient, database: Any, query: str, expected: dict[str, Any],
) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    before = await database.collection("outbox").count_documents({})

    answer = await post(client, query, headers=anna)

    assert answer == expected
    assert await database.collection("outbox").count_documents({}) == before
    record = await database.collection("audit").find_one({}, sort=[("_id", -1)])
    assert (record["outcome"], record["caseIds"]) == ("denied", [])


async def test_a_panel_token_of_case_a_gets_nothing_of_case_b(client: TestClient) -> None:
    """A session names its case: panelCase has no case argument, and every other path is refused."""
    zofia = await signed_in(client, "P-1", "6787", case_id="CASE-2026-000131")

    own = await post(client, "{ panelCase { caseId } }", headers=zofia)
    other = await post(client, f'{{ case(id: "{MORTGAGE}") {{ id }} }}', headers=zofia)

    assert own == {"data": {"panelCase": {"caseId": "CASE-2026-000131"}}}
    assert other == forbidden("case", "case is not available to a Customer Panel session", nullable=True)


async def test_an_employee_token_is_refused_panel_case(client: TestClient) -> None:
    from tests.factories import bearer

    answer = await post(client, "{ panelCase { caseId } }", headers=bearer(roles=("case-reader",)))

    assert answer == {"data": {"panelCase": None}, "errors": [{
        "message": "panelCase is for Customer Panel sessions (panelLogin)", "locations": [{"line": 1, "column": 3}],
        "path": ["panelCase"], "extensions": {"code": "FORBIDDEN"}}]}
