"""The field and operation policy, proven over HTTP and WebSocket for every role, generated from access/policy.py.

Every "Type.field" of FIELD_POLICY is read by every role of ROLES through every channel, and must come back
full, masked, hidden or FORBIDDEN exactly as field_access says; every root field of OPERATION_POLICY is called by
every role it does not list (FORBIDDEN), by anonymous (UNAUTHENTICATED) and by the roles it lists (served).
SYSTEM_CLIENTS means client-credentials tokens whatever their roles, and anyone while introspection is on: its
rows run with introspection off (as prod does), and a separate test opens them with introspection on (dev).
A new policy entry is covered without touching this file, or fails here until it gets a query path or sample.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from access.guards import FEDERATION_FIELDS
from access.policy import (
    ANY_AUTHENTICATED, ANYONE, CASE_READERS, CHANNEL_VIEWS, CHANNELS, CUSTOMER_ROLE, FIELD_POLICY, OPERATION_POLICY,
    PANEL_PARTICIPANTS, ROLES, SYSTEM_CLIENTS, Access, field_access,
)
from context import Services
from settings import Settings
from stores.database import Database
from tests.factories import (
    BASE_TIME, bearer, case_created_data, created, envelope, incident_raised, publish_input, status_changed,
    task_created, token,
)
from tests.panel_sessions import panel_headers
from tests.live import BusWatch, next_frame, signed_in_socket, subscribe

CASE_ID = "CASE-1"
EVENT = case_created_data(
    participants=[{"id": "P-1", "role": "PRIMARY_BORROWER", "name": "Anna Kowalska",
                   "phone": "+48601200300", "pesel": "90072412344"}],
)
# Where each type of FIELD_POLICY sits under `case`, and where its value sits in the case.created data.
QUERY_PATHS = {"Customer": "customer", "Participant": "participants"}


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """Dev settings; a test parametrized indirectly with `settings=False` runs with introspection off (as prod)."""
    return Settings(demo_data=False, graphql_introspection=getattr(request, "param", None))


def stored_value(type_name: str, field: str) -> str:
    if type_name == "Customer":
        return EVENT["customer"][field]
    if type_name == "Participant":
        return EVENT["participants"][0][field]
    raise AssertionError(f"FIELD_POLICY names {type_name}: add its query path and value to this test")


def reader_roles(role: str) -> frozenset[str]:
    """The role, plus case-reader when the role alone cannot read cases (else there is no row to look at)."""
    return frozenset({role}) if role in CASE_READERS else frozenset({role, "case-reader"})


def field_matrix() -> list[Any]:
    return [pytest.param(key, role, channel, id=f"{key}-{role}-{channel or 'no channel'}")
            for key in FIELD_POLICY for role in ROLES for channel in (None, *CHANNELS)]


async def read_field(client: TestClient, key: str, headers: dict[str, str]) -> tuple[dict[str, Any], str]:
    type_name, field = key.split(".")
    path = QUERY_PATHS.get(type_name)
    assert path is not None, f"FIELD_POLICY names {type_name}: add where it sits under `case` to QUERY_PATHS"
    query = f'query ($id: ID!) {{ case(id: $id) {{ id {path} {{ {field} }} }} }}'
    response = await client.post("/graphql", json={"query": query, "variables": {"id": CASE_ID}}, headers=headers)
    text = await response.text()
    return orjson.loads(text), text


def shown(key: str, value: str | None) -> dict[str, Any]:
    """The `case` object as the response carries it when the field shows `value`."""
    type_name, field = key.split(".")
    inner = {field: value}
    return {"id": CASE_ID, QUERY_PATHS[type_name]: [inner] if type_name == "Participant" else inner}


async def last_audit_record(database: Database) -> dict[str, Any]:
    return await database.collection("audit").find_one({}, sort=[("_id", -1)])


@pytest.mark.parametrize(("key", "role", "channel"), field_matrix())
async def test_each_sensitive_field_is_shown_as_the_policy_says_for_each_role_and_channel(
    client: TestClient, services: Services, database: Database, key: str, role: str, channel: str | None,
) -> None:
    rule = FIELD_POLICY[key]
    roles = reader_roles(role)
    plain = stored_value(*key.split("."))
    await services.pipeline.ingest([created(CASE_ID, data=EVENT)])

    body, text = await read_field(client, key, bearer(roles=tuple(sorted(roles)), channel=channel))

    access = field_access(key, roles, channel)
    record = await last_audit_record(database)
    if access is Access.DENIED:
        assert body["data"] == {"case": shown(key, None)}
        assert [(e["path"][-1], e["extensions"]["code"]) for e in body["errors"]] == [(key.split(".")[1], "FORBIDDEN")]
        assert plain not in text and rule.mask(plain) not in text
        assert (record["fields"], record["outcome"]) == ([], "denied")
        return
    expected = {Access.FULL: plain, Access.MASKED: rule.mask(plain), Access.HIDDEN: None}[access]
    assert body == {"data": {"case": shown(key, expected)}}
    if access is not Access.FULL:
        assert plain not in text
    assert (record["fields"], record["outcome"]) == ([f"{key}:{access.value}"], "ok")


# Customer fields are reachable from three more roots than `case`: each must apply the same rule.
CUSTOMER_ROOTS = {
    "customer": ('{{ customer(id: "CUST-1") {{ {field} }} }}', lambda data: data["customer"]),
    "customerByPesel": ('{{ customerByPesel(pesel: "85031207819") {{ {field} }} }}',
                        lambda data: data["customerByPesel"]),
    "_entities": ('{{ _entities(representations: [{{__typename: "Customer", id: "CUST-1"}}]) '
                  '{{ ... on Customer {{ {field} }} }} }}', lambda data: data["_entities"][0]),
}


def may_call(root: str, roles: frozenset[str]) -> bool:
    allowed = OPERATION_POLICY[f"Query.{root}"]
    return allowed is ANY_AUTHENTICATED or bool(roles & allowed)


def customer_root_matrix() -> list[Any]:
    # A role the root itself refuses is the operation matrix's business (FORBIDDEN below).
    return [pytest.param(key, root, role, id=f"{key}-{root}-{role}") for key in FIELD_POLICY
            if key.startswith("Customer.") for root in CUSTOMER_ROOTS for role in ROLES
            if may_call(root, reader_roles(role))]


@pytest.mark.parametrize(("key", "root", "role"), customer_root_matrix())
async def test_a_customer_field_follows_the_policy_through_every_root_that_reaches_a_customer(
    client: TestClient, services: Services, key: str, root: str, role: str,
) -> None:
    rule = FIELD_POLICY[key]
    field = key.split(".")[1]
    roles = reader_roles(role)
    plain = stored_value("Customer", field)
    await services.pipeline.ingest([created(CASE_ID, data=EVENT)])
    template, pick = CUSTOMER_ROOTS[root]

    response = await client.post("/graphql", json={"query": template.format(field=field)},
                                 headers=bearer(roles=tuple(sorted(roles)), channel="CALL_CENTER"))

    body, text = await response.json(), await response.text()
    access = field_access(key, roles, "CALL_CENTER")
    shown_value = {Access.FULL: plain, Access.MASKED: rule.mask(plain)}.get(access)
    assert pick(body["data"]) == {field: shown_value}
    assert [e["extensions"]["code"] for e in body.get("errors", [])] == (
        ["FORBIDDEN"] if access is Access.DENIED else [])
    if access is not Access.FULL:
        assert plain not in text


@pytest.mark.parametrize("key", list(FIELD_POLICY))
async def test_aliases_and_fragments_do_not_get_around_masking(
    client: TestClient, services: Services, key: str,
) -> None:
    rule = FIELD_POLICY[key]
    type_name, field = key.split(".")
    masked_roles = sorted(rule.masked)
    assert masked_roles, f"{key} has no masked role to try this with"
    roles = reader_roles(masked_roles[0])
    plain = stored_value(type_name, field)
    await services.pipeline.ingest([created(CASE_ID, data=EVENT)])
    path = QUERY_PATHS[type_name]
    query = f"""query {{ case(id: "{CASE_ID}") {{ {path} {{ a: {field} b: {field} ...F ... on {type_name} {{ c: {field} }} }}
                  }} }} fragment F on {type_name} {{ d: {field} }}"""

    response = await client.post("/graphql", json={"query": query},
                                 headers=bearer(roles=tuple(sorted(roles)), channel="ONLINE"))

    text = await response.text()
    assert field_access(key, roles, "ONLINE") is Access.MASKED
    assert plain not in text
    assert text.count(rule.mask(plain)) == 4


async def test_a_panel_participant_cannot_reach_even_its_own_case_through_entities(
    client: TestClient, services: Services, database: Database,
) -> None:
    """A panel token has no roles, so `_entities` (CASE_READERS) refuses the whole operation before any field."""
    await services.pipeline.ingest([created(CASE_ID, data=EVENT)])
    selection = " ".join(f"{QUERY_PATHS[key.split('.')[0]]} {{ {key.split('.')[1]} }}" for key in FIELD_POLICY)
    query = (f'{{ _entities(representations: [{{__typename: "Case", id: "{CASE_ID}"}}]) '
             f'{{ ... on Case {{ id title {selection} }} }} }}')

    response = await client.post("/graphql", json={"query": query}, headers=await panel_headers(services, CASE_ID, "P-1"))

    body, text = await response.json(), await response.text()
    assert body == {"data": None, "errors": [
        {"message": "_entities is not available to this caller", "extensions": {"code": "FORBIDDEN"}}]}
    for key, rule in FIELD_POLICY.items():
        plain = stored_value(*key.split("."))
        assert plain not in text and rule.mask(plain) not in text
    assert "Mortgage for a flat" not in text
    record = await last_audit_record(database)
    assert (record["operation"], record["caseIds"], record["customerIds"], record["fields"], record["outcome"]) == (
        "_entities", [], [], [], "denied")


def channel_spoofs() -> list[Any]:
    """A full-reading role whose token names a channel that masks the field, claiming a channel that does not."""
    spoofs = []
    for key, rule in FIELD_POLICY.items():
        weak = [c for c in CHANNELS if CHANNEL_VIEWS[c].access(key) is Access.MASKED]
        strong = [c for c in CHANNELS if CHANNEL_VIEWS[c].access(key) is Access.FULL]
        if not weak or not strong:
            continue
        spoofs += [pytest.param(key, role, weak[0], strong[0], id=f"{key}-{role}-{weak[0]}-claims-{strong[0]}")
                   for role in sorted(rule.full)]
    return spoofs


@pytest.mark.parametrize(("key", "role", "token_channel", "header_channel"), channel_spoofs())
async def test_the_x_channel_header_cannot_override_the_channel_in_the_token(
    client: TestClient, services: Services, key: str, role: str, token_channel: str, header_channel: str,
) -> None:
    rule = FIELD_POLICY[key]
    roles = reader_roles(role)
    plain = stored_value(*key.split("."))
    await services.pipeline.ingest([created(CASE_ID, data=EVENT)])
    headers = bearer(roles=tuple(sorted(roles)), channel=token_channel) | {"X-Channel": header_channel}

    body, text = await read_field(client, key, headers)

    assert field_access(key, roles, token_channel) is Access.MASKED
    assert body == {"data": {"case": shown(key, rule.mask(plain))}}
    assert plain not in text


async def test_an_unknown_x_channel_is_refused_before_anything_is_read(client: TestClient, services: Services) -> None:
    await services.pipeline.ingest([created(CASE_ID, data=EVENT)])

    response = await client.post("/graphql", json={"query": '{ case(id: "CASE-1") { customer { pesel } } }'},
                                 headers=bearer(roles=("advisor",)) | {"X-Channel": "BRANCH_OFFICE_VIP"})

    assert response.status == 400
    assert [e["extensions"]["code"] for e in (await response.json())["errors"]] == ["BAD_USER_INPUT"]
    assert EVENT["customer"]["pesel"] not in await response.text()


# --- OPERATION_POLICY --------------------------------------------------------------------------------------

PUBLISHED_EVENT = envelope("case.created", "CASE-NEW", case_created_data(), event_id="evt-forbidden")
# One operation per root field of the policy, and what the response nests the result under.
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "Query.me": ("{ me { id roles } }", {}),
    "Query.case": ('{ case(id: "CASE-1") { id title customer { pesel } } }', {}),
    "Query.cases": ("{ cases { totalCount edges { node { id title } } } }", {}),
    "Query.customer": ('{ customer(id: "CUST-1") { id name pesel } }', {}),
    "Query.customerByPesel": ('{ customerByPesel(pesel: "85031207819") { id name } }', {}),
    "Query.myTasks": ("{ myTasks { totalCount edges { node { id assignee } } } }", {}),
    "Query.tasks": ("{ tasks { totalCount edges { node { id assignee } } } }", {}),
    "Query.installment": ('{ installment(amount: "350000", annualRate: "6.85", termMonths: 300) }', {}),
    "Query.auditTrail": ("{ auditTrail { edges { node { id actor caseIds } } } }", {}),
    "Query._entities": ('{ _entities(representations: [{__typename: "Case", id: "CASE-1"}]) '
                        '{ ... on Case { id title customer { pesel } } } }', {}),
    "Query._service": ("{ _service { sdl } }", {}),
    "Mutation.publishCaseEvent": ("mutation ($event: CaseEventInput!) { publishCaseEvent(event: $event) { status } }",
                                  {"event": publish_input(PUBLISHED_EVENT)}),
    # The seeded task T-1 is held by the matrix's caller (test.operator), so each of these is served to it.
    "Mutation.claimTask": ('mutation { claimTask(taskId: "T-1") { id assignee } }', {}),
    "Mutation.unclaimTask": ('mutation { unclaimTask(taskId: "T-1") { id assignee } }', {}),
    "Mutation.assignTask": ('mutation { assignTask(taskId: "T-1", assignee: "test.operator") { id assignee } }', {}),
    "Mutation.completeTask": ('mutation { completeTask(taskId: "T-1", input: {}) { id state } }', {}),
    "Mutation.retryIncident": ('mutation { retryIncident(incidentId: "I-1") { id retryState } }', {}),
    # CASE-1 is seeded with negotiated terms (version 1, not approved), so a team manager may approve them.
    "Mutation.recordNegotiatedTerms": (
        'mutation { recordNegotiatedTerms(caseId: "CASE-1", input: {rate: "6.85", margin: "2.05", marginMin: "1.80", '
        'marginMax: "2.40", amount: "350000", currency: "PLN", termMonths: 300, fees: "0", '
        'validUntil: "2027-02-28"}) { version monthlyInstallment } }', {}),
    "Mutation.approveNegotiatedTerms": ('mutation { approveNegotiatedTerms(caseId: "CASE-1") { version approvedBy } }',
                                        {}),
    # The seeded note N-1 on CASE-1 is the matrix's caller's (test.operator), so it may edit and delete it.
    "Mutation.addNote": ('mutation { addNote(caseId: "CASE-1", text: "Called back.") { author } }', {}),
    "Mutation.editNote": ('mutation { editNote(noteId: "N-1", text: "Called back twice.") { text } }', {}),
    "Mutation.deleteNote": ('mutation { deleteNote(noteId: "N-1") }', {}),
    "Query.calendar": ("query ($from: DateTime!, $to: DateTime!) { calendar(from: $from, to: $to) { kind at title } }",
                       {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}),
    # An appointment must lie in the future: a week from now.
    "Mutation.scheduleAppointment": (
        'mutation ($at: DateTime!) { scheduleAppointment(caseId: "CASE-1", at: $at, channel: "BRANCH") { notified } }',
        {"at": (datetime.now(timezone.utc) + timedelta(days=7)).strftime("%Y-%m-%dT10:00:00Z")}),
    "Subscription.caseUpdated": ('subscription { caseUpdated(id: "CASE-1") { id status } }', {}),
    "Subscription.caseStatusChanged": ("subscription { caseStatusChanged { caseId status } }", {}),
    # Pushed by the incident below: the caller (test.operator) holds T-1 of CASE-1.
    "Subscription.myNotifications": ("subscription { myNotifications { kind caseId } }", {}),
    # The Customer Panel: refused to every staff role here; what panel sessions and customers may do is tested over
    # a real sign-in in tests/test_panel_*.py and tests/test_my_cases.py.
    "Mutation.panelRequestCode": ('mutation { panelRequestCode(caseId: "CASE-1", peselFragment: "2344") }', {}),
    "Mutation.panelLogin": ('mutation { panelLogin(caseId: "CASE-1", peselFragment: "2344", otp: "123456") '
                            '{ token } }', {}),
    "Mutation.panelLogout": ("mutation { panelLogout }", {}),
    "Query.panelCase": ("{ panelCase { caseId title } }", {}),
    "Mutation.panelGiveConsent": ('mutation { panelGiveConsent(consentId: "C-1", granted: true) { state } }', {}),
    "Mutation.panelCompleteAction": ('mutation { panelCompleteAction(taskId: "T-1") { state } }', {}),
    # Over JSON the file is a plain value: refused before any resolver looks at it.
    "Mutation.panelUploadDocument": ('mutation ($f: Upload!) { panelUploadDocument(documentId: "D-1", file: $f) '
                                     '{ status } }', {"f": "not-a-file"}),
    "Mutation.issuePanelAccess": ('mutation { issuePanelAccess(caseId: "CASE-1", participantId: "P-1") }', {}),
    "Query.myCases": ("{ myCases { totalCount edges { node { caseId title } } } }", {}),
    "Query.myCase": ('{ myCase(id: "CASE-1") { caseId title } }', {}),
    "Subscription.panelCaseUpdated": ('subscription { panelCaseUpdated(id: "CASE-1") { caseId status } }', {}),
}
# Rows served to principals that are not staff (anyone, panel sessions, customers): their own tests serve them.
NOT_STAFF = frozenset(key for key, allowed in OPERATION_POLICY.items()
                      if allowed == ANYONE or allowed & (PANEL_PARTICIPANTS | {CUSTOMER_ROLE}))


# What `seeded` records as CASE-1's negotiated terms (as resolvers/terms.py stores a version).
SEEDED_TERMS = {
    "version": 1, "rate": "6.85", "margin": "2.05", "marginMin": "1.80", "marginMax": "2.40", "amount": "350000",
    "currency": "PLN", "termMonths": 300, "fees": "0", "validUntil": "2027-02-28", "monthlyInstallment": "2440.34",
    "recordedBy": "test.operator", "recordedAt": datetime(2026, 11, 21, 10, 0, tzinfo=timezone.utc),
}


CASE_ROOTS = frozenset({"Query.case", "Query.customer", "Query.customerByPesel"})


def sample(key: str) -> tuple[str, dict[str, Any]]:
    assert key in SAMPLES, f"OPERATION_POLICY names {key}: add a sample operation for it to SAMPLES"
    return SAMPLES[key]


def introspection(key: str) -> bool | None:
    """The `settings` parameter of a row: SYSTEM_CLIENTS rows run with introspection off, the rest as dev."""
    return False if OPERATION_POLICY[key] == SYSTEM_CLIENTS else None


def row(key: str, role: str | None, label: str) -> Any:
    off = introspection(key) is False
    return pytest.param(key, role, introspection(key), id=f"{key}-{label}{' (introspection off)' if off else ''}")


def refused_roles() -> list[Any]:
    return [row(key, role, role) for key, allowed in OPERATION_POLICY.items()
            if allowed is not ANY_AUTHENTICATED and allowed != ANYONE for role in ROLES if role not in allowed]


def allowed_roles() -> list[Any]:
    # "*" = any signed-in caller: a token without any role is the one to prove it.
    # SYSTEM_CLIENTS = a client-credentials token: one without any role proves "whatever their roles".
    return [row(key, role, "system client" if frozenset({role}) == SYSTEM_CLIENTS else role or "no roles")
            for key, allowed in OPERATION_POLICY.items() if key not in NOT_STAFF
            for role in sorted(allowed - ANY_AUTHENTICATED) or [None]]


def caller(role: str | None) -> dict[str, str]:
    """The token of a matrix row: a system client for the SYSTEM_CLIENTS sentinel, else an employee."""
    if role is not None and frozenset({role}) == SYSTEM_CLIENTS:
        return bearer(roles=(), system=True, username="api-gateway")
    return bearer(roles=(role,) if role else ())


def refusal(key: str, code: str) -> dict[str, Any]:
    """What FederationGuard answers for a generated root field: the whole operation refused, no data."""
    return {"data": None, "errors": [{"message": f"{root_name(key)} is not available to this caller",
                                      "extensions": {"code": code}}]}


def http_keys(params: list[Any]) -> list[Any]:
    return [p for p in params if not p.values[0].startswith("Subscription.")]


def ws_keys(params: list[Any]) -> list[Any]:
    return [p for p in params if p.values[0].startswith("Subscription.")]


async def call(client: TestClient, key: str, headers: dict[str, str]) -> tuple[dict[str, Any], str]:
    query, variables = sample(key)
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    text = await response.text()
    return orjson.loads(text), text


async def seeded(services: Services) -> None:
    await services.pipeline.ingest([created(CASE_ID, data=EVENT),
                                    task_created(CASE_ID, "T-1", assignee="test.operator", state="ASSIGNED"),
                                    incident_raised(CASE_ID, "I-1")])
    await services.terms.record(CASE_ID, {"caseType": "MORTGAGE", "branch": "KRK-01", "restricted": False,
                                          "customerId": "CUST-1"}, SEEDED_TERMS, 0)
    await services.notes.add({"_id": "N-1", "caseId": CASE_ID, "customerId": EVENT["customer"]["id"],
                              "text": "Called.", "author": "test.operator", "at": BASE_TIME,
                              "authorId": jwt.decode(token(), options={"verify_signature": False})["sub"]},
                             [], BASE_TIME)


async def nothing_published(services: Services, database: Database) -> None:
    assert await services.cases.get_for_update(["CASE-NEW"]) == {}
    assert await database.collection("events").find_one({"_id": "evt-forbidden"}) is None


def root_name(key: str) -> str:
    return key.split(".")[1]


@pytest.mark.parametrize(("key", "role", "settings"), http_keys(refused_roles()), indirect=["settings"])
async def test_a_root_field_is_forbidden_to_a_role_the_policy_does_not_list(
    client: TestClient, services: Services, database: Database, key: str, role: str,
) -> None:
    await seeded(services)

    body, text = await call(client, key, bearer(roles=(role,)))

    if key in FEDERATION_FIELDS:
        assert body == refusal(key, "FORBIDDEN")
    else:
        assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [([root_name(key)], "FORBIDDEN")]
        assert body["data"] in (None, {root_name(key): None})
    for secret in ("85031207819", "90072412344", "Mortgage for a flat", "Anna Kowalska", "type Query"):
        assert secret not in text
    await nothing_published(services, database)


@pytest.mark.parametrize(("key", "settings"), [
    pytest.param(k, introspection(k), id=k + (" (introspection off)" if introspection(k) is False else ""))
    for k in OPERATION_POLICY if not k.startswith("Subscription.") and OPERATION_POLICY[k] != ANYONE],
    indirect=["settings"])
async def test_a_root_field_is_unauthenticated_for_an_anonymous_caller(
    client: TestClient, services: Services, database: Database, key: str,
) -> None:
    await seeded(services)

    body, text = await call(client, key, {})

    if key in FEDERATION_FIELDS:
        assert body == refusal(key, "UNAUTHENTICATED")
    else:
        assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
            ([root_name(key)], "UNAUTHENTICATED")]
        assert body["data"] in (None, {root_name(key): None})
    assert "85031207819" not in text and "Mortgage for a flat" not in text and "type Query" not in text
    await nothing_published(services, database)


def rows_of(key: str, data: dict[str, Any]) -> bool:
    """Whether the served sample showed a row (an `_entities` list holds None for a case out of scope)."""
    value = data[root_name(key)]
    return value != [None] if key == "Query._entities" else value is not None


@pytest.mark.parametrize(("key", "role", "settings"), http_keys(allowed_roles()), indirect=["settings"])
async def test_a_root_field_serves_a_role_the_policy_lists(
    client: TestClient, services: Services, key: str, role: str | None,
) -> None:
    """The control: the same sample operations are refused only for the roles above."""
    await seeded(services)

    body, _ = await call(client, key, caller(role))

    assert "errors" not in body, body
    # A role that reads no cases may call a case query, but its row scope is empty.
    reads_rows = key not in CASE_ROOTS or role in CASE_READERS
    assert rows_of(key, body["data"]) is reads_rows


@pytest.mark.parametrize(("key", "role"), [
    pytest.param(key, role, id=f"{key}-{role or 'anonymous'}")
    for key, allowed in OPERATION_POLICY.items() if allowed == SYSTEM_CLIENTS for role in (None, *ROLES)])
async def test_a_system_clients_root_field_is_served_to_anyone_while_introspection_is_on(
    client: TestClient, services: Services, settings: Settings, key: str, role: str | None,
) -> None:
    """Dev (introspection on): the sentinel opens up, as the schema itself is open through __schema there."""
    await seeded(services)

    body, _ = await call(client, key, bearer(roles=(role,)) if role else {})

    assert settings.introspection_enabled
    assert "errors" not in body, body
    assert rows_of(key, body["data"])


# --- subscriptions: the same policy over graphql-transport-ws ------------------------------------------------

@pytest.mark.parametrize(("key", "role", "settings"), ws_keys(refused_roles()), indirect=["settings"])
async def test_a_subscription_is_refused_to_a_role_the_policy_does_not_list(
    client: TestClient, services: Services, bus_watch: BusWatch, key: str, role: str,
) -> None:
    await seeded(services)
    query, variables = sample(key)
    async with signed_in_socket(client, bearer(roles=(role,))) as ws:
        await subscribe(ws, "s1", query, variables)

        frame = await next_frame(ws)

        assert frame["type"] == "error" and frame["id"] == "s1"
        assert [(e["path"], e["extensions"]["code"]) for e in frame["payload"]] == [([root_name(key)], "FORBIDDEN")]
        assert "needs one of the roles" in frame["payload"][0]["message"]
        assert bus_watch.active == 0  # never attached to the live feed


@pytest.mark.parametrize(("key", "role", "settings"), ws_keys(allowed_roles()), indirect=["settings"])
async def test_a_subscription_serves_a_role_the_policy_lists(
    client: TestClient, services: Services, bus_watch: BusWatch, key: str, role: str,
) -> None:
    await seeded(services)
    query, variables = sample(key)
    async with signed_in_socket(client, caller(role)) as ws:
        await subscribe(ws, "s1", query, variables)
        await bus_watch.until_active(1)

        # One change that every live feed reports: a new status (caseUpdated, caseStatusChanged) and an incident in
        # a case where the caller holds a task (myNotifications).
        await services.pipeline.ingest([status_changed(CASE_ID, "IN_PROGRESS"), incident_raised(CASE_ID, "I-9")])

        frame = await next_frame(ws)
    assert (frame["type"], frame["id"], "errors" in frame["payload"]) == ("next", "s1", False)
    assert CASE_ID in orjson.dumps(frame["payload"]["data"]).decode()


@pytest.mark.parametrize(("key", "role", "settings"), [
    next(p for p in refused_roles() if p.values[0] == key) for key in sorted(FEDERATION_FIELDS)],
    indirect=["settings"])
async def test_a_federation_field_sent_as_a_query_over_the_websocket_is_refused_too(
    client: TestClient, services: Services, key: str, role: str,
) -> None:
    """graphql-transport-ws also carries queries: the federation guard sits on execution, not on the HTTP view."""
    await seeded(services)
    query, variables = sample(key)
    async with signed_in_socket(client, bearer(roles=(role,))) as ws:
        await subscribe(ws, "q1", query, variables)

        frames = [await next_frame(ws), await next_frame(ws)]

    assert frames == [{"id": "q1", "type": "next", "payload": refusal(key, "FORBIDDEN")},
                      {"id": "q1", "type": "complete"}]


async def test_a_subscription_without_a_token_never_gets_past_connection_init(client: TestClient) -> None:
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        await subscribe(ws, "s1", sample("Subscription.caseStatusChanged")[0])

        message = await ws.receive(timeout=5)

    assert (message.type, ws.close_code) == (WSMsgType.CLOSE, 4403)


def test_the_samples_cover_exactly_the_policy() -> None:
    """A sample for a root field the policy no longer has would test nothing."""
    assert set(SAMPLES) == set(OPERATION_POLICY)
    assert set(QUERY_PATHS) == {key.split(".")[0] for key in FIELD_POLICY}
