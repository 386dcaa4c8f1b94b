"""The reads the API sends are served by an index: each API call runs over HTTP against a few thousand documents on
the wire server, every store read it makes is recorded as sent, and the server's `explain` of that read must show an
index scan (IXSCAN on the named index), not a collection scan.

Wire lane only: mongomock has no query planner. The wire server's planner is a stand-in for MongoDB's and a
simpler one (no index for a top-level `$or`, none for a filter with a clause outside the index): the reads it
cannot show as index scans are listed in `STAND_IN_SCANS` with the reason, and asserted as they are, so a change
in either direction is seen.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from auth.dev_tokens import PERSONAS_BY_NAME, mint_dev_token
from bench.r7_my_tasks import BENCH_USER, seed
from consumers.cloudevents import parse_envelope
from demo.events import demo_envelopes
from context import Services
from server import create_app
from settings import Settings
from stores.database import CountingCollection, Database
from tests.factories import BASE_TIME, bearer
from tests.panel_flow import ANNA_DIGITS, LOGIN, REQUEST_CODE, last_code
from tests.wire_store import WireStore

pytestmark = pytest.mark.wire_only(reason="mongomock has no query planner: explain means nothing there")

READS = ("find", "find_one", "aggregate", "count_documents", "find_one_and_update")


class Recorder:
    """The reads the stores send, as (collection, operation, filter or pipeline), in order."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, str, Any]] = []
        self.answer: dict[str, Any] = {}  # the last call's response


class RecordingCollection:
    """A store's collection that records each read before it is sent (and counted)."""

    def __init__(self, inner: CountingCollection, name: str, recorder: Recorder) -> None:
        self.__dict__.update(_inner=inner, _recorded_name=name, _recorder=recorder)

    def __getattr__(self, operation: str) -> Any:
        target = getattr(self._inner, operation)
        if operation not in READS:
            return target

        def recorded(*args: Any, **kwargs: Any) -> Any:
            query = args[0] if args else kwargs.get("filter", kwargs.get("pipeline", {}))
            self._recorder.reads.append((self._recorded_name, operation, query))
            return target(*args, **kwargs)

        return recorded


@pytest.fixture
def recorder(database: Database, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    found = Recorder()
    plain = database.collection
    monkeypatch.setattr(database, "collection", lambda name: RecordingCollection(plain(name), name, found))
    return found


@pytest.fixture
async def client(settings: Settings, database: Database, recorder: Recorder) -> AsyncIterator[TestClient]:
    app = create_app(settings, database)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture
def shell(wire_server: WireStore, database_name: str) -> Iterator[Any]:
    with wire_server.client() as mongo:
        yield mongo[database_name]


def explain_command(collection: str, operation: str, query: Any) -> dict[str, Any]:
    """The read as the server plans it. A pipeline's leading `$match` (with the `$sort` and `$limit` right after it)
    is planned as a find: MongoDB moves those stages into the query layer (the pipeline's `$cursor`), and the wire
    server's aggregate explain ignores the sort when it picks an index."""
    if operation == "count_documents":
        return {"count": collection, "query": query}
    if operation != "aggregate":
        return {"find": collection, "filter": query}
    stages = list(query)
    command: dict[str, Any] = {"find": collection, "filter": stages.pop(0)["$match"] if "$match" in stages[0] else {}}
    if stages and "$sort" in stages[0]:
        command["sort"] = stages.pop(0)["$sort"]
        if stages and "$limit" in stages[0]:
            command["limit"] = stages.pop(0)["$limit"]
    return command


def plan_of(shell: Any, collection: str, operation: str, query: Any) -> str:
    """The winning plan's stages from the top, as the server's explain reports them, each index scan with its index:
    `LIMIT FETCH IXSCAN:updated` walks the index in the page's order, `SORT FETCH IXSCAN:...` sorts what it found
    (a blocking sort), `COLLSCAN` reads every document."""
    explained = shell.command("explain", explain_command(collection, operation, query), verbosity="queryPlanner")
    stage, stages = explained["queryPlanner"]["winningPlan"], []
    while True:
        stages.append(f"IXSCAN:{stage['indexName']}" if stage["stage"] == "IXSCAN" else stage["stage"])
        if "inputStage" not in stage:
            return " ".join(stages)
        stage = stage["inputStage"]


CASES, TASKS, HISTORY_ROWS, AUDIT_RECORDS = 1_500, 3_000, 3_000, 3_000
CALL_CENTER = bearer(username="anna.nowak", roles=("call-center", "case-reader"))
BRANCH_ADVISOR = bearer(username="jan.kowal", roles=("advisor", "case-reader"), branch="KRK-01")


async def seeded(services: Services, database: Database) -> None:
    """The bench's cases and task rows (shapes the pipeline writes), history rows and audit records beside them."""
    await seed(services, database, tasks=TASKS, cases=CASES)
    history = [{"_id": f"EVT-{n}", "id": f"EVT-{n}", "caseId": f"CASE-2026-{n % CASES:06d}", "kind": "ACTION",
                "actor": {"type": "USER", "id": "jan.kowal"}, "channel": "BRANCH",
                "at": BASE_TIME + timedelta(minutes=n), "summary": f"Call {n}", "details": {}}
               for n in range(HISTORY_ROWS)]
    await database.collection("history").insert_many(history)
    head = await database.collection("audit").find_one({}, sort=[("_id", -1)])
    assert head is not None, "the seed's ingest leaves an audit record to copy"
    # Another writer's chain (hashes not recomputed: only the reads' plans matter here), a record a minute; every
    # tenth a push to two subscribers (the recipients' index is multikey).
    audit = [{**head, "_id": f"bench-seed:{n + 1:012d}", "writer": "bench-seed", "seq": n + 1,
              "at": head["at"] + timedelta(minutes=n), "actor": f"user-{n % 40}",
              "caseIds": [f"CASE-2026-{n % CASES:06d}"], "customerIds": [f"CUST-{n % 7_919:05d}"],
              **({"actor": "subscribers", "recipients": [f"user-{n % 40}", f"user-{(n + 7) % 40}"]}
                 if n % 10 == 0 else {})}
             for n in range(AUDIT_RECORDS)]
    await database.collection("audit").insert_many(audit)


async def plans(client: TestClient, recorder: Recorder, shell: Any, query: str, variables: dict[str, Any],
                headers: dict[str, str]) -> list[str]:
    """Each read the call made, as `collection.operation -> plan`. (A writer reads its chain's head only after a failed
    audit write, never here; the filter below stays so that such a read cannot make this test flaky.)"""
    recorder.reads.clear()
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body = await response.json()
    assert "errors" not in body, body
    recorder.answer = body
    return [f"{name}.{operation} -> {plan_of(shell, name, operation, read)}"
            for name, operation, read in recorder.reads if not (name == "audit" and operation == "find_one")]


CASE_BY_ID = "query($id: ID!) { case(id: $id) { id status } }"
CASE_LIST = """query($filter: CaseFilter, $orderBy: CaseOrderInput) {
  cases(filter: $filter, orderBy: $orderBy, first: 20) { totalCount edges { node { id } } } }"""
MY_TASKS = "query { myTasks(first: 20) { totalCount edges { node { id } } } }"
TASKS_BY_GROUP = """query($filter: TaskFilter) {
  tasks(filter: $filter, first: 20) { totalCount edges { node { id } } } }"""
CUSTOMER_360 = """query($id: ID!) { customer(id: $id) { id summary { open closed } timeline(first: 10) {
  totalCount edges { node { id } } } } }"""
BY_PESEL = "query($pesel: String!) { customerByPesel(pesel: $pesel) { id } }"
AUDIT_TRAIL = """query($caseId: ID, $customerId: ID, $actor: String) {
  auditTrail(caseId: $caseId, customerId: $customerId, actor: $actor, first: 10) { edges { node { id } } } }"""


async def test_the_api_reads_are_index_scans_on_the_wire_server(
    client: TestClient, services: Services, database: Database, recorder: Recorder, shell: Any,
) -> None:
    await seeded(services, database)
    me = {"Authorization": f"Bearer {mint_dev_token(services.settings, BENCH_USER)}"}
    found: dict[str, list[str]] = {}

    async def read(label: str, query: str, variables: dict[str, Any], headers: dict[str, str]) -> None:
        found[label] = await plans(client, recorder, shell, query, variables, headers)

    await read("case, unscoped", CASE_BY_ID, {"id": "CASE-2026-000042"}, bearer())
    await read("case, call center", CASE_BY_ID, {"id": "CASE-2026-000042"}, CALL_CENTER)
    await read("case, branch", CASE_BY_ID, {"id": "CASE-2026-000042"}, BRANCH_ADVISOR)
    for order in ("UPDATED_AT", "CREATED_AT", "STATUS", "CASE_TYPE", "ID"):
        await read(f"cases by {order}", CASE_LIST, {"orderBy": {"field": order, "direction": "DESC"}}, bearer())
    for name, value in (("customerId", "CUST-00042"), ("status", ["NEW"]), ("caseType", ["MORTGAGE"]),
                        ("open", True), ("hasOpenIncident", True)):
        await read(f"cases where {name}", CASE_LIST, {"filter": {name: value}}, bearer())
    await read("cases where status, call center", CASE_LIST, {"filter": {"status": ["NEW"]}}, CALL_CENTER)
    await read("cases of a branch", CASE_LIST, {}, BRANCH_ADVISOR)
    await read("myTasks", MY_TASKS, {}, me)
    await read("tasks by group", TASKS_BY_GROUP, {"filter": {"candidateGroup": ["credit-analysts"]}}, bearer())
    await read("tasks by assignee", TASKS_BY_GROUP, {"filter": {"assignee": "ola.mazur"}}, bearer())
    await read("customer 360", CUSTOMER_360, {"id": "CUST-00042"}, bearer())
    await read("PESEL lookup", BY_PESEL, {"pesel": "85031207819"}, bearer())
    await read("audit by case", AUDIT_TRAIL, {"caseId": "CASE-2026-000042"}, bearer(roles=("auditor",)))
    await read("audit by customer", AUDIT_TRAIL, {"customerId": "CUST-00042"}, bearer(roles=("auditor",)))
    await read("audit by actor", AUDIT_TRAIL, {"actor": "user-7"}, bearer(roles=("auditor",)))

    assert {label: plans for label, plans in found.items() if label not in STAND_IN_SCANS} == INDEXED
    assert {label: plans for label, plans in found.items() if label in STAND_IN_SCANS} == {
        label: plans for label, (plans, _why) in STAND_IN_SCANS.items() if label not in OTHER_READS}


# What explain shows for each API call's reads, in the order the call makes them: the stages of the plan that
# serves each (plan_of). `LIMIT FETCH IXSCAN` walks the index in the page's order and stops after the page. The
# wire server's planner puts a SORT above every index scan whose filter is not empty, even where the index holds
# the filter's equalities and then the sort's keys: MongoDB walks such an index in order with no SORT stage. So a
# filtered list shows `SORT FETCH IXSCAN:<index>` here; the index named is the one that holds filter + sort.
INDEXED = {
    "case, unscoped": ["cases.aggregate -> FETCH IXSCAN:_id_"],
    "cases by UPDATED_AT": ["cases.aggregate -> LIMIT FETCH IXSCAN:updated", "cases.count_documents -> COLLSCAN"],
    "cases by CREATED_AT": ["cases.aggregate -> LIMIT FETCH IXSCAN:created", "cases.count_documents -> COLLSCAN"],
    "cases by STATUS": ["cases.aggregate -> LIMIT FETCH IXSCAN:status_with_id", "cases.count_documents -> COLLSCAN"],
    "cases by CASE_TYPE": ["cases.aggregate -> LIMIT FETCH IXSCAN:type_with_id", "cases.count_documents -> COLLSCAN"],
    "cases where customerId": ["cases.aggregate -> SORT FETCH IXSCAN:customer_updated",
                               "cases.count_documents -> FETCH IXSCAN:customer_updated"],
    "cases where status": ["cases.aggregate -> SORT FETCH IXSCAN:status_updated",
                           "cases.count_documents -> FETCH IXSCAN:status_updated"],
    "cases where caseType": ["cases.aggregate -> SORT FETCH IXSCAN:type_updated",
                             "cases.count_documents -> FETCH IXSCAN:type_updated"],
    "cases where open": ["cases.aggregate -> SORT FETCH IXSCAN:open_updated",
                         "cases.count_documents -> FETCH IXSCAN:open_updated"],
    "cases where hasOpenIncident": ["cases.aggregate -> SORT FETCH IXSCAN:open_incident",
                                    "cases.count_documents -> FETCH IXSCAN:open_incident"],
    # The task lists sort on the order value stored on each row (stores/task_criteria.py ORDER_FIELDS): the
    # index that finds the rows holds it right after the filter's fields.
    "tasks by group": ["tasks.aggregate -> SORT FETCH IXSCAN:group_due_order",
                       "tasks.count_documents -> FETCH IXSCAN:group_due_order"],
    "tasks by assignee": ["tasks.aggregate -> SORT FETCH IXSCAN:assignee_due_order",
                          "tasks.count_documents -> FETCH IXSCAN:assignee_due_order"],
    "audit by case": ["audit.find -> FETCH IXSCAN:case_newest"],
    "audit by customer": ["audit.find -> FETCH IXSCAN:customer_newest"],
    # As the actor, then among a push's recipients: two reads, each on its own index (stores/audit.py).
    "audit by actor": ["audit.find -> FETCH IXSCAN:actor_newest", "audit.find -> FETCH IXSCAN:recipients_newest"],
}
# The totalCount of an unfiltered list (`cases.count_documents` with `{}` above) counts the collection: MongoDB
# scans for it too (count_documents never reads collection metadata); a page that does not select totalCount
# does not count ("cases without totalCount" below).

OTHER_INDEXED = {
    "add note": ["cases.aggregate -> FETCH IXSCAN:_id_"],
    "schedule appointment": ["cases.aggregate -> FETCH IXSCAN:_id_"],
    # A list page that does not select totalCount sends no count.
    "cases without totalCount": ["cases.aggregate -> LIMIT FETCH IXSCAN:updated"],
    # One word of a text search is one key of the search_terms index (a stored prefix, stores/case_criteria.py).
    "text search, one word": ["cases.aggregate -> SORT FETCH IXSCAN:search_terms"],
    # The unfiltered task list in each order walks that order's index: no SORT stage.
    "tasks by DUE_AT": ["tasks.aggregate -> LIMIT FETCH IXSCAN:due_order"],
    "tasks by CREATED_AT": ["tasks.aggregate -> LIMIT FETCH IXSCAN:created_order"],
    "tasks by PRIORITY": ["tasks.aggregate -> LIMIT FETCH IXSCAN:priority_order"],
}

# Reads whose plan the wire server's explain cannot show, and why. Its planner is simpler than MongoDB's: it plans
# no index for a top-level `$or`, and none for a filter with a clause outside the index it would use (MongoDB
# plans an IXSCAN and filters the rest in FETCH). Its executor still looks up one indexed clause of such a filter
# (a scoped case(id) took 1.3 ms at 3,000 cases, against 326 ms for a real scan), but explain says COLLSCAN.
STAND_IN_SCANS: dict[str, tuple[list[str], str]] = {
    "case, call center": (["cases.aggregate -> COLLSCAN"], "_id plus the scope's caseType/restricted clauses"),
    "case, branch": (["cases.aggregate -> COLLSCAN"], "_id plus the scope's branch/restricted clauses"),
    "cases by ID": (["cases.aggregate -> SORT COLLSCAN", "cases.count_documents -> COLLSCAN"],
                    "a sort on _id alone: the server's _id index is virtual and never walked for a sort"),
    "cases where status, call center": (["cases.aggregate -> SORT COLLSCAN", "cases.count_documents -> COLLSCAN"],
                                        "status_updated plus the scope's clauses"),
    "cases of a branch": (["cases.aggregate -> SORT COLLSCAN", "cases.count_documents -> COLLSCAN"],
                          "branch_updated plus the scope's restricted clause"),
    "myTasks": (["tasks.aggregate -> SORT COLLSCAN", "tasks.count_documents -> COLLSCAN"],
                "the inbox is a top-level $or (assignee_due_order | group_due_order)"),
    "PESEL lookup": (["lookup_counters.find_one_and_update -> COLLSCAN", "lookup_counters.find_one -> FETCH IXSCAN:_id_",
                      "cases.find_one -> FETCH IXSCAN:customer_pesel_index",
                      "cases.find -> FETCH IXSCAN:customer_updated"],
                     "the caller's lookup counter is found by _id plus its window's end (stores/counters.py)"),
    "customer 360": (["cases.find -> FETCH IXSCAN:customer_updated", "cases.find -> COLLSCAN",
                      "cases.aggregate -> COLLSCAN", "history.find -> FETCH IXSCAN:case_newest",
                      "history.count_documents -> FETCH IXSCAN:case_newest"],
                     "a person's cases (the summary's one grouped aggregate, the timeline's case ids) are a top-level "
                     "$or (customer_updated | participant_pesel_index)"),
    # Both sign-in calls come without a token: the unauthenticated requests' counter per client address comes first.
    "panelRequestCode": (["lookup_counters.find_one_and_update -> COLLSCAN",
                          "lookup_counters.find_one -> FETCH IXSCAN:_id_",
                          "panel_counters.find_one_and_update -> COLLSCAN",
                          "panel_counters.find_one -> FETCH IXSCAN:_id_", "cases.aggregate -> FETCH IXSCAN:_id_",
                          "panel_counters.find_one -> FETCH IXSCAN:_id_",
                          "panel_counters.find_one_and_update -> COLLSCAN",
                          "panel_counters.find_one -> FETCH IXSCAN:_id_"],
                         "the counters are found by _id plus their window's end (stores/counters.py)"),
    "panelLogin": (["lookup_counters.find_one_and_update -> COLLSCAN", "panel_counters.find_one -> FETCH IXSCAN:_id_",
                    "panel_counters.find_one -> FETCH IXSCAN:_id_", "cases.aggregate -> FETCH IXSCAN:_id_",
                    "panel_codes.find -> FETCH IXSCAN:_id_"],
                   "the unauthenticated requests' counter is found by _id plus its window's end"),
    "panelCase": (["panel_sessions.find_one_and_update -> COLLSCAN", "panel_sessions.find_one -> COLLSCAN",
                   "cases.aggregate -> FETCH IXSCAN:_id_", "history.find -> FETCH IXSCAN:case_newest"],
                  "the session is found by _id plus its revokedAt/idleUntil/expiresAt clauses"),
    "myCases": (["cases.find -> COLLSCAN", "cases.aggregate -> SORT COLLSCAN"],
                "customer_updated plus the scope's restricted clause; the customer's cases are a top-level $or "
                "(customer_updated | participant_pesel_index)"),
    "myCase": (["cases.find -> COLLSCAN", "cases.aggregate -> COLLSCAN"],
               "customer_updated, and _id, each plus the scope's restricted clause"),
    "case notes, terms, incidents": (["cases.aggregate -> FETCH IXSCAN:_id_", "notes.find -> COLLSCAN",
                                      "negotiated_terms.find -> FETCH IXSCAN:_id_"],
                                     "notes by case_newest plus their deleted clause"),
    "customer notes, terms": (["cases.find -> FETCH IXSCAN:customer_updated", "notes.find -> COLLSCAN",
                               "negotiated_terms.find -> FETCH IXSCAN:customer"],
                              "notes by customer_newest plus their deleted clause"),
    "calendar": (["appointments.find -> FETCH IXSCAN:employee_at", "tasks.aggregate -> FETCH IXSCAN:assignee_state_due",
                  "cases.find -> COLLSCAN"], "the deadline and held cases are a top-level $or of _id lookups"),
    "retry incident": (["cases.aggregate -> FETCH IXSCAN:incident_id", "cases.aggregate -> FETCH IXSCAN:_id_",
                        "events.find -> COLLSCAN", "cases.find -> FETCH IXSCAN:_id_",
                        "cases.aggregate -> FETCH IXSCAN:incident_id"],
                       "the journal's applied events are found by _id plus their status"),
    "text search, two words": (["cases.aggregate -> SORT COLLSCAN"],
                               "`$all` of two search terms: MongoDB scans search_terms for the first, FETCH filters "
                               "the second"),
}
OTHER_READS = ("panelRequestCode", "panelLogin", "panelCase", "myCases", "myCase", "case notes, terms, incidents", "customer notes, terms", "calendar",
               "retry incident", "text search, two words")
"""The calls of the second test (the first asserts every other stand-in)."""


PANEL_CASE = "{ panelCase { caseId status actions { id } history(first: 5) { totalCount edges { node { id } } } } }"
MY_CASES = "{ myCases { totalCount edges { node { caseId status actions { id } } } } }"
MORTGAGE = "DEMO-2026-000123"
MY_CASE = '{ myCase(id: "DEMO-2026-000123") { caseId participant { id } } }'
CASE_NOTES_AND_TERMS = """query($id: ID!) { case(id: $id) { id notes { id text } negotiatedTerms { version }
  incidents { id state } } }"""
CUSTOMER_NOTES_AND_TERMS = "query($id: ID!) { customer(id: $id) { id notes { id } negotiatedTerms { version } } }"
CALENDAR = "query($from: DateTime!, $to: DateTime!) { calendar(from: $from, to: $to) { kind caseId taskId } }"
SCHEDULE = """mutation($case: ID!, $at: DateTime!) {
  scheduleAppointment(caseId: $case, at: $at, channel: "BRANCH") { id } }"""
ADD_NOTE = "mutation($id: ID, $text: String!) { addNote(caseId: $id, text: $text) { id } }"
RETRY = 'mutation { retryIncident(incidentId: "I-1") { id state } }'
LIST_WITHOUT_COUNT = "{ cases(first: 20) { edges { node { id title } } } }"
TEXT_SEARCH = 'query($text: String!) { cases(filter: {text: $text}, first: 20) { edges { node { id } } } }'
TASK_ORDERS = """query($order: TaskOrderField!) {
  tasks(orderBy: {field: $order, direction: ASC}, first: 20) { edges { node { id } } } }"""


async def test_the_other_reads_of_the_api_on_the_wire_server(
    client: TestClient, services: Services, database: Database, recorder: Recorder, shell: Any,
) -> None:
    await seeded(services, database)
    # The demo's cases beside the bench's (whose ids they would take): the panel, notes, terms and incidents on them.
    demo = orjson.loads(orjson.dumps(demo_envelopes()).replace(b"CASE-2026-", b"DEMO-2026-"))
    await services.pipeline.ingest([parse_envelope(envelope) for envelope in demo], actor="demo-loader")
    await services.relay.relay_due()
    found: dict[str, list[str]] = {}

    async def read(label: str, query: str, variables: dict[str, Any], headers: dict[str, str]) -> None:
        found[label] = await plans(client, recorder, shell, query, variables, headers)

    # The sign-in's two calls (the code is read off the dev outbox in between, which is no API read).
    await read("panelRequestCode", REQUEST_CODE, {"c": MORTGAGE, "f": ANNA_DIGITS}, {})
    otp = await last_code(client, "P-1")
    await read("panelLogin", LOGIN, {"c": MORTGAGE, "f": ANNA_DIGITS, "o": otp}, {})
    anna_panel = {"Authorization": f"Bearer {recorder.answer['data']['panelLogin']['token']}"}
    await read("panelCase", PANEL_CASE, {}, anna_panel)
    piotr = {"Authorization": f"Bearer {mint_dev_token(services.settings, PERSONAS_BY_NAME['customer-piotr'])}"}
    await read("myCases", MY_CASES, {}, piotr)
    await read("myCase", MY_CASE, {}, piotr)
    advisor = bearer(username="anna.nowak")
    await read("add note", ADD_NOTE, {"id": MORTGAGE, "text": "Called back."}, advisor)
    await read("case notes, terms, incidents", CASE_NOTES_AND_TERMS, {"id": MORTGAGE}, advisor)
    await read("customer notes, terms", CUSTOMER_NOTES_AND_TERMS, {"id": "CUST-1001"}, advisor)
    day = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    await read("schedule appointment", SCHEDULE, {"case": MORTGAGE, "at": day.isoformat()}, advisor)
    await read("calendar", CALENDAR, {"from": (day - timedelta(days=1)).isoformat(),
                                      "to": (day + timedelta(days=30)).isoformat()}, advisor)
    await read("retry incident", RETRY, {}, bearer())
    await read("cases without totalCount", LIST_WITHOUT_COUNT, {}, bearer())
    await read("text search, one word", TEXT_SEARCH, {"text": "mortg"}, bearer())
    await read("text search, two words", TEXT_SEARCH, {"text": "Mortgage applic"}, bearer())
    for order in ("DUE_AT", "CREATED_AT", "PRIORITY"):
        await read(f"tasks by {order}", TASK_ORDERS, {"order": order}, bearer())
    assert {label: plans for label, plans in found.items() if label not in STAND_IN_SCANS} == OTHER_INDEXED
    assert {label: plans for label, plans in found.items() if label in STAND_IN_SCANS} == {
        label: plans for label, (plans, _why) in STAND_IN_SCANS.items() if label in OTHER_READS}
