"""The audit trail under attack: every read and refusal is on record, tampering is detected, and a request
that cannot be recorded is not served. Read back through `auditTrail` as an auditor, like an auditor would.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

import audit_verify
from access.policy import FIELD_POLICY, OPERATION_POLICY, ROLES, field_access
from context import Services
from stores.audit import record_hash
from stores.database import Database
from tests.factories import (
    PUBLISH_CASE_EVENT, bearer, case_created_data, created, envelope, publish_input, status_changed, token_subject,
)
from tests.live import BusWatch, Members, next_frame, signed_in_socket, subscribe

AUDITOR = bearer(roles=("auditor",), channel="BACK_OFFICE", username="tomasz.kaminski")
CALL_CENTER_ROLES = ("call-center", "case-reader")
REASON = "Customer called about the instalment (ticket 4711)"
TRAIL = """query ($caseId: ID, $actor: String) { auditTrail(caseId: $caseId, actor: $actor, first: 50) { edges { node {
  actor actorName action operation caseIds customerIds fields eventIds channel reason outcome
  changes { caseId field old new } } } } }"""
CASE_DETAIL = """query CaseDetail { case(id: "CASE-1") {
  id title customer { name pesel } participants { name phone pesel } } }"""


async def post(client: TestClient, query: str, headers: dict[str, str],
               variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    return await response.json()


async def subject_of(client: TestClient, headers: dict[str, str]) -> str:
    """Who the audit names for this token: `me.id`, as the caller can look it up themselves."""
    return (await post(client, "{ me { id } }", headers))["data"]["me"]["id"]


def created_changes(case_id: str, created_at: str) -> list[dict[str, Any]]:
    """Old -> new of every field that `case_created_data()` sets, as the audit lists them; secrets stay sealed."""
    new = [("version", 1), ("branch", "KRK-01"), ("caseType", "MORTGAGE"), ("channel", "BRANCH"),
           ("createdAt", created_at), ("customer.id", "CUST-1"), ("customer.name", "Anna Kowalska"),
           ("customer.pesel", "<sealed>"), ("customer.segment", "RETAIL"), ("participants[P-1].name", "Anna Kowalska"),
           ("participants[P-1].pesel", "<sealed>"), ("participants[P-1].phone", "<sealed>"),
           ("participants[P-1].role", "PRIMARY_BORROWER"), ("product.amount", "350000.00"), ("product.code", "MORT"),
           ("product.currency", "PLN"), ("product.name", "Mortgage"), ("restricted", False),
           ("sourceSystem", "branch-frontend"), ("stage", "APPLICATION"), ("status", "NEW"),
           ("title", "Mortgage for a flat")]
    return [{"caseId": case_id, "field": field, "old": None, "new": value} for field, value in new]


async def trail(client: TestClient, **filters: str) -> list[dict[str, Any]]:
    body = await post(client, TRAIL, AUDITOR, filters)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["auditTrail"]["edges"]]


async def test_a_read_is_on_record_with_who_which_case_which_fields_channel_and_reason(
    client: TestClient, services: Services,
) -> None:
    opened = created("CASE-1")
    await services.pipeline.ingest([opened])
    caller = bearer(roles=CALL_CENTER_ROLES, channel="CALL_CENTER", username="ewa.kowalska")
    actor = await subject_of(client, caller)

    body = await post(client, CASE_DETAIL, caller | {"X-Audit-Reason": REASON})

    assert "errors" not in body and body["data"]["case"]["id"] == "CASE-1"
    revealed = sorted(f"{key}:{field_access(key, frozenset(CALL_CENTER_ROLES), 'CALL_CENTER').value}"
                      for key in FIELD_POLICY)
    assert await trail(client, caseId="CASE-1") == [
        {"actor": actor, "actorName": "ewa.kowalska", "action": "READ", "operation": "CaseDetail", "caseIds": ["CASE-1"],
         "customerIds": ["CUST-1"], "fields": revealed, "eventIds": [], "channel": "CALL_CENTER", "reason": REASON,
         "outcome": "ok", "changes": []},
        {"actor": "system", "actorName": "tests", "action": "WRITE", "operation": "applyEvents",
         "caseIds": ["CASE-1"], "customerIds": ["CUST-1"], "fields": [], "eventIds": [opened.id], "channel": None,
         "reason": None, "outcome": "ok", "changes": created_changes("CASE-1", opened.envelope["time"])},
    ]


async def test_reading_the_same_case_again_is_on_record_again_with_the_same_detail(
    client: TestClient, services: Services,
) -> None:
    """A repeated read may be answered faster (a response cache), never off the record."""
    await services.pipeline.ingest([created("CASE-1")])
    caller = bearer(roles=CALL_CENTER_ROLES, channel="CALL_CENTER", username="ewa.kowalska")

    first = await post(client, CASE_DETAIL, caller | {"X-Audit-Reason": "first call"})
    second = await post(client, CASE_DETAIL, caller | {"X-Audit-Reason": "second call"})

    assert first == second and "errors" not in first
    [again, once, _write] = await trail(client, caseId="CASE-1")
    assert (again["reason"], once["reason"]) == ("second call", "first call")
    assert {k: v for k, v in again.items() if k != "reason"} == {k: v for k, v in once.items() if k != "reason"}


async def test_reading_the_audit_trail_is_itself_on_record(client: TestClient) -> None:
    auditor = await subject_of(client, AUDITOR)

    await trail(client, caseId="CASE-1")

    [newest, *_] = await trail(client, actor=auditor)
    assert (newest["action"], newest["operation"], newest["outcome"]) == ("READ", "auditTrail", "ok")


async def test_an_overlong_audit_reason_is_cut_not_stored_whole(client: TestClient, services: Services) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    await post(client, CASE_DETAIL, bearer(roles=CALL_CENTER_ROLES) | {"X-Audit-Reason": "x" * 5000})

    [read, _write] = await trail(client, caseId="CASE-1")
    assert read["reason"] == "x" * 500


@pytest.mark.parametrize(("query", "operation"), [
    ('{ case(id: "CASE-1") { id customer { pesel } } }', "case"),
    ("{ cases { totalCount } }", "cases"),
    ("{ auditTrail { edges { node { id } } } }", "auditTrail"),
])
async def test_a_forbidden_attempt_is_on_record_as_denied(
    client: TestClient, services: Services, query: str, operation: str,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    intruder = bearer(roles=(), username="adam.dabrowski")
    actor = await subject_of(client, intruder)

    body = await post(client, query, intruder | {"X-Audit-Reason": "just looking"})

    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    [attempt, _me] = await trail(client, actor=actor)
    assert attempt == {"actor": actor, "actorName": "adam.dabrowski", "action": "READ", "operation": operation, "caseIds": [], "customerIds": [],
                       "fields": [], "eventIds": [], "channel": None, "reason": "just looking", "outcome": "denied",
                       "changes": []}


async def test_a_refused_subscription_is_on_record_as_denied(client: TestClient) -> None:
    intruder = bearer(roles=("auditor",), username="nosy.auditor")
    actor = await subject_of(client, intruder)
    async with signed_in_socket(client, intruder) as ws:
        await subscribe(ws, "s1", 'subscription { caseUpdated(id: "CASE-1") { id } }')
        assert (await next_frame(ws))["type"] == "error"

    [attempt, _me] = await trail(client, actor=actor)
    assert (attempt["operation"], attempt["outcome"]) == ("caseUpdated", "denied")


async def test_publish_case_event_leaves_a_write_with_the_event_id(client: TestClient) -> None:
    publisher = bearer(roles=("system-publisher",), system=True, username="process-engine")
    actor = await subject_of(client, publisher)
    raw = envelope("case.created", "CASE-NEW", case_created_data(), event_id="evt-publish-1")

    body = await post(client, PUBLISH_CASE_EVENT, publisher, {"event": publish_input(raw)})

    assert body == {"data": {"publishCaseEvent": {"eventId": "evt-publish-1", "status": "APPLIED"}}}
    assert await trail(client, caseId="CASE-NEW") == [
        {"actor": actor, "actorName": "process-engine", "action": "WRITE", "operation": "publishCaseEvent",
         "caseIds": ["CASE-NEW"],
         "customerIds": [], "fields": [], "eventIds": ["evt-publish-1"], "channel": None, "reason": None,
         "outcome": "ok", "changes": []},
        {"actor": actor, "actorName": "process-engine", "action": "WRITE", "operation": "applyEvents",
         "caseIds": ["CASE-NEW"], "customerIds": ["CUST-1"], "fields": [], "eventIds": ["evt-publish-1"],
         "channel": None, "reason": None, "outcome": "ok", "changes": created_changes("CASE-NEW", raw["time"])},
    ]


async def test_a_refused_publish_is_on_record_as_denied_and_applies_nothing(
    client: TestClient, services: Services,
) -> None:
    writer = bearer(roles=("case-writer", "case-reader"), username="not.a.system")
    actor = await subject_of(client, writer)
    raw = envelope("case.created", "CASE-NEW", case_created_data(), event_id="evt-publish-2")

    body = await post(client, PUBLISH_CASE_EVENT, writer, {"event": publish_input(raw)})

    assert body["data"] is None and [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    [attempt, _me] = await trail(client, actor=actor)
    assert (attempt["action"], attempt["operation"], attempt["eventIds"], attempt["outcome"]) == (
        "WRITE", "publishCaseEvent", [], "denied")
    assert await services.cases.get_for_update(["CASE-NEW"]) == {}


async def test_one_event_pushed_to_many_subscribers_is_one_audit_write_naming_each_of_them(
    client: TestClient, services: Services, database: Database, bus_watch: BusWatch,
) -> None:
    """The pushes of one event to subscribers sharing a push group (edge/fanout.py) are one record, naming each
    recipient, in one store write."""
    await services.pipeline.ingest([created("CASE-1")])
    watchers = [bearer(roles=("case-reader",), username=f"watcher.{n}") for n in range(12)]
    members = Members()
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(signed_in_socket(client, w)) for w in watchers]
        for n, ws in enumerate(sockets):
            await subscribe(ws, f"s{n}", 'subscription { caseUpdated(id: "CASE-1") { id status } }')
        await members.until(len(sockets))
        await bus_watch.until_active(1)  # one group: the same document and view
        database.round_trips.reset()

        await services.pipeline.ingest([status_changed("CASE-1", "IN_PROGRESS", "ANALYSIS")])
        frames = [await next_frame(ws) for ws in sockets]

    assert {f["payload"]["data"]["caseUpdated"]["status"] for f in frames} == {"IN_PROGRESS"}
    writes = {op: n for op, n in database.round_trips.by_operation.items() if op.startswith("audit.insert")}
    # The ingest's own record (one write), then the push's record (one write).
    assert writes == {"audit.insert_one": 2}
    records = (await services.audit.trail(case_id="CASE-1", first=50)).records
    [push] = [r for r in records if r["operation"] == "caseUpdated"]
    assert (push["actor"], push["actorName"], len(push["recipients"])) == ("subscribers", None, 12)
    assert push["recipients"] == sorted(token_subject(w) for w in watchers)


PAGE = """query ($after: String) { auditTrail(actor: "anonymous", first: 2, after: $after) {
  pageInfo { hasNextPage endCursor } edges { node { id reason } } } }"""


def _jws(header: dict[str, str]) -> str:
    """A compact JWS with this header, a harmless payload and a signature nobody made."""
    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part(header)}.{part({'sub': 'someone'})}.c2lnbmF0dXJl"


async def test_an_auditor_pages_through_the_trail_newest_first_and_a_forged_cursor_is_refused(
    client: TestClient, services: Services,
) -> None:
    # Five refusals for five reasons: each is a kind of its own, so none is folded into an aggregate record.
    for n, header in enumerate(({"alg": "HS256"}, {"alg": "none"}, {"alg": "RS256"}, {"alg": "RS256", "kid": "k" * 200},
                                {"alg": "RS256", "kid": "nobody-issued-this"})):
        await post(client, "{ me { id } }", {"Authorization": f"Bearer {_jws(header)}", "X-Audit-Reason": f"try {n}"})

    seen, after = [], None
    while True:
        page = (await post(client, PAGE, AUDITOR, {"after": after}))["data"]["auditTrail"]
        seen += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    writer = services.audit.writer
    assert [node["id"] for node in seen] == [f"{writer}:{n:012d}" for n in (5, 4, 3, 2, 1)]
    assert [node["reason"] for node in seen] == [
        "invalid token: unknown key", "invalid token: key id too long", "invalid token: missing key id",
        "invalid token: algorithm", "invalid token: signature"]
    refused = await post(client, PAGE, AUDITOR, {"after": "bm90IGEgY3Vyc29y"})
    assert [(e["message"], e["extensions"]["code"]) for e in refused["errors"]] == [
        ("after: not a cursor issued by this API", "BAD_USER_INPUT")]


# --- tampering -------------------------------------------------------------------------------------------------

async def some_history(client: TestClient, services: Services) -> None:
    """Records 1..4 of this instance's chain: the seed's write and three reads."""
    await services.pipeline.ingest([created("CASE-1")])
    for _ in range(3):
        await post(client, CASE_DETAIL, bearer(roles=CALL_CENTER_ROLES))


def record_id(services: Services, seq: int) -> str:
    """The `_id` of record `seq` of this instance's chain, as the store spells it."""
    return f"{services.audit.writer}:{seq:012d}"


async def hide_the_read(services: Services, database: Database, rehash: bool) -> None:
    """An insider removes record 2's trace of CASE-1, optionally recomputing its hash to cover it up."""
    audit = database.collection("audit")
    record = await audit.find_one({"_id": record_id(services, 2)})
    record["caseIds"], record["fields"] = [], []
    if rehash:
        record["hash"] = record_hash(record)
    await audit.replace_one({"_id": record["_id"]}, record)


async def delete_record(services: Services, database: Database) -> None:
    await database.collection("audit").delete_one({"_id": record_id(services, 2)})


TAMPERING = [
    pytest.param(lambda s, db: hide_the_read(s, db, rehash=False), 2, "record 2: hash does not match its content",
                 id="edit a record"),
    pytest.param(lambda s, db: hide_the_read(s, db, rehash=True), 3,
                 "record 3: prev does not match the hash of record 2", id="edit and rehash a record"),
    pytest.param(delete_record, 2, "record 2 is missing (next is 3)", id="delete a record"),
]


async def test_an_untouched_trail_verifies(client: TestClient, services: Services, database: Database) -> None:
    await some_history(client, services)

    report = await services.audit.verify()
    result, code = await audit_verify.verify_audit(database)

    assert (report.ok, report.checked, [(c.writer, c.ok, c.head_seq) for c in report.chains]) == (
        True, 4, [(services.audit.writer, True, 4)])
    assert (result["ok"], result["checked"], code) == (True, 4, audit_verify.EXIT_OK)


@pytest.mark.parametrize(("tamper", "broken", "reason"), TAMPERING)
async def test_tampering_with_the_raw_audit_collection_is_detected_at_that_record(
    client: TestClient, services: Services, database: Database, reconnect: Callable[[], Database], tamper: Any,
    broken: int, reason: str,
) -> None:
    await some_history(client, services)

    await tamper(services, database)

    report = await services.audit.verify()
    chain = report.chain(services.audit.writer)
    assert (report.ok, chain.ok, chain.first_broken, chain.reason) == (False, False, broken, reason)
    # The operator's tool (`python audit_verify.py`) reads the same store and says "broken" (exit code 1). It runs
    # its own event loop, so it gets its own connection: a motor client is bound to the loop that first used it.
    out = io.StringIO()
    operator_view = reconnect()
    try:
        code = await asyncio.to_thread(audit_verify.main, {}, operator_view, out)
    finally:
        if operator_view is not database:
            operator_view.close()
    assert code == audit_verify.EXIT_BROKEN
    assert orjson.loads(out.getvalue()) | {"checked": None} == {"ok": False, "checked": None, "chains": [{
        "writer": services.audit.writer, "ok": False, "checked": broken, "first_broken": broken, "reason": reason,
        "head_seq": broken - 1, "head_id": record_id(services, broken - 1), "head_hash": chain.head_hash}]}


async def test_cutting_off_the_newest_records_is_detected_by_the_instance_that_wrote_them(
    client: TestClient, services: Services, database: Database,
) -> None:
    await some_history(client, services)

    await database.collection("audit").delete_many({"_id": {"$gte": record_id(services, 3)}})

    chain = (await services.audit.verify()).chain(services.audit.writer)
    assert (chain.ok, chain.first_broken, chain.reason) == (False, 3, "records 3..4 are missing (tail removed)")


async def test_two_instances_on_one_store_write_two_chains_that_verify(
    client: TestClient, services: Services, database: Database,
) -> None:
    """A second server process on the same store appends to a chain of its own; neither waits for the other."""
    from aiohttp.test_utils import TestClient as _Client, TestServer as _Server

    from server import SERVICES, create_app
    from settings import Settings

    await some_history(client, services)
    app = create_app(Settings(demo_data=False), database)
    async with _Client(_Server(app)) as other:
        await asyncio.gather(*(post(c, CASE_DETAIL, bearer(roles=CALL_CENTER_ROLES)) for c in (client, other) * 3))
        second = app[SERVICES].audit.writer

    report = await services.audit.verify()
    assert (report.ok, report.checked) == (True, 10)
    assert sorted((c.writer, c.head_seq) for c in report.chains) == sorted(
        [(services.audit.writer, 7), (second, 3)])
    assert (await audit_verify.verify_audit(database))[1] == audit_verify.EXIT_OK


# --- an audit store that fails -------------------------------------------------------------------------------

async def test_a_read_that_cannot_be_recorded_is_not_served(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    async def audit_down(entry: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("audit collection unreachable")

    monkeypatch.setattr(services.audit, "append", audit_down)

    response = await client.post("/graphql", json={"query": CASE_DETAIL}, headers=bearer(roles=("advisor",)))

    text = await response.text()
    assert orjson.loads(text) == {"data": None, "errors": [{
        "message": "the request could not be recorded in the audit trail and was not served",
        "extensions": {"code": "INTERNAL"}}]}
    for secret in ("85031207819", "+48601200300", "Anna Kowalska", "Mortgage", "unreachable"):
        assert secret not in text


# --- who may read the trail ----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", sorted(set(ROLES) - OPERATION_POLICY["Query.auditTrail"]))
async def test_the_audit_trail_is_forbidden_to_non_auditors_and_shows_them_nothing(
    client: TestClient, services: Services, role: str,
) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    await post(client, CASE_DETAIL, bearer(roles=CALL_CENTER_ROLES, username="ewa.kowalska"))

    response = await client.post("/graphql", json={"query": TRAIL, "variables": {"caseId": "CASE-1"}},
                                 headers=bearer(roles=(role,)))

    body = await response.json()
    assert body["data"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["auditTrail"], "FORBIDDEN")]
    text = await response.text()
    for trace in ("CASE-1", "CUST-1", "Customer.pesel", "applyEvents", "CALL_CENTER"):
        assert trace not in text


async def test_a_refused_request_for_the_federation_sdl_is_on_record(database) -> None:
    """Asking for the whole schema where introspection is off is an attempt worth a record, fragments or not."""
    from aiohttp.test_utils import TestClient as _Client, TestServer as _Server

    from server import SERVICES, create_app
    from settings import Settings

    app = create_app(Settings(demo_data=False, graphql_introspection=False), database)
    async with _Client(_Server(app)) as sdl_client:
        for query in ("{ _service { sdl } }", "{ ... on Query { _service { sdl } } }"):
            response = await sdl_client.post("/graphql", json={"query": query})
            assert (await response.json())["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        page = await app[SERVICES].audit.trail(actor="anonymous", first=10)

    assert [(r["operation"], r["outcome"]) for r in page.records] == [("_service", "denied"), ("_service", "denied")]
