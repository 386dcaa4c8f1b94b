"""Cases stored before history and tasks had rows of their own keep working after the upgrade.

The old code (before "Write-side foundation", d8f73b6) kept a case's `history`, `tasks` and `eventIds` inside
its document. Such a document is put in the store before the app starts; the app moves it at startup
(stores/migrations.py) and every test then looks at it only through GraphQL, as a client would.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server import create_app
from settings import Settings
from stores.database import Database
from stores.protection import FieldCipher, KeyRing, is_sealed, seal_case
from tests.conftest import GraphQL
from tests.factories import PUBLISH_CASE_EVENT, CaseStory, action_data, case_created_data, publish_input, task_data

CASE_ID = "CASE-OLD"
PESEL = "85031207819"
# The test operator sees a PESEL masked; the mask is made from the opened value, so it proves the seal opens.
MASKED_PESEL = "*******7819"

CASE = """
query ($id: ID!) {
  case(id: $id) {
    version
    customer { pesel }
    history { totalCount edges { node { kind summary } } }
    tasks { id state assignee }
  }
}
"""
OLD_HISTORY = [
    {"node": {"kind": "CALL", "summary": "Customer called about the offer"}},
    {"node": {"kind": "TASK_CREATED", "summary": "Task created: Order valuation"}},
    {"node": {"kind": "TASK_UPDATED", "summary": "Task updated: T-1"}},
    {"node": {"kind": "TASK_CREATED", "summary": "Task created: Verify income documents"}},
    {"node": {"kind": "CASE_CREATED", "summary": "Case opened: Mortgage for a flat"}},
]
OLD_TASKS = [{"id": "T-1", "state": "ASSIGNED", "assignee": "u-olga"},
             {"id": "T-2", "state": "CREATED", "assignee": None}]


def _story() -> CaseStory:
    """The events the old document below was built from (ids CASE-OLD-e001..e005, ten minutes apart from 10:00)."""
    return (CaseStory(CASE_ID)
            .add("case.created", case_created_data())
            .add("case.task_created", task_data("T-1"))
            .add("case.task_updated", {"task": {"id": "T-1", "assignee": "u-olga", "state": "ASSIGNED"}})
            .add("case.task_created", task_data("T-2", name="Order valuation", candidateGroups=["valuation"]))
            .add("case.action_recorded", action_data("A-1", at="2026-11-21T10:45:00+00:00")))


def _at(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 21, hour, minute, tzinfo=timezone.utc)


def _by(number: int) -> list[Any]:
    """The order stamp the old reducer kept: [sequence, event id]."""
    return [number, f"{CASE_ID}-e{number:03d}"]


def _system_entry(number: int, kind: str, summary: str, minute: int) -> dict[str, Any]:
    return {"id": f"{CASE_ID}-e{number:03d}", "eventId": f"{CASE_ID}-e{number:03d}", "kind": kind,
            "summary": summary, "actor": {"type": "SYSTEM", "id": "tests/bpms", "name": None}, "channel": None,
            "at": _at(10, minute), "details": None}


def _old_task(task_id: str, name: str, groups: list[str], assignee: str | None, state: str,
              created_by: int, updated_by: int) -> dict[str, Any]:
    return {"id": task_id, "name": name, "formKey": "verify-income", "candidateGroups": groups,
            "assignee": assignee, "participantId": None, "dueAt": None, "state": state,
            "stamps": {"id": _by(created_by), "name": _by(created_by), "formKey": _by(created_by),
                       "candidateGroups": _by(created_by), "participantId": _by(created_by),
                       "dueAt": _by(created_by), "assignee": _by(updated_by), "state": _by(updated_by)}}


def old_case_document(*, with_pesel: bool) -> dict[str, Any]:
    """The case of `_story()` as the old code stored it (d8f73b6:consumers/apply.py), PESELs still in clear."""
    person = {"pesel": PESEL} if with_pesel else {}
    return {
        "_id": CASE_ID, "version": 5,
        "eventIds": [f"{CASE_ID}-e{n:03d}" for n in range(1, 6)],
        "history": [
            _system_entry(1, "CASE_CREATED", "Case opened: Mortgage for a flat", 10),
            _system_entry(2, "TASK_CREATED", "Task created: Verify income documents", 20),
            _system_entry(3, "TASK_UPDATED", "Task updated: T-1", 30),
            _system_entry(4, "TASK_CREATED", "Task created: Order valuation", 40),
            {"id": "A-1", "kind": "CALL", "actor": {"type": "USER", "id": "u-ewa", "name": "Ewa Zielińska"},
             "channel": "CALL_CENTER", "at": _at(10, 45), "summary": "Customer called about the offer",
             "details": None, "eventId": f"{CASE_ID}-e005"},
        ],
        "tasks": [
            _old_task("T-1", "Verify income documents", ["back-office"], "u-olga", "ASSIGNED", 2, 3),
            _old_task("T-2", "Order valuation", ["valuation"], None, "CREATED", 4, 4),
        ],
        "stamps": {name: _by(1) for name in ("caseType", "title", "channel", "branch", "restricted", "sourceSystem",
                                              "product", "status", "stage", "processes", "forms")},
        "closedAt": None, "outcome": None, "updatedAt": _at(10, 50),
        "participants": [{"id": "P-1", "role": "PRIMARY_BORROWER", "name": "Anna Kowalska", "phone": "+48601200300",
                          **person, "stamps": {name: _by(1) for name in ("id", "role", "name", "phone", *person)}}],
        "customerId": "CUST-1",
        "customer": {"id": "CUST-1", "name": "Anna Kowalska", "segment": "RETAIL", **person,
                     "stamps": {name: _by(1) for name in ("id", "name", "segment", *person)}},
        "createdAt": _at(10, 10), "caseType": "MORTGAGE", "title": "Mortgage for a flat", "channel": "BRANCH",
        "branch": "KRK-01", "restricted": False, "sourceSystem": "branch-frontend",
        "product": {"code": "MORT", "name": "Mortgage", "amount": "350000.00", "currency": "PLN"},
        "status": "NEW", "stage": "APPLICATION", "processes": [], "forms": [], "hasOpenIncident": False,
        "isOpen": True,
    }


@asynccontextmanager
async def running(settings: Settings, database: Database) -> AsyncIterator[GraphQL]:
    """An app started (and at the end stopped) on `database`: what a deployment of the new code does."""
    async with TestClient(TestServer(create_app(settings, database))) as client:
        yield GraphQL(client)


async def _seed(settings: Settings, database: Database, *, with_pesel: bool = True) -> None:
    """The old document, its PESELs and phones sealed with the app's key as the old store did."""
    cipher = FieldCipher(KeyRing.from_setting(settings.data_encryption_key))
    await database.collection("cases").insert_one(seal_case(old_case_document(with_pesel=with_pesel), cipher))


@pytest.fixture
async def upgraded(settings: Settings, database: Database) -> AsyncIterator[GraphQL]:
    """The old case in the store, then the new code started on it."""
    await _seed(settings, database)
    async with running(settings, database) as gql:
        yield gql


async def _stored(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Everything the migration and the pipeline write, collection by collection, in _id order."""
    return {name: await database.collection(name).find().sort([("_id", 1)]).to_list(None)
            for name in ("cases", "history", "tasks", "events", "outbox")}


@pytest.mark.parametrize("with_pesel", [True, False], ids=["sealed-pesel", "no-pesel"])
async def test_an_old_case_shows_its_history_and_tasks_after_the_upgrade(
    settings: Settings, database: Database, with_pesel: bool,
) -> None:
    # Given a case stored by the old code, history, tasks and event ids inside its document
    await _seed(settings, database, with_pesel=with_pesel)

    # When the new code starts on that store and a client reads the case
    async with running(settings, database) as gql:
        answer = await gql(CASE, {"id": CASE_ID})

    # Then the client sees the old entries newest first, the old tasks, and the PESEL (if any) still opens
    assert answer == {"data": {"case": {
        "version": 5, "customer": {"pesel": MASKED_PESEL if with_pesel else None},
        "history": {"totalCount": 5, "edges": OLD_HISTORY}, "tasks": OLD_TASKS,
    }}}
    # And the document no longer embeds what now has rows of its own; the PESEL stays sealed at rest
    document = await database.collection("cases").find_one({"_id": CASE_ID})
    assert {"history", "tasks", "eventIds"} & set(document) == set()
    assert is_sealed(document["customer"].get("pesel")) is with_pesel


async def test_an_old_event_delivered_again_is_a_duplicate(upgraded: GraphQL) -> None:
    # Given an upgraded old case; When the producer redelivers one of the events the old code applied
    redelivered = _story().envelopes[2]  # CASE-OLD-e003, the T-1 assignment
    answer = await upgraded(PUBLISH_CASE_EVENT, {"event": publish_input(redelivered)})

    # Then it is a duplicate and the case is as it was
    assert answer == {"data": {"publishCaseEvent": {"eventId": "CASE-OLD-e003", "status": "DUPLICATE"}}}
    assert await upgraded(CASE, {"id": CASE_ID}) == {"data": {"case": {
        "version": 5, "customer": {"pesel": MASKED_PESEL},
        "history": {"totalCount": 5, "edges": OLD_HISTORY}, "tasks": OLD_TASKS,
    }}}


async def test_a_new_event_applies_on_top_of_an_old_case(upgraded: GraphQL) -> None:
    # Given an upgraded old case; When its next event arrives (T-2 taken by u-marek)
    following = _story().add("case.task_updated", {"task": {"id": "T-2", "assignee": "u-marek", "state": "ASSIGNED"}})
    answer = await upgraded(PUBLISH_CASE_EVENT, {"event": publish_input(following.envelopes[-1])})

    # Then it applies on top: one version more, one entry more, the task changed and the other kept
    assert answer == {"data": {"publishCaseEvent": {"eventId": "CASE-OLD-e006", "status": "APPLIED"}}}
    assert await upgraded(CASE, {"id": CASE_ID}) == {"data": {"case": {
        "version": 6, "customer": {"pesel": MASKED_PESEL},
        "history": {"totalCount": 6, "edges": [
            {"node": {"kind": "TASK_UPDATED", "summary": "Task updated: T-2"}}, *OLD_HISTORY]},
        "tasks": [{"id": "T-1", "state": "ASSIGNED", "assignee": "u-olga"},
                  {"id": "T-2", "state": "ASSIGNED", "assignee": "u-marek"}],
    }}}


async def test_a_second_start_changes_nothing(settings: Settings, database: Database) -> None:
    # Given an old case that one start of the new code has migrated
    await _seed(settings, database)
    async with running(settings, database):
        pass
    after_first_start = await _stored(database)

    # When the app starts again on the same store (the migration runs a second time)
    async with running(settings, database) as gql:
        answer = await gql(CASE, {"id": CASE_ID})
        after_second_start = await _stored(database)

    # Then the store holds exactly what the first start left, and the client sees the old case unchanged
    assert after_second_start == after_first_start
    assert [len(after_first_start[name]) for name in ("cases", "history", "tasks", "events")] == [1, 5, 2, 5]
    assert answer == {"data": {"case": {
        "version": 5, "customer": {"pesel": MASKED_PESEL},
        "history": {"totalCount": 5, "edges": OLD_HISTORY}, "tasks": OLD_TASKS,
    }}}


async def test_a_start_stopped_half_way_through_the_move_finishes_it_next_time(
    settings: Settings, database: Database,
) -> None:
    # Given an old case whose rows a start already wrote, but which still embeds its lists (that start stopped
    # before its last step)
    await _seed(settings, database)
    async with running(settings, database):
        pass
    old = old_case_document(with_pesel=True)
    await database.collection("cases").update_one(
        {"_id": CASE_ID}, {"$set": {name: old[name] for name in ("history", "tasks", "eventIds")}})

    # When the app starts again
    async with running(settings, database) as gql:
        answer = await gql(CASE, {"id": CASE_ID})

    # Then the move is finished without doubling an entry, a task or a journal record
    stored = await _stored(database)
    assert [len(stored[name]) for name in ("history", "tasks", "events")] == [5, 2, 5]
    assert {"history", "tasks", "eventIds"} & set(stored["cases"][0]) == set()
    assert answer == {"data": {"case": {
        "version": 5, "customer": {"pesel": MASKED_PESEL},
        "history": {"totalCount": 5, "edges": OLD_HISTORY}, "tasks": OLD_TASKS,
    }}}


async def test_a_migrated_case_cannot_be_rebuilt_as_of_a_moment_and_says_so(upgraded: GraphQL) -> None:
    # Given a case migrated from the embedded layout (its early events were journaled without their CloudEvents)
    # When someone asks for it as of a moment
    result = await upgraded('{ case(id: "CASE-OLD", asOf: "2026-11-21T12:00:00Z") { id } }')

    # Then the answer is a clear refusal, not a case that "did not exist yet"
    assert result["data"] == {"case": None}
    assert [(e["extensions"]["code"], e["message"]) for e in result["errors"]] == [(
        "BAD_USER_INPUT", "asOf: case CASE-OLD was recorded before its events were kept with it, so it cannot be "
        "rebuilt as of a moment; read it without asOf")]
