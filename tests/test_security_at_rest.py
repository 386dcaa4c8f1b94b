"""Sensitive data at rest: after real traffic, no PESEL or phone number sits in clear in any collection.

The store is read the way an attacker with a database dump would: raw documents of every collection,
bypassing the app, searched as Python repr and as BSON bytes for the digits themselves.
"""
from __future__ import annotations

import logging
from typing import Any

import bson
import pytest
from aiohttp.test_utils import TestClient

from context import Services
from stores.database import Database
from stores.protection import is_sealed
from tests.factories import PUBLISH_CASE_EVENT, bearer, case_created_data, created, envelope, event, publish_input

CUSTOMER_PESEL = "85031207819"
NEW_CUSTOMER_PESEL = "44051401359"
CO_BORROWER_PESEL = "90072412344"
PARKED_PESEL = "02270803624"
PHONES = ("+48601200300", "+48602300400", "+48603400500")
SECRETS = (CUSTOMER_PESEL, NEW_CUSTOMER_PESEL, CO_BORROWER_PESEL, PARKED_PESEL, *PHONES,
           # a phone without its country code is still the phone
           *(phone.removeprefix("+48") for phone in PHONES))
PUBLISHER = bearer(roles=("system-publisher",), system=True, username="process-engine")
FULL_READER = bearer(roles=("back-office", "case-reader"), channel="BACK_OFFICE")


def participant(participant_id: str, phone: str, pesel: str) -> dict[str, Any]:
    return {"participant": {"id": participant_id, "role": "CO_BORROWER", "name": f"Person {participant_id}",
                            "phone": phone, "pesel": pesel}}


async def all_collections(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection, as a dump of the database would show it."""
    # The app has no reason to list collections; a test that wants "all of them" reaches past it on purpose.
    names = await database._db.list_collection_names()  # noqa: SLF001
    return {name: await database.collection(name).find({}).to_list(None) for name in sorted(names)}


def plaintext_found(collections: dict[str, list[dict[str, Any]]]) -> list[tuple[str, Any, str]]:
    found = []
    for name, docs in collections.items():
        for doc in docs:
            as_text, as_bson = repr(doc), bson.encode(doc)
            found += [(name, doc.get("_id"), secret) for secret in SECRETS
                      if secret in as_text or secret.encode() in as_bson]
    return found


async def publish(client: TestClient, raw: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": PUBLISH_CASE_EVENT,
                                                   "variables": {"event": publish_input(raw)}}, headers=PUBLISHER)
    return await response.json()


async def test_no_pesel_or_phone_is_stored_in_clear_anywhere(
    client: TestClient, services: Services, database: Database,
) -> None:
    # given: a case over Kafka's path and over HTTP, a participant added, the customer's PESEL corrected,
    # an event parked for a case that does not exist yet (and one that never will), then full reads
    await services.pipeline.ingest([created("CASE-1")])
    assert await publish(client, envelope("case.participant_added", "CASE-1", participant(
        "P-2", PHONES[1], CO_BORROWER_PESEL), event_id="evt-add-p2")) == {
        "data": {"publishCaseEvent": {"eventId": "evt-add-p2", "status": "APPLIED"}}}
    await services.pipeline.ingest([event("case.updated", "CASE-1", {"customer": {"pesel": NEW_CUSTOMER_PESEL}})])
    parked = [event("case.participant_added", "CASE-LATER", participant("P-9", PHONES[2], PARKED_PESEL)),
              event("case.participant_added", "CASE-NEVER", participant("P-8", PHONES[2], PARKED_PESEL))]
    assert [r.status.value for r in await services.pipeline.ingest(parked)] == ["PARKED", "PARKED"]
    parked_dump = await all_collections(database)
    assert await publish(client, envelope("case.created", "CASE-LATER", case_created_data(
        customer={"id": "CUST-2", "name": "Jan Zieliński", "pesel": CO_BORROWER_PESEL}), event_id="evt-later")) == {
        "data": {"publishCaseEvent": {"eventId": "evt-later", "status": "APPLIED"}}}
    read = await client.post("/graphql", headers=FULL_READER | {"X-Audit-Reason": "customer verification"}, json={
        "query": """{ a: case(id: "CASE-1") { customer { pesel } participants { id phone pesel } }
                      b: case(id: "CASE-LATER") { customer { pesel } participants { id phone pesel } }
                      c: customerByPesel(pesel: "44051401359") { id pesel } }"""})

    # then the API shows the values to a full reader (so the dump below is not vacuously clean) ...
    assert await read.json() == {"data": {
        "a": {"customer": {"pesel": NEW_CUSTOMER_PESEL}, "participants": [
            {"id": "P-1", "phone": PHONES[0], "pesel": CUSTOMER_PESEL},
            {"id": "P-2", "phone": PHONES[1], "pesel": CO_BORROWER_PESEL}]},
        # the parked participant came first (by event order), the created one after it
        "b": {"customer": {"pesel": CO_BORROWER_PESEL}, "participants": [
            {"id": "P-9", "phone": PHONES[2], "pesel": PARKED_PESEL},
            {"id": "P-1", "phone": PHONES[0], "pesel": CUSTOMER_PESEL}]},
        "c": {"id": "CUST-1", "pesel": NEW_CUSTOMER_PESEL}}}
    # ... but neither the dump taken while events were parked nor the final one holds any of them in clear
    assert plaintext_found(parked_dump) == []
    dump = await all_collections(database)
    assert {"cases", "events", "audit"} <= set(dump)
    assert plaintext_found(dump) == []


async def test_stored_sensitive_fields_are_sealed_values(services: Services, database: Database) -> None:
    await services.pipeline.ingest([created("CASE-1"), event("case.participant_added", "CASE-1",
                                                             participant("P-2", PHONES[1], CO_BORROWER_PESEL))])
    await services.pipeline.ingest([event("case.participant_added", "CASE-LATER",
                                          participant("P-9", PHONES[2], PARKED_PESEL))])

    case = await database.collection("cases").find_one({"_id": "CASE-1"})
    parked = await database.collection("events").find_one({"caseId": "CASE-LATER"})

    assert is_sealed(case["customer"]["pesel"])
    assert [(is_sealed(p["phone"]), is_sealed(p["pesel"])) for p in case["participants"]] == [(True, True)] * 2
    # the index that finds a customer by PESEL is a keyed hash, not the PESEL
    assert len(case["customer"]["peselIndex"]) == 64 and CUSTOMER_PESEL not in case["customer"]["peselIndex"]
    assert set(parked["envelope"]) == {"eventId", "sealed"} and is_sealed(parked["envelope"]["sealed"])


async def test_a_sealed_value_copied_into_another_case_does_not_open(
    client: TestClient, services: Services, database: Database,
) -> None:
    """An insider who can write the store cannot move a PESEL into a case a wider audience may read."""
    await services.pipeline.ingest([created("CASE-1"), created("CASE-2", data={
        "customer": {"id": "CUST-2", "name": "Jan Zieliński", "pesel": CO_BORROWER_PESEL}})])
    cases = database.collection("cases")
    victim = await cases.find_one({"_id": "CASE-1"})
    await cases.update_one({"_id": "CASE-2"}, {"$set": {"customer.pesel": victim["customer"]["pesel"]}})

    response = await client.post("/graphql", json={"query": '{ case(id: "CASE-2") { customer { pesel } } }'},
                                 headers=FULL_READER)

    body, text = await response.json(), await response.text()
    assert body["data"] == {"case": {"customer": {"pesel": None}}}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["case", "customer", "pesel"], "INTERNAL")]
    assert CUSTOMER_PESEL not in text


# --- invalid PESELs are refused and dead-lettered ---------------------------------------------------------------

INVALID = [
    pytest.param({"customer": {"id": "CUST-1", "name": "Anna Kowalska", "pesel": "85031207818"}},
                 "85031207818", "PESEL: checksum does not match", id="customer PESEL with a bad checksum"),
    pytest.param({"customer": {"id": "CUST-1", "name": "Anna Kowalska", "pesel": "85133207819"}},
                 "85133207819", "PESEL: month 13 is not a valid date", id="customer PESEL with a bad date"),
    pytest.param({"participants": [{"id": "P-1", "role": "PRIMARY_BORROWER", "name": "Anna Kowalska",
                                    "phone": PHONES[0], "pesel": "85023007812"}]},
                 "85023007812", "PESEL: 1985-02-30 is not a valid date", id="participant PESEL on 30 February"),
]


@pytest.mark.parametrize(("data", "pesel", "problem"), INVALID)
async def test_an_invalid_pesel_in_case_created_is_refused_and_dead_lettered(
    client: TestClient, services: Services, database: Database, data: dict[str, Any], pesel: str, problem: str,
) -> None:
    raw = envelope("case.created", "CASE-1", case_created_data(**data), event_id="evt-bad-pesel")

    body = await publish(client, raw)

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "PESEL" in error["message"] and problem in error["message"] and "evt-bad-pesel" in error["message"]
    assert pesel not in error["message"]  # the refusal does not echo the personal number back
    assert await services.cases.get_for_update(["CASE-1"]) == {}
    letters = await database.collection("dead_letters").find({}).to_list(None)
    assert [(letter["origin"], problem in letter["reason"]) for letter in letters] == [("graphql", True)]


async def test_a_dead_lettered_event_keeps_no_pesel_or_phone_in_clear(
    client: TestClient, database: Database,
) -> None:
    # One bad PESEL refuses the whole event, with the co-borrower's valid PESEL and phone inside it.
    raw = envelope("case.created", "CASE-1", case_created_data(participants=[
        {"id": "P-1", "role": "PRIMARY_BORROWER", "name": "Anna Kowalska", "phone": PHONES[0],
         "pesel": "85031207818"},
        {"id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak", "phone": PHONES[1], "pesel": CO_BORROWER_PESEL},
    ]))

    assert (await publish(client, raw))["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    dump = await all_collections(database)
    assert len(dump["dead_letters"]) == 1
    assert plaintext_found(dump) == []


# --- logs are at rest too ---------------------------------------------------------------------------------------

async def test_a_refused_search_by_pesel_keeps_the_pesel_out_of_the_log(
    client: TestClient, services: Services, caplog: pytest.LogCaptureFixture,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    with caplog.at_level(logging.DEBUG):
        response = await client.post("/graphql", headers=bearer(roles=("auditor",)), json={
            "query": '{ customerByPesel(pesel: "85031207819") { id } }'})

    assert [e["extensions"]["code"] for e in (await response.json())["errors"]] == ["FORBIDDEN"]
    assert CUSTOMER_PESEL not in caplog.text
