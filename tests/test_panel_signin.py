"""Signing in to a case in the Customer Panel, over HTTP as a participant would (issue 9, CONTRACT §5).

The demo mortgage CASE-2026-000123: P-1 Anna (PESEL …7819, +48601200300), P-2 Piotr (…2344, +48602300400).
Codes are read from the dev outbox (GET /dev/commands); time moves by writing stored timestamps.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from settings import Settings
from stores.database import Database
from tests.factories import bearer, case_created_data, closed, event
from tests.panel_flow import (
    ANNA_DIGITS, MORTGAGE, PIOTR_DIGITS, last_code, login, post, request_code, sent_codes, signed_in,
)

REFUSED = "the case number, the PESEL digits or the code is not right"


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=True, outbox_relay_seconds=3600.0, panel_answer_floor_seconds=0.0)


def unauthenticated(path: str = "panelLogin", message: str = REFUSED) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message, "locations": [{"line": 2, "column": 3}], "path": [path],
                                      "extensions": {"code": "UNAUTHENTICATED"}}]}


def rate_limited(message: str, path: str = "panelLogin", line: int = 2, column: int = 3) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message, "locations": [{"line": line, "column": column}],
                                      "path": [path], "extensions": {"code": "RATE_LIMITED"}}]}


async def sign_in_audit(database: Database) -> list[tuple[str, str, list[str], str | None]]:
    records = await database.collection("audit").find({"action": "PANEL_SIGN_IN"}).sort([("_id", 1)]).to_list(None)
    return [(r["operation"], r["outcome"], r["caseIds"], r.get("participantId")) for r in records]


async def sessions(database: Database) -> int:
    return await database.collection("panel_sessions").count_documents({})


async def test_each_co_borrower_gets_their_own_code_on_their_own_phone_and_signs_in_as_themselves(
    client: TestClient, database: Database,
) -> None:
    assert await request_code(client, MORTGAGE, ANNA_DIGITS) == {"data": {"panelRequestCode": True}}
    assert await request_code(client, MORTGAGE, PIOTR_DIGITS) == {"data": {"panelRequestCode": True}}

    codes = await sent_codes(client)
    assert [(c["channel"], c["to"], c["template"], sorted(c["params"])) for c in codes] == [
        ("SMS", "+48601200300", "panel-otp", ["caseId", "expiresAt", "otp", "participantId"]),
        ("SMS", "+48602300400", "panel-otp", ["caseId", "expiresAt", "otp", "participantId"])]
    assert [(c["params"]["caseId"], c["params"]["participantId"]) for c in codes] == [
        (MORTGAGE, "P-1"), (MORTGAGE, "P-2")]
    assert all(re.fullmatch(r"[0-9]{6}", c["params"]["otp"]) for c in codes)
    anna = await login(client, MORTGAGE, ANNA_DIGITS, codes[0]["params"]["otp"])
    piotr = await login(client, MORTGAGE, PIOTR_DIGITS, codes[1]["params"]["otp"])

    assert anna["data"]["panelLogin"]["participant"] == {"id": "P-1", "role": "PRIMARY_BORROWER", "name": "Anna Kowalska"}
    assert piotr["data"]["panelLogin"]["participant"] == {"id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak"}
    assert anna["data"]["panelLogin"]["token"].startswith("panel_")
    # the store keeps neither the code nor the token
    stored = str(await database.collection("panel_codes").find().to_list(None)) + str(
        await database.collection("panel_sessions").find().to_list(None))
    for secret in (codes[0]["params"]["otp"], codes[1]["params"]["otp"], anna["data"]["panelLogin"]["token"]):
        assert secret not in stored
    assert await sign_in_audit(database) == [
        ("panelRequestCode", "code-sent", [MORTGAGE], "P-1"), ("panelRequestCode", "code-sent", [MORTGAGE], "P-2"),
        ("panelLogin", "signed-in", [MORTGAGE], "P-1"), ("panelLogin", "signed-in", [MORTGAGE], "P-2")]


async def test_the_code_is_sealed_in_the_outbox(client: TestClient, database: Database) -> None:
    await request_code(client, MORTGAGE, ANNA_DIGITS)
    otp = await last_code(client, "P-1")

    records = await database.collection("outbox").find({"type": "notification.requested"}).to_list(None)

    assert [r["sensitive"] for r in records] == [True]
    assert otp not in str(records) and "+48601200300" not in str(records)


async def test_a_fragment_that_matches_nobody_sends_nothing_and_signs_nobody_in(
    client: TestClient, database: Database,
) -> None:
    assert await request_code(client, MORTGAGE, "1234") == {"data": {"panelRequestCode": True}}
    assert await request_code(client, "CASE-NOPE", "1234") == {"data": {"panelRequestCode": True}}

    answer = await login(client, MORTGAGE, "1234", "123456")

    assert answer == unauthenticated()
    assert await sent_codes(client) == [] and await sessions(database) == 0
    assert await sign_in_audit(database) == [
        ("panelRequestCode", "no-match", [MORTGAGE], None), ("panelRequestCode", "no-match", [], None),
        ("panelLogin", "no-match", [MORTGAGE], None)]


async def test_a_wrong_an_expired_and_a_reused_code_get_the_same_answer(client: TestClient, database: Database) -> None:
    await request_code(client, MORTGAGE, ANNA_DIGITS)
    otp = await last_code(client, "P-1")
    wrong = "000000" if otp != "000000" else "111111"

    assert await login(client, MORTGAGE, ANNA_DIGITS, wrong) == unauthenticated()
    assert "errors" not in await login(client, MORTGAGE, ANNA_DIGITS, otp)
    assert await login(client, MORTGAGE, ANNA_DIGITS, otp) == unauthenticated()  # reused
    await request_code(client, MORTGAGE, ANNA_DIGITS)
    fresh = await last_code(client, "P-1")
    await database.collection("panel_codes").update_one(
        {"_id": f"{MORTGAGE}/P-1"}, {"$set": {"expiresAt": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    assert await login(client, MORTGAGE, ANNA_DIGITS, fresh) == unauthenticated()  # expired

    assert await sessions(database) == 1
    assert [outcome for op, outcome, *_ in await sign_in_audit(database) if op == "panelLogin"] == [
        "wrong-code", "signed-in", "reused-code", "expired-code"]


async def test_a_new_code_voids_the_previous_one(client: TestClient, database: Database) -> None:
    await request_code(client, MORTGAGE, PIOTR_DIGITS)
    first = await last_code(client, "P-2")
    await request_code(client, MORTGAGE, PIOTR_DIGITS)
    second = await last_code(client, "P-2")

    if first != second:  # one chance in a million that the CSPRNG drew the same code twice
        assert await login(client, MORTGAGE, PIOTR_DIGITS, first) == unauthenticated()
    assert "errors" not in await login(client, MORTGAGE, PIOTR_DIGITS, second)


async def test_the_sixth_try_after_five_wrong_codes_is_rate_limited_even_with_the_right_code(
    client: TestClient, database: Database,
) -> None:
    await request_code(client, MORTGAGE, ANNA_DIGITS)
    otp = await last_code(client, "P-1")
    wrong = "000000" if otp != "000000" else "111111"
    for _ in range(5):
        assert await login(client, MORTGAGE, ANNA_DIGITS, wrong) == unauthenticated()

    answer = await login(client, MORTGAGE, ANNA_DIGITS, otp)

    assert answer == rate_limited("too many wrong codes for this case and PESEL digits; try again in 15 minutes")
    assert await sessions(database) == 0
    # and no new code goes out while the pair is locked
    assert await request_code(client, MORTGAGE, ANNA_DIGITS) == {"data": {"panelRequestCode": True}}
    assert len(await sent_codes(client)) == 1
    assert [outcome for _, outcome, *_ in await sign_in_audit(database)][-2:] == ["locked", "locked"]


async def test_a_new_code_does_not_reset_the_failures(client: TestClient, database: Database) -> None:
    await request_code(client, MORTGAGE, ANNA_DIGITS)
    for _ in range(4):
        await login(client, MORTGAGE, ANNA_DIGITS, "999999" if await last_code(client, "P-1") != "999999" else "888888")
    await request_code(client, MORTGAGE, ANNA_DIGITS)
    otp = await last_code(client, "P-1")
    await login(client, MORTGAGE, ANNA_DIGITS, "999999" if otp != "999999" else "888888")

    assert await login(client, MORTGAGE, ANNA_DIGITS, otp) == rate_limited(
        "too many wrong codes for this case and PESEL digits; try again in 15 minutes")


async def test_the_lock_lifts_after_fifteen_minutes(client: TestClient, database: Database) -> None:
    await request_code(client, MORTGAGE, ANNA_DIGITS)
    otp = await last_code(client, "P-1")
    for _ in range(5):
        await login(client, MORTGAGE, ANNA_DIGITS, "000000" if otp != "000000" else "111111")
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    await database.collection("panel_counters").update_many(
        {"lockedUntil": {"$ne": None}}, {"$set": {"lockedUntil": past, "windowEnds": past}})

    assert "errors" not in await login(client, MORTGAGE, ANNA_DIGITS, otp)


async def test_at_most_three_codes_per_participant_in_fifteen_minutes(client: TestClient) -> None:
    for _ in range(4):
        assert await request_code(client, MORTGAGE, PIOTR_DIGITS) == {"data": {"panelRequestCode": True}}

    assert len(await sent_codes(client)) == 3


async def test_one_address_is_served_thirty_code_requests_then_rate_limited(client: TestClient) -> None:
    for n in range(30):
        assert await request_code(client, f"CASE-{n}", "1234") == {"data": {"panelRequestCode": True}}

    assert await request_code(client, "CASE-31", "1234") == rate_limited(
        "too many code requests from this address; try again in 15 minutes", "panelRequestCode", 1, 35)


async def test_one_address_is_served_thirty_failed_sign_ins_then_rate_limited(client: TestClient) -> None:
    # Thirty different pairs, so no pair lock is reached: the address limit is what stops the next one.
    for n in range(30):
        assert await login(client, MORTGAGE, f"{n:04d}", "123456") == unauthenticated()

    assert await login(client, MORTGAGE, "0031", "123456") == rate_limited(
        "too many failed sign-ins from this address; try again in 15 minutes")


async def test_two_participants_sharing_the_last_digits_each_get_a_code_and_the_code_decides(
    client: TestClient, services: Any,
) -> None:
    await services.pipeline.ingest([event("case.created", "CASE-TWINS", case_created_data(participants=[
        {"id": "P-1", "role": "PRIMARY_BORROWER", "name": "Ewa Lis", "phone": "+48600000001", "pesel": "85031207819"},
        {"id": "P-2", "role": "CO_BORROWER", "name": "Jan Lis", "phone": "+48600000002", "pesel": "94080807819"}]))])

    await request_code(client, "CASE-TWINS", "7819")

    assert [c["to"] for c in await sent_codes(client)] == ["+48600000001", "+48600000002"]
    answer = await login(client, "CASE-TWINS", "7819", await last_code(client, "P-2"))
    assert answer["data"]["panelLogin"]["participant"] == {"id": "P-2", "role": "CO_BORROWER", "name": "Jan Lis"}


async def test_after_logout_and_after_idle_time_the_token_is_refused_everywhere(
    client: TestClient, database: Database,
) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    piotr = await signed_in(client, "P-2", PIOTR_DIGITS)
    assert await post(client, "mutation { panelLogout }", headers=anna) == {"data": {"panelLogout": True}}
    await database.collection("panel_sessions").update_one(
        {"participantId": "P-2"}, {"$set": {"idleUntil": datetime.now(timezone.utc) - timedelta(seconds=1)}})

    for headers in (anna, piotr):
        for query in ("{ panelCase { caseId } }", "mutation { panelLogout }"):
            response = await client.post("/graphql", json={"query": query}, headers=headers)
            assert (response.status, await response.json()) == (401, {"errors": [{
                "message": "invalid token: the panel session ended; sign in again",
                "extensions": {"code": "UNAUTHENTICATED"}}]})
    assert (await sign_in_audit(database))[-1] == ("panelLogout", "signed-out", [MORTGAGE], "P-1")


async def test_the_session_ends_sixty_minutes_after_sign_in_however_busy(client: TestClient, database: Database) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    await database.collection("panel_sessions").update_one(
        {}, {"$set": {"expiresAt": datetime.now(timezone.utc) - timedelta(seconds=1)}})

    response = await client.post("/graphql", json={"query": "{ panelCase { caseId } }"}, headers=anna)

    assert response.status == 401


async def test_sign_in_after_the_availability_window_is_forbidden_with_the_reason(
    client: TestClient, services: Any, database: Database,
) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    closing = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)  # more than 90 days ago
    await services.pipeline.ingest([closed(MORTGAGE, "APPROVED", at=closing, sequence=1000,
                                           time=datetime.now(timezone.utc))])
    reason = (f"case {MORTGAGE} was closed on 2026-01-05 and was available in the Customer Panel until 2026-04-05; "
              "please contact the bank")

    await request_code(client, MORTGAGE, PIOTR_DIGITS)
    answer = await login(client, MORTGAGE, PIOTR_DIGITS, await last_code(client, "P-2"))
    wrong = await login(client, MORTGAGE, PIOTR_DIGITS, "000000")
    read = await post(client, "{ panelCase { caseId } }", headers=anna)

    assert answer == {"data": None, "errors": [{"message": reason, "locations": [{"line": 2, "column": 3}],
                                                "path": ["panelLogin"], "extensions": {"code": "FORBIDDEN"}}]}
    assert wrong == unauthenticated()  # only the right code learns that the case is closed
    assert read == {"data": {"panelCase": None}, "errors": [{"message": reason, "locations": [{"line": 1, "column": 3}],
                                              "path": ["panelCase"], "extensions": {"code": "FORBIDDEN"}}]}
    assert await sessions(database) == 1  # Anna's, from before


async def test_an_unknown_case_gets_the_same_answer_in_about_the_same_time(
    client: TestClient, services: Any,
) -> None:
    """Means over 10 calls each, with the answer floor on: a generous bound, not a tight timing test."""
    object.__setattr__(services.settings, "panel_answer_floor_seconds", 0.03)

    async def mean(case_id: str, digits: str) -> float:
        started = time.monotonic()
        for _ in range(10):  # 3 x 10: the address limit (30) is not reached
            assert await request_code(client, case_id, digits) == {"data": {"panelRequestCode": True}}
        return (time.monotonic() - started) / 10

    matching = await mean(MORTGAGE, PIOTR_DIGITS)  # codes sent (3), then the participant limit
    unknown = await mean("CASE-2099-999999", PIOTR_DIGITS)
    wrong = await mean(MORTGAGE, "0000")

    assert all(0.03 <= m < 0.2 for m in (matching, unknown, wrong)), (matching, unknown, wrong)
    assert abs(matching - unknown) < 0.05 and abs(matching - wrong) < 0.05, (matching, unknown, wrong)


async def test_the_audit_never_holds_a_code_or_a_fragment(client: TestClient, database: Database) -> None:
    await request_code(client, MORTGAGE, PIOTR_DIGITS)
    otp = await last_code(client, "P-2")
    await login(client, MORTGAGE, PIOTR_DIGITS, otp)
    await login(client, MORTGAGE, PIOTR_DIGITS, otp)

    trail = str(await database.collection("audit").find().to_list(None))
    counters = str(await database.collection("panel_counters").find().to_list(None))

    assert otp not in trail and PIOTR_DIGITS not in trail and PIOTR_DIGITS not in counters


async def test_an_advisor_invites_a_participant_and_the_engine_may_too(client: TestClient, database: Database) -> None:
    invite = 'mutation { issuePanelAccess(caseId: "CASE-2026-000123", participantId: "P-2") }'

    by_advisor = await post(client, invite, headers=bearer(roles=("case-reader", "advisor"), branch="KRK-01"))
    by_engine = await post(client, invite, headers=bearer(roles=("system-publisher",), system=True,
                                                          username="process-engine"))
    by_reader = await post(client, invite, headers=bearer(roles=("case-reader",)))
    by_other_branch = await post(client, invite, headers=bearer(roles=("advisor",), branch="WAW-01"))

    assert by_advisor == by_engine == {"data": {"issuePanelAccess": True}}
    assert [e["extensions"]["code"] for e in by_reader["errors"] + by_other_branch["errors"]] == [
        "FORBIDDEN", "NOT_FOUND"]
    response = await client.get("/dev/commands", params={"type": "notification.requested"})
    assert [e["data"] for e in await response.json()] == [
        {"channel": "SMS", "to": "+48602300400", "template": "panel-invitation",
         "params": {"caseId": MORTGAGE, "participantId": "P-2"}}] * 2
