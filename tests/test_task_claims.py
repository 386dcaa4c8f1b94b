"""Claims for the dashboard: one conditional update of a task row (`TaskStore.change`, as claimTask writes it) takes
an open task for one person, once, beside the event pipeline.

A claim is one conditional update of the task's row: it never touches the case document (nor its version), an
event on the same case at the same moment keeps what the claim set, and the command it stages is relayed from
the row (consumers/staging.py) and sent once.

A claim also stages its `case.task_changed` for `case-updates`: that is what tells every instance's response cache
(this one's through its bus) that `case { tasks }` changed.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from consumers import staging as staging_module
from consumers.publication import TASK_CHANGED, record_event
from consumers.pipeline import EventPipeline
from settings import Settings
from stores.case_scope import EVERYTHING
from stores.cases import CaseStore, CaseWrite
from stores.tasks import OPEN_STATES
from stores.outbox import Message
from tests.factories import CaseStory, case_created_data, task_data

CASE_ID = "CASE-1"
TASKS = """
query ($id: ID!) { case(id: $id) { version tasks { id state assignee dueAt candidateGroups } } }
"""
DUE_AT = "2026-11-25T16:00:00+00:00"


@pytest.fixture
def settings() -> Settings:
    # These tests read a case before and after a claim: the response cache would answer the second read from the
    # first, so it is off here (its eviction has tests of its own).
    return Settings(demo_data=False, outbox_relay_seconds=3600.0, response_cache_seconds=0)


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a claim staged counts as left behind at once, so the sweep takes it without a sleep."""
    # Not quite 0: the store keeps times to the millisecond, so a sweep in the claim's millisecond would not find
    # it staged *before* its own now.
    monkeypatch.setattr(staging_module, "ABANDONED_AFTER", timedelta(milliseconds=-1))


def _story() -> CaseStory:
    """A case with one open task, T-1, offered to back-office and held by nobody."""
    return CaseStory(CASE_ID).add("case.created", case_created_data()).add("case.task_created", task_data("T-1"))


async def _open_case(services: Any) -> CaseStory:
    story = _story()
    await services.pipeline.ingest(story.events)
    return story


async def claim(services: Any, task_id: str, assignee: str, groups: Sequence[str],
                *staged: dict[str, Any]) -> dict[str, Any] | None:
    """A claim as claimTask writes it: one conditional update of the row (open, unassigned, offered to one of
    `groups`) that stages its command (and its published change); None when the condition no longer holds."""
    row = await services.tasks.visible(task_id, scope=EVERYTHING)
    assert row is not None
    return await services.tasks.change(
        row["_id"], {"assignee": None, "state": {"$in": list(OPEN_STATES)}, "candidateGroups": {"$in": list(groups)}},
        {"assignee": assignee}, list(staged), scope=EVERYTHING)


def assignment_command(assignee: str) -> dict[str, Any]:
    """The staged form of the `task.assignment_changed` command a claim of T-1 by `assignee` sends."""
    return Message(id=f"claim:T-1:{assignee}", topic="commands", key=CASE_ID, event=command_event(assignee)).staged()


def task_changed(assignee: str) -> dict[str, Any]:
    """The staged `case.task_changed` a claim of T-1 by `assignee` publishes on `case-updates`."""
    event = record_event(TASK_CHANGED, f"changed:T-1:{assignee}", {"caseId": CASE_ID, "customerId": "CUST-1"},
                         datetime(2026, 11, 21, 12, tzinfo=timezone.utc),
                         {"task": {"id": "T-1", "assignee": assignee}, "change": "TASK_CLAIMED", "by": assignee})
    return Message(id=event["id"], topic="updates", key=CASE_ID, event=event).staged()


def command_event(assignee: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"claim:T-1:{assignee}", "source": "case-repository",
            "type": "task.assignment_changed", "subject": CASE_ID, "time": "2026-11-21T12:00:00Z",
            "datacontenttype": "application/json", "data": {"taskId": "T-1", "assignee": assignee}}


def _task(answer: dict[str, Any]) -> dict[str, Any]:
    [task] = answer["data"]["case"]["tasks"]
    return task


async def test_of_ten_concurrent_claims_exactly_one_takes_the_task(services: Any, gql: Any, no_waiting: None) -> None:
    # Given an open task offered to back-office
    await _open_case(services)
    claimants = [f"u-{n}" for n in range(10)]

    # When ten back-office people claim it at the same moment
    rows = await asyncio.gather(*(claim(services, "T-1", who, ["back-office"], assignment_command(who))
                                  for who in claimants))

    # Then exactly one claim returns the row, held by that claimant; the other nine get None
    taken = [row for row in rows if row is not None]
    assert len(taken) == 1 and rows.count(None) == 9
    winner = taken[0]["assignee"]
    assert winner in claimants and taken[0]["id"] == "T-1" and taken[0]["caseId"] == CASE_ID
    # And the case shows the task held by the winner, and only the winner's command goes out
    assert _task(await gql(TASKS, {"id": CASE_ID})) == {
        "id": "T-1", "state": "CREATED", "assignee": winner, "dueAt": None, "candidateGroups": ["back-office"]}
    await services.staging.sweep()
    assert await services.outbox.sent("commands") == [command_event(winner)]


@pytest.mark.parametrize("groups, events", [
    (["valuation"], []),
    (["back-office"], [("case.task_completed", {"task": {"id": "T-1"}})]),
], ids=["outside-candidate-groups", "task-completed"])
async def test_a_claim_of_a_task_not_offered_to_the_caller_is_refused(
    services: Any, gql: Any, no_waiting: None, groups: list[str], events: list[tuple[str, dict[str, Any]]],
) -> None:
    # Given a task offered to back-office (in the second case, completed already)
    story = _story()
    for event_type, data in events:
        story.add(event_type, data)
    await services.pipeline.ingest(story.events)
    before = await gql(TASKS, {"id": CASE_ID})

    # When someone claims it whose groups it is not offered to (or after it was completed)
    row = await claim(services, "T-1", "u-val", groups, assignment_command("u-val"))

    # Then the claim is refused, the task is as it was and no command goes out
    assert row is None
    assert await gql(TASKS, {"id": CASE_ID}) == before
    assert _task(before)["assignee"] is None
    await services.staging.sweep()
    assert await services.outbox.sent("commands") == []


async def test_a_claim_leaves_the_case_version_alone(services: Any, gql: Any) -> None:
    # Given an open task on a case at version 2
    await _open_case(services)
    assert (await gql(TASKS, {"id": CASE_ID}))["data"]["case"]["version"] == 2

    # When back-office claims it
    row = await claim(services, "T-1", "u-olga", ["back-office"], assignment_command("u-olga"))

    # Then the task is held, and the case is still at version 2
    assert row is not None
    assert await gql(TASKS, {"id": CASE_ID}) == {"data": {"case": {"version": 2, "tasks": [
        {"id": "T-1", "state": "CREATED", "assignee": "u-olga", "dueAt": None, "candidateGroups": ["back-office"]}]}}}


# The settings the app runs with: a `case` answer is cached per caller for 30 s, evicted by every change.
WITH_RESPONSE_CACHE = Settings(demo_data=False, outbox_relay_seconds=3600.0)


@pytest.mark.parametrize("settings", [WITH_RESPONSE_CACHE], ids=["response-cache-on"])
async def test_a_reader_who_read_the_case_just_before_sees_the_claim(services: Any, gql: Any) -> None:
    # Given a dashboard user who has just read the case, its task held by nobody
    await _open_case(services)
    before = await gql(TASKS, {"id": CASE_ID})
    assert _task(before)["assignee"] is None

    # When back-office claims the task and relays what the claim staged, as a writer does right after its write
    row = await claim(services, "T-1", "u-olga", ["back-office"], assignment_command("u-olga"), task_changed("u-olga"))
    await services.staging.relay_records(services.tasks, [row])

    # Then reading the case again shows who holds the task (not the answer cached before the claim)
    assert await gql(TASKS, {"id": CASE_ID}) == {"data": {"case": {"version": 2, "tasks": [
        {"id": "T-1", "state": "CREATED", "assignee": "u-olga", "dueAt": None, "candidateGroups": ["back-office"]}]}}}
    assert await services.outbox.sent("commands") == [command_event("u-olga")]


class ClaimDuring:
    """The app's case store, letting a claim land at one step of an event's write: right after the pipeline read
    the case ("read": the event is reduced on the task as it was before the claim) or right after it wrote the
    case ("write": before the task row is merged)."""

    def __init__(self, cases: CaseStore, step: str) -> None:
        self._cases = cases
        self._step = step
        self.reached = asyncio.Event()
        self.resume = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cases, name)

    async def get_for_update(self, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        docs = await self._cases.get_for_update(case_ids)
        if self._step == "read":
            await self._pause()
        return docs

    async def save(self, writes: Sequence[CaseWrite]) -> set[str]:
        conflicted = await self._cases.save(writes)
        if self._step == "write":
            await self._pause()
        return conflicted

    async def _pause(self) -> None:
        if not self.reached.is_set():  # the first pass only; a retry runs freely
            self.reached.set()
            await self.resume.wait()


async def _event_and_claim(services: Any, step: str, event: Any, assignee: str) -> tuple[Any, Any]:
    """Apply `event` through a pipeline whose write is interrupted at `step` by a claim of T-1 for `assignee`."""
    cases = ClaimDuring(services.cases, step)
    pipeline = EventPipeline(cases, services.events, services.staging)  # type: ignore[arg-type]

    async def claim_meanwhile() -> Any:
        await cases.reached.wait()
        try:
            return await claim(services, "T-1", assignee, ["back-office"], assignment_command(assignee))
        finally:
            cases.resume.set()

    return await asyncio.gather(pipeline.ingest([event]), claim_meanwhile())


@pytest.mark.parametrize("step", ["read", "write"])
async def test_an_event_and_a_claim_at_the_same_time_both_land(services: Any, gql: Any, step: str) -> None:
    # Given an open task
    story = await _open_case(services)

    # When the engine moves its due date while back-office claims it
    story.add("case.task_updated", {"task": {"id": "T-1", "dueAt": DUE_AT}})
    [result], row = await _event_and_claim(services, step, story.events[-1], "u-olga")

    # Then both land: the event (one version more, its due date) and the claim (its assignee)
    assert result.status.value == "APPLIED" and row is not None
    assert await gql(TASKS, {"id": CASE_ID}) == {"data": {"case": {"version": 3, "tasks": [
        {"id": "T-1", "state": "CREATED", "assignee": "u-olga", "dueAt": DUE_AT, "candidateGroups": ["back-office"]}]}}}


@pytest.mark.parametrize("step", ["read", "write"])
async def test_an_event_that_assigns_the_task_has_the_last_word_over_a_concurrent_claim(
    services: Any, gql: Any, step: str,
) -> None:
    # Given an open task
    story = await _open_case(services)

    # When the engine assigns it (and moves its due date) while back-office claims it
    story.add("case.task_updated",
              {"task": {"id": "T-1", "assignee": "u-engine", "state": "ASSIGNED", "dueAt": DUE_AT}})
    [result], row = await _event_and_claim(services, step, story.events[-1], "u-olga")

    # Then the engine's assignment, newer than anything the claim knew, is what the task shows, with all the
    # event's other fields
    assert result.status.value == "APPLIED" and row is not None
    assert await gql(TASKS, {"id": CASE_ID}) == {"data": {"case": {"version": 3, "tasks": [
        {"id": "T-1", "state": "ASSIGNED", "assignee": "u-engine", "dueAt": DUE_AT,
         "candidateGroups": ["back-office"]}]}}}


async def test_a_claims_command_is_sent_once_however_often_the_sweep_runs(services: Any, no_waiting: None) -> None:
    # Given a claim whose command is staged on the task row (its writer stopped before relaying it)
    await _open_case(services)
    assert await claim(services, "T-1", "u-olga", ["back-office"], assignment_command("u-olga")) is not None
    assert await services.outbox.sent("commands") == []

    # When the relay's sweep runs twice
    await services.staging.sweep()
    await services.staging.sweep()

    # Then the command was sent exactly once
    assert await services.outbox.sent("commands") == [command_event("u-olga")]


async def test_a_sweep_that_stopped_before_forgetting_the_command_does_not_send_it_again(
    services: Any, no_waiting: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a claim's staged command that one sweep sent but did not get to forget (its instance stopped)
    await _open_case(services)
    await claim(services, "T-1", "u-olga", ["back-office"], assignment_command("u-olga"))
    with monkeypatch.context() as stopped:
        stopped.setattr(services.tasks, "clear_staged", _forget_nothing)
        await services.staging.sweep()

    # When the next sweep finds the command still staged and relays it again
    await services.staging.sweep()

    # Then the broker got it once, and nothing is left staged for a third sweep
    assert await services.outbox.sent("commands") == [command_event("u-olga")]
    assert await services.tasks.staged(datetime.now(timezone.utc) + timedelta(seconds=1), 10) == []


async def _forget_nothing(relayed: Sequence[tuple[str, int]]) -> None:
    return None
