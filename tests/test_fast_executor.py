"""The fast executor (schema/fast_execution.py) never changes an answer: every operation of graphql/operations/ and
the suite's representative reads, for every persona, give the same data and the same errors through graphql-core's
own field-by-field execution and through the fast path. Queries and subscriptions run against one store; mutations
against two identical stores (the demo data), one per executor, with the ids and times a write draws normalised.
"""
from __future__ import annotations

import asyncio
import re
from copy import deepcopy
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from graphql import OperationDefinitionNode, OperationType, parse

from auth.dev_tokens import PERSONAS_BY_NAME, persona_claims
from auth.principal import principal_from_claims
from bench.caller import graphql_schema
from context import Context, Services
from schema.build import CaseRepositorySchema, FreshPerEventExecutor, build_schema
from server import SERVICES, create_app
from settings import Settings
from stores.database import Database, connect
from tests.factories import status_changed

pytestmark = pytest.mark.mongomock_only("compares two executors over the same in-process store; no store behaviour")

OPERATIONS = Path(__file__).resolve().parent.parent / "graphql" / "operations"
PERSONAS = ("back-office", "call-center", "advisor", "advisor-waw", "team-manager", "operations-manager",
            "pii-officer", "auditor", "no-roles", "customer-anna")
# Each operation's variables on the demo data (graphql/operations/*.graphql say what each one shows there).
VARIABLES: dict[str, dict[str, Any]] = {
    "MyCalendar": {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"},
    "CaseDetail": {"id": "CASE-2026-000123", "historyFirst": 5},
    "CaseList": {"filter": {"open": True, "or": [{"caseType": ["MORTGAGE"]}, {"hasOpenIncident": True}]},
                 "orderBy": {"field": "UPDATED_AT", "direction": "DESC"}, "first": 20},
    "Customer360": {"id": "CUST-1001", "casesFilter": {"open": True}, "timelineFirst": 10},
    "CustomerCard": {"id": "CUST-1002"},
    "CasesWithOpenIncidents": {"first": 20},
    "MyTasks": {"filter": {"state": ["CREATED", "ASSIGNED"], "overdue": False},
                "orderBy": {"field": "DUE_AT", "direction": "ASC"}, "first": 20},
    "Installment": {"amount": "350000.00", "annualRate": "7.25", "termMonths": 360},
    "CaseNegotiatedTerms": {"caseId": "CASE-2026-000123"},
    "CustomerNegotiatedTerms": {"customerId": "CUST-1001"},
    "UnitTasks": {"first": 50},
    "CaseStatusChanged": {"customerId": "CUST-1001"},
    "CaseUpdated": {"id": "CASE-2026-000123"},
    "MyNotifications": {},
    "AddNote": {"caseId": "CASE-2026-000123", "text": "Customer asked to call back after 5 pm."},
    "ClaimTask": {"taskId": "T-123-3"},
    "RetryIncident": {"incidentId": "I-1"},
    "RecordNegotiatedTerms": {"caseId": "CASE-2026-000123", "input": {
        "amount": "350000.00", "currency": "PLN", "termMonths": 360, "annualRate": "7.25", "margin": "1.90"}},
    "ApproveNegotiatedTerms": {"caseId": "CASE-2026-000123"},
    "EditNote": {"noteId": "N-none", "text": "Customer asked to call back after 6 pm."},
    "DeleteNote": {"noteId": "N-none"},
    "ScheduleAppointment": {"caseId": "CASE-2026-000123", "at": "2027-01-07T10:00:00Z", "channel": "BRANCH",
                            "note": "Bring the co-borrower's income statement"},
    "UnclaimTask": {"taskId": "T-123-4"},
    "AssignTask": {"taskId": "T-123-3", "assignee": "anna.nowak"},
    "CompleteTask": {"taskId": "T-123-4", "input": {"outcome": "CALLED"}},
}
# The suite's representative reads beyond the operation files: masked and refused fields, a null where the
# schema says non-null, an enum the store does not know, lists, federation entities.
READS: dict[str, tuple[str, dict[str, Any]]] = {
    "people": ("query ($id: ID!) { case(id: $id) { id customer { id name pesel segment } "
               "participants { id name role pesel phone } documents { id name url } } }",
               {"id": "CASE-2026-000123"}),
    "missing case": ("query { case(id: \"CASE-NONE\") { id status } }", {}),
    "entities": ("query ($r: [_Any!]!) { _entities(representations: $r) { ... on Case { id status title "
                 "customer { id name } } ... on Customer { id name pesel } } }",
                 {"r": [{"__typename": "Case", "id": "CASE-2026-000123"}, {"__typename": "Customer", "id": "CUST-1001"},
                        {"__typename": "Case", "id": "CASE-NONE"}]}),
    "aliases and typename": ("query { a: case(id: \"CASE-2026-000123\") { __typename id s: status status } "
                             "b: case(id: \"CASE-2026-000123\") { id version tasks { id state assignee } } }", {}),
    "list page": ("query { cases(first: 5, orderBy: {field: CREATED_AT, direction: ASC}) { totalCount "
                  "edges { cursor node { id caseType status branch createdAt hasOpenIncident } } "
                  "pageInfo { hasNextPage endCursor } } }", {}),
}
# What a write draws anew: ids, and times of now.
_DRAWN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[.\d]*"
                    r"(?:\+00:00|Z)")


def _operations() -> list[tuple[str, OperationType, str]]:
    found = []
    for path in sorted(OPERATIONS.glob("*.graphql")):
        source = path.read_text()
        for definition in parse(source).definitions:
            if isinstance(definition, OperationDefinitionNode) and definition.name is not None:
                found.append((definition.name.value, definition.operation, source))
    return found


def _context(services: Services, persona: str) -> Context:
    principal = principal_from_claims(persona_claims(services.settings, PERSONAS_BY_NAME[persona]),
                                      services.settings.auth_audience)
    return Context(services=services, principal=principal, channel=principal.channel)


def _answer(result: Any) -> bytes:
    """The response as a client gets it: data and errors (message, path, locations, extensions), encoded. An
    INTERNAL error's correlation id is drawn per error, so it is compared as a placeholder."""
    errors = [error.formatted for error in result.errors] if result.errors else None
    for error in errors or ():
        if "correlationId" in (error.get("extensions") or {}):
            error["extensions"]["correlationId"] = "<drawn>"
    return orjson.dumps({"data": result.data, "errors": errors}, option=orjson.OPT_SORT_KEYS)


async def _demo_app(database: Database) -> tuple[TestClient, CaseRepositorySchema]:
    """The app as `make run` starts it (demo data loaded through the pipeline) and its served schema."""
    settings = Settings(demo_data=True, outbox_relay_seconds=3600.0, response_cache_seconds=0.0)
    client = TestClient(TestServer(create_app(settings, database)))
    await client.start_server()
    return client, graphql_schema(client.server.app)


@pytest.fixture
async def demo(database: Database) -> AsyncIterator[tuple[Services, CaseRepositorySchema, CaseRepositorySchema]]:
    client, fast = await _demo_app(database)
    yield client.server.app[SERVICES], fast, build_schema(executor=FreshPerEventExecutor)
    await client.close()


def test_every_operation_file_has_variables_here() -> None:
    assert {name for name, _, _ in _operations()} == set(VARIABLES)


async def test_queries_answer_alike_for_every_persona(
        demo: tuple[Services, CaseRepositorySchema, CaseRepositorySchema]) -> None:
    services, fast, stock = demo
    queries = [(name, source, VARIABLES[name]) for name, kind, source in _operations() if kind is OperationType.QUERY]
    queries += [(None, source, variables) for source, variables in READS.values()]
    compared = 0
    for persona in PERSONAS:
        for name, source, variables in queries:
            # A fresh copy each time: Federation's _entities resolver takes `__typename` out of what it is given.
            answers = [_answer(await schema.execute(source, variable_values=deepcopy(variables), operation_name=name,
                                                    context_value=_context(services, persona)))
                       for schema in (stock, fast)]
            assert answers[0] == answers[1], f"{name or source[:60]} as {persona}"
            # Not vacuous: the back office gets data for every read; anyone else data, or a refusal by role.
            answer = orjson.loads(answers[1])
            if persona == "back-office" or answer["data"] is None:
                assert answer["data"] is not None or {e["extensions"]["code"] for e in answer["errors"]} == {"FORBIDDEN"}, \
                    f"{name or source[:60]} as {persona}: {answers[1][:300]!r}"
            compared += 1
    assert compared == len(PERSONAS) * (11 + len(READS))
    # Not vacuous: the call center reads the demo mortgage with a masked PESEL, and every read of the list parses.
    detail = orjson.loads(_answer(await fast.execute(READS["people"][0], variable_values=READS["people"][1],
                                                     context_value=_context(services, "call-center"))))
    assert detail["data"]["case"]["customer"] == {"id": "CUST-1001", "name": "Anna Kowalska",
                                                  "pesel": "*******7819", "segment": "RETAIL"}


async def test_a_non_null_field_without_a_value_is_the_same_error(
        demo: tuple[Services, CaseRepositorySchema, CaseRepositorySchema], database: Database) -> None:
    services, fast, stock = demo
    # A stored case whose required title is null (an old document, a hand edit).
    await database.collection("cases").update_one({"_id": "CASE-2026-000123"}, {"$set": {"title": None}})
    query = "query { case(id: \"CASE-2026-000123\") { id title status } }"
    answers = [_answer(await schema.execute(query, context_value=_context(services, "back-office")))
               for schema in (stock, fast)]
    assert answers[0] == answers[1]
    assert orjson.loads(answers[1])["errors"][0]["path"] == ["case", "title"]


@pytest.mark.parametrize("where, broken, error_path", [
    # A required leaf missing in an item of a list of objects: the error climbs to the nullable case.
    ("cases", {"participants.0.name": None}, ["case", "participants", 0, "name"]),
    ("cases", {"documents.1.required": None}, ["case", "documents", 1, "required"]),
    # A null item where the list's items are non-null, and a leaf list holding a null.
    ("cases", {"participants.1": None}, ["case", "participants"]),
    ("tasks", {"candidateGroups": ["back-office", None]}, ["case", "tasks", 0, "candidateGroups", 1]),
    # A value its scalar refuses in a list of leaves, and a resolver that raises on what it finds.
    ("tasks", {"candidateGroups": [{"not": "a string"}]}, ["case", "tasks", 0, "candidateGroups", 0]),
    ("cases", {"product": "PRODUCT"}, ["case", "product"]),
])
async def test_broken_stored_values_give_the_same_errors(
        demo: tuple[Services, CaseRepositorySchema, CaseRepositorySchema], database: Database, where: str,
        broken: dict[str, Any], error_path: list[Any]) -> None:
    services, fast, stock = demo
    selector = {"_id": "CASE-2026-000123"} if where == "cases" else {"_id": "CASE-2026-000123/T-123-1"}
    await database.collection(where).update_one(selector, {"$set": broken})
    query = ("query { case(id: \"CASE-2026-000123\") { id participants { id name role } "
             "documents { id required url } tasks { id candidateGroups } product { code name } "
             "history(first: 2) { edges { node { id actor { id type } } } } } }")
    answers = [_answer(await schema.execute(query, context_value=_context(services, "back-office")))
               for schema in (stock, fast)]
    assert answers[0] == answers[1]
    assert [error["path"] for error in orjson.loads(answers[1])["errors"]][:1] == [error_path]


async def test_a_selection_that_depends_on_variables_follows_them_on_every_request(
        demo: tuple[Services, CaseRepositorySchema, CaseRepositorySchema]) -> None:
    services, fast, stock = demo
    query = ("query ($full: Boolean!, $brief: Boolean!) { case(id: \"CASE-2026-000123\") { id "
             "title @include(if: $full) customer @skip(if: $brief) { id name } ...Status @include(if: $full) } } "
             "fragment Status on Case { status stage }")
    seen = []
    for full, brief in ((True, False), (False, True), (True, True), (False, False)):
        variables = {"full": full, "brief": brief}
        answers = [_answer(await schema.execute(query, variable_values=variables,
                                                context_value=_context(services, "back-office")))
                   for schema in (stock, fast)]
        assert answers[0] == answers[1], variables
        seen.append(sorted(orjson.loads(answers[1])["data"]["case"]))
    assert seen == [["customer", "id", "stage", "status", "title"], ["id"], ["id", "stage", "status", "title"],
                    ["customer", "id"]]


async def test_subscription_pushes_are_alike(
        demo: tuple[Services, CaseRepositorySchema, CaseRepositorySchema]) -> None:
    services, fast, stock = demo
    subscriptions = [(name, source) for name, kind, source in _operations() if kind is OperationType.SUBSCRIPTION
                     and name != "MyNotifications"]  # the bell pushes others' acts on tasks: test_my_notifications
    assert {name for name, _ in subscriptions} == {"CaseStatusChanged", "CaseUpdated"}
    # The demo mortgage is IN_PROGRESS: each round changes its status, so both feeds push.
    for persona, status in (("back-office", "WAITING_FOR_CUSTOMER"), ("call-center", "IN_PROGRESS"),
                            ("advisor", "WAITING_FOR_CUSTOMER")):
        streams = [await schema.subscribe(source, variable_values=VARIABLES[name], operation_name=name,
                                          context_value=_context(services, persona))
                   for name, source in subscriptions for schema in (stock, fast)]
        # Each subscription starts listening when its first push is asked for.
        first_pushes = [asyncio.ensure_future(anext(stream)) for stream in streams]
        await asyncio.sleep(0.05)
        await services.pipeline.ingest([status_changed("CASE-2026-000123", status, event_id=f"fast-{persona}",
                                                       time=datetime.now(timezone.utc))])
        pushes = [_answer(await asyncio.wait_for(push, 5)) for push in first_pushes]
        for stream in streams:
            await stream.aclose()
        assert pushes[0] == pushes[1] and pushes[2] == pushes[3], persona
        assert orjson.loads(pushes[3])["data"]["caseUpdated"]["id"] == "CASE-2026-000123"


async def test_mutations_answer_alike_on_identical_stores() -> None:
    mutations = [(name, source) for name, kind, source in _operations() if kind is OperationType.MUTATION]
    assert len(mutations) == 11
    stores = [await _demo_app(connect(None, "fast_executor_stock")), await _demo_app(connect(None, "fast_executor"))]
    try:
        # The first store is written through graphql-core's own execution, the second through the served schema.
        schemas = (build_schema(executor=FreshPerEventExecutor), stores[1][1])
        for persona in ("back-office", "advisor", "team-manager", "call-center"):
            for name, source in mutations:
                answers = []
                for (client, _), schema in zip(stores, schemas, strict=True):
                    services = client.server.app[SERVICES]
                    result = await schema.execute(source, variable_values=VARIABLES[name], operation_name=name,
                                                  context_value=_context(services, persona))
                    answers.append(_DRAWN.sub("<drawn>", _answer(result).decode()))
                assert answers[0] == answers[1], f"{name} as {persona}"
    finally:
        for client, _ in stores:
            await client.close()


def test_the_served_schema_uses_the_fast_executor() -> None:
    assert build_schema().execution_context_class.__name__ == "CaseRepositoryExecutor"
