"""Notes on the customer card over HTTP with real tokens: addNote, editNote, deleteNote, Case.notes and
Customer.notes (CONTRACT §5 "Dashboard").

A note is written by an employee on a case or on a customer; only its author edits or deletes it; a deleted note
is no longer listed. A case note is visible to whoever may see its case, a customer note to whoever may see any
case of that customer.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from resolvers import notes as notes_module
from stores.database import Database
from tests.factories import bearer, case_created_data, created

ANNA = bearer(username="anna.nowak", roles=("advisor",), channel="BRANCH", branch="KRK-01")
ANNA_ID = "8cfd2508-a45b-5d8c-80cc-7223569d610a"
EWA = bearer(username="ewa.lis", roles=("call-center",), channel="CALL_CENTER")
# An advisor of another branch than the cases' (KRK-01).
PIOTR = bearer(username="piotr.zielinski", roles=("advisor",), channel="BRANCH", branch="WAW-01")
READER = bearer(username="celina.maj", roles=("case-reader",))
NO_ROLES = bearer(username="adam.dabrowski", roles=())
AUDITOR = bearer(username="tomasz.kaminski", roles=("auditor",))

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)

NOTE = "id text author channel at editedAt caseId customerId versions { text at }"
ADD_ON_CASE = f"mutation ($id: ID, $text: String!) {{ addNote(caseId: $id, text: $text) {{ {NOTE} }} }}"
ADD_ON_CUSTOMER = f"mutation ($id: ID, $text: String!) {{ addNote(customerId: $id, text: $text) {{ {NOTE} }} }}"
EDIT = f"mutation ($id: ID!, $text: String!) {{ editNote(noteId: $id, text: $text) {{ {NOTE} }} }}"
DELETE = "mutation ($id: ID!) { deleteNote(noteId: $id) }"
CASE_NOTES = """query ($id: ID!) { case(id: $id) { notes { text author versions { text } }
  history(first: 1) { edges { node { kind actor { type id name } channel summary details } } } } }"""
CUSTOMER_NOTES = "query ($id: ID!) { customer(id: $id) { notes { text author channel } } }"
TRAIL = """{ auditTrail(first: 50) { edges { node { actorName operation caseIds customerIds outcome
  changes { caseId field old new } } } } }"""


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each note write draws the next minute after T0."""
    minutes: Iterator[int] = iter(range(1, 1000))
    monkeypatch.setattr(notes_module, "_now", lambda: T0 + timedelta(minutes=next(minutes)))


@pytest.fixture
async def cases(services: Any) -> None:
    """CASE-1 and CASE-2 of customer CUST-1, branch KRK-01; CASE-9 of CUST-9 in a type call-center cannot see."""
    await services.pipeline.ingest([
        created("CASE-1"), created("CASE-2"),
        created("CASE-9", data={"caseType": "LEASING", "customer": {"id": "CUST-9", "name": "Jan Lis"}}),
    ])


def code_of(answer: dict[str, Any]) -> str:
    [error] = answer["errors"]
    assert answer["data"] is None
    return error["extensions"]["code"]


async def add(gql: Any, query: str, subject: str, text: str, headers: dict[str, str] = ANNA) -> dict[str, Any]:
    answer = await gql(query, {"id": subject, "text": text}, headers=headers)
    assert "errors" not in answer, answer
    return answer["data"]["addNote"]


async def case_notes(gql: Any, case_id: str = "CASE-1", headers: dict[str, str] = ANNA) -> Any:
    return (await gql(CASE_NOTES, {"id": case_id}, headers=headers))["data"]["case"]


async def customer_notes(gql: Any, customer_id: str = "CUST-1", headers: dict[str, str] = ANNA) -> Any:
    return (await gql(CUSTOMER_NOTES, {"id": customer_id}, headers=headers))["data"]["customer"]


async def test_a_note_on_a_case_is_listed_on_the_case_and_in_its_history(gql: Any, cases: None) -> None:
    # When Anna writes a note on CASE-1
    note = await add(gql, ADD_ON_CASE, "CASE-1", "  Customer asked to call back after 5 pm.  ")

    # Then it is hers, trimmed, through her channel, with no earlier versions
    assert note == {"id": note["id"], "text": "Customer asked to call back after 5 pm.", "author": "anna.nowak",
                    "channel": "BRANCH", "at": at(1), "editedAt": None, "caseId": "CASE-1", "customerId": "CUST-1",
                    "versions": []}
    # And the case lists it, and its history says a note was written (not what it says)
    assert await case_notes(gql) == {
        "notes": [{"text": "Customer asked to call back after 5 pm.", "author": "anna.nowak", "versions": []}],
        "history": {"edges": [{"node": {
            "kind": "NOTE_ADDED", "actor": {"type": "USER", "id": ANNA_ID, "name": "anna.nowak"},
            "channel": "BRANCH", "summary": "Note added by anna.nowak", "details": {"noteId": note["id"]}}}]}}
    # And it is not a note on the customer
    assert await customer_notes(gql) == {"notes": []}


async def test_notes_on_a_case_and_on_a_customer_are_listed_newest_first(gql: Any, cases: None) -> None:
    # Given two notes on CASE-1 and two on its customer, from two employees
    await add(gql, ADD_ON_CASE, "CASE-1", "First call.")
    await add(gql, ADD_ON_CUSTOMER, "CUST-1", "Prefers e-mail.", headers=EWA)
    await add(gql, ADD_ON_CASE, "CASE-1", "Second call.", headers=EWA)
    await add(gql, ADD_ON_CUSTOMER, "CUST-1", "Moved to Gdańsk.")

    # Then each list holds its own, newest first
    assert (await case_notes(gql, headers=EWA))["notes"] == [
        {"text": "Second call.", "author": "ewa.lis", "versions": []},
        {"text": "First call.", "author": "anna.nowak", "versions": []},
    ]
    assert await customer_notes(gql, headers=EWA) == {"notes": [
        {"text": "Moved to Gdańsk.", "author": "anna.nowak", "channel": "BRANCH"},
        {"text": "Prefers e-mail.", "author": "ewa.lis", "channel": "CALL_CENTER"},
    ]}
    # And another case of the same customer has none
    assert (await case_notes(gql, "CASE-2"))["notes"] == []


async def test_an_edit_keeps_every_earlier_version(gql: Any, cases: None) -> None:
    # Given Anna's note on the customer
    note = await add(gql, ADD_ON_CUSTOMER, "CUST-1", "Income: 8,000 PLN.")

    # When she corrects it twice
    await gql(EDIT, {"id": note["id"], "text": "Income: 9,000 PLN."}, headers=ANNA)
    answer = await gql(EDIT, {"id": note["id"], "text": "Income: 9,500 PLN net."}, headers=ANNA)

    # Then the note has the last text, and both earlier ones with the moments they were written
    assert answer == {"data": {"editNote": {
        "id": note["id"], "text": "Income: 9,500 PLN net.", "author": "anna.nowak", "channel": "BRANCH",
        "at": at(1), "editedAt": at(3), "caseId": None, "customerId": "CUST-1",
        "versions": [{"text": "Income: 8,000 PLN.", "at": at(1)}, {"text": "Income: 9,000 PLN.", "at": at(2)}]}}}
    assert await customer_notes(gql) == {"notes": [
        {"text": "Income: 9,500 PLN net.", "author": "anna.nowak", "channel": "BRANCH"}]}


async def test_another_employee_may_neither_edit_nor_delete_a_note(gql: Any, cases: None) -> None:
    # Given Anna's note on CASE-1
    note = await add(gql, ADD_ON_CASE, "CASE-1", "Valuation ordered.")

    # When Ewa, who sees the case, tries to change or delete it
    edited = await gql(EDIT, {"id": note["id"], "text": "Valuation cancelled."}, headers=EWA)
    deleted = await gql(DELETE, {"id": note["id"]}, headers=EWA)

    # Then both are FORBIDDEN and the note is as Anna wrote it
    assert (code_of(edited), code_of(deleted)) == ("FORBIDDEN", "FORBIDDEN")
    assert (await case_notes(gql))["notes"] == [{"text": "Valuation ordered.", "author": "anna.nowak", "versions": []}]


async def test_a_deleted_note_is_no_longer_listed_nor_editable(gql: Any, cases: None, database: Database) -> None:
    # Given Anna's notes on CASE-1 and on CUST-1
    on_case = await add(gql, ADD_ON_CASE, "CASE-1", "Wrong case, sorry.")
    on_customer = await add(gql, ADD_ON_CUSTOMER, "CUST-1", "Wrong customer, sorry.")

    # When she deletes both
    answers = [await gql(DELETE, {"id": n["id"]}, headers=ANNA) for n in (on_case, on_customer)]

    # Then they are gone from the lists, and editing or deleting again finds nothing
    assert answers == [{"data": {"deleteNote": True}}] * 2
    assert (await case_notes(gql))["notes"] == []
    assert await customer_notes(gql) == {"notes": []}
    assert code_of(await gql(EDIT, {"id": on_case["id"], "text": "Back?"}, headers=ANNA)) == "NOT_FOUND"
    assert code_of(await gql(DELETE, {"id": on_customer["id"]}, headers=ANNA)) == "NOT_FOUND"
    # But the records stay, for the audit
    kept = await database.collection("notes").find({}, {"_id": 0, "text": 1, "deleted": 1}).to_list(None)
    assert sorted(kept, key=lambda n: n["text"]) == [{"text": "Wrong case, sorry.", "deleted": True},
                                                     {"text": "Wrong customer, sorry.", "deleted": True}]


async def test_notes_out_of_the_callers_row_scope_are_not_found_and_not_listed(gql: Any, cases: None) -> None:
    # Given Anna's notes on CASE-1 and CUST-1 (branch KRK-01)
    on_case = await add(gql, ADD_ON_CASE, "CASE-1", "Spoke with the valuer.")
    on_customer = await add(gql, ADD_ON_CUSTOMER, "CUST-1", "VIP: handle personally.")

    # When Piotr, an advisor in WAW-01, reads, writes, edits or deletes them
    listed = await gql("{ cases { edges { node { id notes { text } } } } }", headers=PIOTR)
    answers = [
        await gql(ADD_ON_CASE, {"id": "CASE-1", "text": "Hello"}, headers=PIOTR),
        await gql(ADD_ON_CUSTOMER, {"id": "CUST-1", "text": "Hello"}, headers=PIOTR),
        await gql(EDIT, {"id": on_case["id"], "text": "Hello"}, headers=PIOTR),
        await gql(EDIT, {"id": on_customer["id"], "text": "Hello"}, headers=PIOTR),
        await gql(DELETE, {"id": on_case["id"]}, headers=PIOTR),
        await gql(DELETE, {"id": on_customer["id"]}, headers=PIOTR),
    ]

    # Then nothing is listed and everything is NOT_FOUND, as if the notes did not exist
    assert listed == {"data": {"cases": {"edges": []}}}
    assert [code_of(a) for a in answers] == ["NOT_FOUND"] * 6
    assert await gql(CUSTOMER_NOTES, {"id": "CUST-1"}, headers=PIOTR) == {"data": {"customer": None}}
    # And a case type the caller may not see is NOT_FOUND as well
    assert code_of(await gql(ADD_ON_CASE, {"id": "CASE-9", "text": "Hello"}, headers=EWA)) == "NOT_FOUND"
    assert code_of(await gql(ADD_ON_CUSTOMER, {"id": "CUST-9", "text": "Hello"}, headers=EWA)) == "NOT_FOUND"
    # And Anna's notes are as she wrote them
    assert (await case_notes(gql))["notes"] == [{"text": "Spoke with the valuer.", "author": "anna.nowak",
                                                 "versions": []}]
    assert await customer_notes(gql) == {"notes": [
        {"text": "VIP: handle personally.", "author": "anna.nowak", "channel": "BRANCH"}]}


@pytest.mark.parametrize(("variables", "query"), [
    pytest.param({"text": "Both or none."}, "mutation ($text: String!) { addNote(text: $text) { id } }", id="neither"),
    pytest.param({"text": "Both."}, 'mutation ($text: String!) { addNote(caseId: "CASE-1", customerId: "CUST-1", '
                                    "text: $text) { id } }", id="both"),
    pytest.param({"id": "CASE-1", "text": "   "}, ADD_ON_CASE, id="blank text"),
    pytest.param({"id": "CASE-1", "text": "x" * 4_001}, ADD_ON_CASE, id="4001 characters"),
])
async def test_a_note_needs_one_subject_and_1_to_4000_characters(
    gql: Any, cases: None, variables: dict[str, Any], query: str,
) -> None:
    assert code_of(await gql(query, variables, headers=ANNA)) == "BAD_USER_INPUT"
    assert (await case_notes(gql))["notes"] == []


async def test_a_note_of_4000_characters_is_accepted(gql: Any, cases: None) -> None:
    assert (await add(gql, ADD_ON_CASE, "CASE-1", "x" * 4_000))["text"] == "x" * 4_000


@pytest.mark.parametrize("headers", [NO_ROLES, READER, AUDITOR], ids=["no roles", "case-reader", "auditor"])
async def test_a_caller_who_writes_no_notes_is_forbidden(gql: Any, cases: None, headers: dict[str, str]) -> None:
    answer = await gql(ADD_ON_CASE, {"id": "CASE-1", "text": "Hello"}, headers=headers)

    assert [e["extensions"]["code"] for e in answer["errors"]] == ["FORBIDDEN"]
    assert (await case_notes(gql))["notes"] == []


async def test_anonymous_callers_are_unauthenticated(gql: Any, cases: None) -> None:
    answer = await gql(ADD_ON_CASE, {"id": "CASE-1", "text": "Hello"}, headers={})

    assert [e["extensions"]["code"] for e in answer["errors"]] == ["UNAUTHENTICATED"]
    assert (await case_notes(gql))["notes"] == []


async def test_every_note_write_is_audited_with_the_old_and_new_text(gql: Any, cases: None) -> None:
    # Given Anna's note on CASE-1, edited, then refused to Ewa, then deleted
    note = await add(gql, ADD_ON_CASE, "CASE-1", "Collateral: flat in Kraków.")
    await gql(EDIT, {"id": note["id"], "text": "Collateral: house in Kraków."}, headers=ANNA)
    await gql(EDIT, {"id": note["id"], "text": "x"}, headers=EWA)
    await gql(DELETE, {"id": note["id"]}, headers=ANNA)

    # Then the trail holds each write, naming the case and customer, with the text before and after
    trail = (await gql(TRAIL, headers=AUDITOR))["data"]["auditTrail"]["edges"]
    writes = [e["node"] for e in trail if e["node"]["operation"] in ("addNote", "editNote", "deleteNote")]
    field = f"notes[{note['id']}]"
    assert writes[::-1] == [
        {"actorName": "anna.nowak", "operation": "addNote", "caseIds": ["CASE-1"], "customerIds": ["CUST-1"],
         "outcome": "ok", "changes": [
             {"caseId": "CASE-1", "field": f"{field}.text", "old": None, "new": "Collateral: flat in Kraków."}]},
        {"actorName": "anna.nowak", "operation": "editNote", "caseIds": ["CASE-1"], "customerIds": ["CUST-1"],
         "outcome": "ok", "changes": [{"caseId": "CASE-1", "field": f"{field}.text",
                                            "old": "Collateral: flat in Kraków.",
                                            "new": "Collateral: house in Kraków."}]},
        {"actorName": "ewa.lis", "operation": "editNote", "caseIds": ["CASE-1"], "customerIds": ["CUST-1"],
         "outcome": "denied", "changes": []},
        {"actorName": "anna.nowak", "operation": "deleteNote", "caseIds": ["CASE-1"], "customerIds": ["CUST-1"],
         "outcome": "ok", "changes": [{"caseId": "CASE-1", "field": f"{field}.deleted", "old": False,
                                            "new": True}]},
    ]


async def test_a_page_of_50_cases_with_their_notes_costs_one_notes_read(
    services: Any, database: Database, gql: Any,
) -> None:
    # Given 50 cases, each with a note
    await services.pipeline.ingest([created(f"CASE-{i:02d}", data=case_created_data()) for i in range(50)])
    for i in range(50):
        await add(gql, ADD_ON_CASE, f"CASE-{i:02d}", f"Note {i}")

    # When a client lists them with their notes
    database.round_trips.reset()
    answer = await gql("{ cases(first: 50, orderBy: {field: ID, direction: ASC}) "
                       "{ edges { node { id notes { text } } } } }", headers=ANNA)

    # Then every case has its note, for one read of the notes (and no count: the page does not ask for totalCount)
    edges = answer["data"]["cases"]["edges"]
    assert [e["node"] for e in edges] == [{"id": f"CASE-{i:02d}", "notes": [{"text": f"Note {i}"}]} for i in range(50)]
    assert database.round_trips.by_operation == {"cases.aggregate": 1, "notes.find": 1, "audit.insert_one": 1}


async def test_every_note_change_is_published_without_its_text(gql: Any, services: Any, cases: None) -> None:
    on_case = await add(gql, ADD_ON_CASE, "CASE-1", "Customer asked for a lower margin.")
    on_customer = await add(gql, ADD_ON_CUSTOMER, "CUST-1", "Prefers calls after 5 pm.")
    await gql(EDIT, {"id": on_case["id"], "text": "Customer asked for a lower margin again."}, headers=ANNA)
    await gql(DELETE, {"id": on_customer["id"]}, headers=ANNA)

    published = [e for e in await services.outbox.sent("updates") if e["type"] == "case.note_changed"]
    assert [(e.get("subject"), e["data"]["caseId"], e["data"]["customerId"], e["data"]["noteId"], e["data"]["change"],
             e["data"]["by"]) for e in published] == [
        ("CASE-1", "CASE-1", "CUST-1", on_case["id"], "NOTE_ADDED", "anna.nowak"),
        (None, None, "CUST-1", on_customer["id"], "NOTE_ADDED", "anna.nowak"),
        ("CASE-1", "CASE-1", "CUST-1", on_case["id"], "NOTE_EDITED", "anna.nowak"),
        (None, None, "CUST-1", on_customer["id"], "NOTE_DELETED", "anna.nowak")]
    assert "margin" not in repr(published) and "5 pm" not in repr(published)


async def test_a_note_whose_writer_stopped_before_relaying_reaches_the_history_through_the_relay_loop(
    gql: Any, services: Any, database: Any, cases: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def stopped(*_args: Any) -> None:
        return None

    relay_records = services.staging.relay_records
    monkeypatch.setattr(services.staging, "relay_records", stopped)
    note = await add(gql, ADD_ON_CASE, "CASE-1", "Called back.")
    assert [e["kind"] for e in (await database.collection("notes").find_one({"_id": note["id"]}))["outbox"]] == [
        "message", "history"]
    monkeypatch.setattr(services.staging, "relay_records", relay_records)

    # The relay loop's sweep takes over what the stopped writer staged (its stagedAt is minutes old)
    await services.staging.sweep()

    history = await gql("""query { case(id: "CASE-1") { history(first: 1) { edges { node { kind summary } } } } }""",
                        headers=ANNA)
    assert history["data"]["case"]["history"]["edges"] == [
        {"node": {"kind": "NOTE_ADDED", "summary": "Note added by anna.nowak"}}]
    assert (await database.collection("notes").find_one({"_id": note["id"]}))["outbox"] == []
