"""Issue 11 item 5: free text cannot carry what the policy protects.

A PESEL or a phone number inside free text (an action's summary and details, a status reason, an incident message,
a note, an appointment note) is redacted at ingest and its original sealed: a masked role reads the placeholder, a
role that sees the value in full reads the original (and the audit names the field), the stored documents and the
`case-updates` messages carry no clear value.
"""
from __future__ import annotations

import re
from typing import Any

import bson
import orjson
import pytest
from aiohttp.test_utils import TestClient

from context import Services
from stores.database import Database
from tests.factories import BASE_TIME, action_recorded, bearer, created, event, incident_raised, status_changed

# Back office in its own channel: PESEL and phone in full. A case reader: both masked. The call center: the phone in
# full (it calls back on it), the PESEL masked.
FULL = bearer(roles=("back-office",), channel="BACK_OFFICE", username="bo.full")
MASKED = bearer(roles=("case-reader",), channel="BACK_OFFICE", username="reader.masked")
CALL_CENTER = bearer(roles=("call-center",), channel="CALL_CENTER", username="cc.agent")

# (text as written, as a masked role reads it)
SHAPES = [
    pytest.param("PESEL 44051401359 confirmed", "PESEL [PESEL] confirmed", id="PESEL"),
    pytest.param("PESEL 440514 01359 given", "PESEL [PESEL] given", id="PESEL with a space"),
    pytest.param("id 440-514-013-59.", "id [PESEL].", id="PESEL with dashes"),
    pytest.param("nrPESEL:44051401359x", "nrPESEL:[PESEL]x", id="PESEL inside a word"),
    pytest.param("call back +48 605 111 222 today", "call back [PHONE] today", id="+48 phone with spaces"),
    pytest.param("tel.605111222", "tel.[PHONE]", id="9-digit phone"),
    pytest.param("mobile 605-111-222 or 12 345 67 89", "mobile [PHONE] or [PHONE]", id="grouped national numbers"),
    pytest.param("UK number +442079460958", "UK number [PHONE]", id="international E.164"),
    pytest.param("both 44051401359 and +48605111222", "both [PESEL] and [PHONE]", id="PESEL and phone"),
    pytest.param("already says [PESEL] but 90072412344 too", "already says [PESEL] but [PESEL] too",
                 id="a literal placeholder beside a real PESEL"),
]
NOT_SENSITIVE = [
    pytest.param("PESEL 44051401358 has a bad checksum", id="invalid checksum"),
    pytest.param("PESEL 44133101359 has no such date", id="invalid date"),
    pytest.param("amount 350000.00 PLN, ref 12345678", id="amounts and short numbers"),
]
HISTORY = "{ case(id: \"CASE-1\") { history(first: 5) { edges { node { kind summary details } } } } }"


def digits_and_text(original: str) -> list[str]:
    """What must not appear in clear: each sensitive value as written, and its bare digits."""
    found = re.findall(r"\+?[0-9][0-9 \-]{7,}[0-9]", original)
    return [*found, *(re.sub(r"[^0-9]", "", value) for value in found)]


async def read(client: TestClient, query: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    body = await response.json()
    assert "errors" not in body, body
    return body["data"]


async def audit_fields(database: Database, actor_name: str) -> list[str]:
    records = await database.collection("audit").find({"actorName": actor_name}).to_list(None)
    return [field for record in records for field in record.get("fields") or ()]


async def raw_dump(database: Database, *collections: str) -> tuple[str, bytes]:
    docs = [doc for name in collections for doc in await database.collection(name).find({}).to_list(None)]
    return repr(docs), b"".join(bson.encode(doc) for doc in docs)


async def published_updates(services: Services) -> bytes:
    return orjson.dumps(await services.outbox.sent("updates"), option=orjson.OPT_NAIVE_UTC)


def assert_no_clear_value(original: str, *dumps: str | bytes) -> None:
    for value in digits_and_text(original):
        for dump in dumps:
            assert (value.encode() if isinstance(dump, bytes) else value) not in dump, value


async def summary_of(client: TestClient, headers: dict[str, str], kind: str) -> dict[str, Any]:
    edges = (await read(client, HISTORY, headers))["case"]["history"]["edges"]
    return next(e["node"] for e in edges if e["node"]["kind"] == kind)


@pytest.mark.parametrize(("text", "masked"), SHAPES)
async def test_an_actions_summary_and_details_are_redacted_and_sealed(
        client: TestClient, services: Services, database: Database, text: str, masked: str) -> None:
    action = action_recorded("CASE-1", "A-1", BASE_TIME, summary=text)
    action.envelope["data"]["action"]["details"] = {"note": text, "lines": [text], "taskId": "T-1"}
    await services.pipeline.ingest([created("CASE-1"), event("case.action_recorded", "CASE-1",
                                                             action.envelope["data"])])

    assert await summary_of(client, MASKED, "CALL") == {
        "kind": "CALL", "summary": masked, "details": {"note": masked, "lines": [masked], "taskId": "T-1"}}
    assert await summary_of(client, FULL, "CALL") == {
        "kind": "CALL", "summary": text, "details": {"note": text, "lines": [text], "taskId": "T-1"}}
    assert {"HistoryEntry.summary:full", "HistoryEntry.details:full"} <= set(await audit_fields(database, "bo.full"))
    assert {"HistoryEntry.summary:masked", "HistoryEntry.details:masked"} <= set(
        await audit_fields(database, "reader.masked"))
    stored_text, stored_bson = await raw_dump(database, "history", "cases", "audit", "outbox")
    assert_no_clear_value(text, stored_text, stored_bson, await published_updates(services))
    assert masked.encode() in await published_updates(services)  # the placeholder is what other systems get


async def test_the_call_center_gets_the_phone_back_but_not_the_pesel(client: TestClient, services: Services,
                                                                     database: Database) -> None:
    await services.pipeline.ingest([created("CASE-1"), action_recorded(
        "CASE-1", "A-1", BASE_TIME, summary="PESEL 44051401359, call back on +48 605 111 222")])

    node = await summary_of(client, CALL_CENTER, "CALL")

    assert node["summary"] == "PESEL [PESEL], call back on +48 605 111 222"
    assert "HistoryEntry.summary:full" in await audit_fields(database, "cc.agent")


@pytest.mark.parametrize("text", NOT_SENSITIVE)
async def test_numbers_that_are_no_pesel_or_phone_stay_as_written(client: TestClient, services: Services,
                                                                   text: str) -> None:
    await services.pipeline.ingest([created("CASE-1"), action_recorded("CASE-1", "A-1", BASE_TIME, summary=text)])

    assert (await summary_of(client, MASKED, "CALL"))["summary"] == text


async def test_a_status_reason_and_an_incident_message_are_redacted(client: TestClient, services: Services,
                                                                    database: Database) -> None:
    reason = status_changed("CASE-1", "ON_HOLD")
    reason.envelope["data"]["reason"] = "customer 44051401359 asked to wait"
    incident = incident_raised("CASE-1", "I-1")
    incident.envelope["data"]["incident"]["message"] = "SMS to +48605111222 bounced"
    await services.pipeline.ingest([created("CASE-1"), event("case.status_changed", "CASE-1", reason.envelope["data"]),
                                    event("case.incident_raised", "CASE-1", incident.envelope["data"])])
    query = '{ case(id: "CASE-1") { incidents { message } history(first: 5) { edges { node { kind summary } } } } }'

    masked, full = await read(client, query, MASKED), await read(client, query, FULL)

    assert masked["case"]["incidents"] == [{"message": "SMS to [PHONE] bounced"}]
    assert full["case"]["incidents"] == [{"message": "SMS to +48605111222 bounced"}]
    summaries = {e["node"]["kind"]: e["node"]["summary"] for e in masked["case"]["history"]["edges"]}
    assert summaries["STATUS_CHANGED"] == "Status changed to ON_HOLD (customer [PESEL] asked to wait)"
    assert summaries["INCIDENT_RAISED"] == "Incident: SMS to [PHONE] bounced"
    assert {e["node"]["kind"]: e["node"]["summary"] for e in full["case"]["history"]["edges"]}["STATUS_CHANGED"] == (
        "Status changed to ON_HOLD (customer 44051401359 asked to wait)")
    assert "Incident.message:full" in await audit_fields(database, "bo.full")
    stored_text, stored_bson = await raw_dump(database, "history", "cases", "tasks", "audit", "outbox")
    updates = await published_updates(services)
    for original in ("44051401359", "+48605111222", "605111222"):
        assert_no_clear_value(original, stored_text, stored_bson, updates)
    assert b"SMS to [PHONE] bounced" in updates


async def test_a_case_rebuilt_as_of_a_moment_is_redacted_too(client: TestClient, services: Services) -> None:
    await services.pipeline.ingest([created("CASE-1"), action_recorded(
        "CASE-1", "A-1", BASE_TIME, summary="PESEL 44051401359 and +48 605 111 222")])
    query = ('{ case(id: "CASE-1", asOf: "2030-01-01T00:00:00Z") { history(first: 5) '
             '{ edges { node { kind summary } } } } }')

    masked, full = await read(client, query, MASKED), await read(client, query, FULL)

    def summary(data: dict[str, Any]) -> str:
        return next(e["node"]["summary"] for e in data["case"]["history"]["edges"] if e["node"]["kind"] == "CALL")

    assert summary(masked) == "PESEL [PESEL] and [PHONE]"
    assert summary(full) == "PESEL 44051401359 and +48 605 111 222"


NOTE = "Klient podał PESEL 440514-01359, tel. 605 111 222"
NOTE_MASKED = "Klient podał PESEL [PESEL], tel. [PHONE]"
ADD_NOTE = 'mutation($t: String!) { addNote(caseId: "CASE-1", text: $t) { id text } }'
EDIT_NOTE = 'mutation($id: ID!, $t: String!) { editNote(noteId: $id, text: $t) { text versions { text } } }'
NOTES = '{ case(id: "CASE-1") { notes { text versions { text } } } }'


async def test_a_note_is_redacted_and_its_versions_keep_their_originals(
        client: TestClient, services: Services, database: Database) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    author = bearer(roles=("back-office",), channel="BACK_OFFICE", username="bo.full")

    added = await client.post("/graphql", json={"query": ADD_NOTE, "variables": {"t": NOTE}}, headers=author)
    note = (await added.json())["data"]["addNote"]
    edited = await client.post("/graphql", json={"query": EDIT_NOTE, "variables": {"id": note["id"],
                                                                                  "t": "now +44 20 7946 0958"}},
                               headers=author)

    assert note["text"] == NOTE
    assert (await edited.json())["data"]["editNote"] == {"text": "now +44 20 7946 0958", "versions": [{"text": NOTE}]}
    assert (await read(client, NOTES, MASKED))["case"]["notes"] == [
        {"text": "now [PHONE]", "versions": [{"text": NOTE_MASKED}]}]
    assert (await read(client, NOTES, CALL_CENTER))["case"]["notes"] == [
        {"text": "now +44 20 7946 0958", "versions": [{"text": "Klient podał PESEL [PESEL], tel. 605 111 222"}]}]
    assert {"Note.text:full", "NoteVersion.text:full"} <= set(await audit_fields(database, "bo.full"))
    stored_text, stored_bson = await raw_dump(database, "notes", "history", "audit", "outbox")
    for original in ("440514-01359", "44051401359", "605 111 222", "605111222", "+44 20 7946 0958"):
        assert_no_clear_value(original, stored_text, stored_bson, await published_updates(services))
    # The audit keeps the change as the placeholder text: it names what changed, not the value.
    changes = [c for r in await database.collection("audit").find({"operation": {"$ne": "applyEvents"}}).to_list(None)
               for c in r.get("changes") or ()]
    assert [c["new"] for c in changes if c["field"].endswith(".text")] == [NOTE_MASKED, "now [PHONE]"]


async def test_an_unchanged_note_with_a_pesel_keeps_no_new_version(client: TestClient, services: Services) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    author = bearer(roles=("back-office",), channel="BACK_OFFICE", username="bo.full")
    added = await client.post("/graphql", json={"query": ADD_NOTE, "variables": {"t": NOTE}}, headers=author)
    note_id = (await added.json())["data"]["addNote"]["id"]

    again = await client.post("/graphql", json={"query": EDIT_NOTE, "variables": {"id": note_id, "t": NOTE}},
                              headers=author)

    assert (await again.json())["data"]["editNote"] == {"text": NOTE, "versions": []}
