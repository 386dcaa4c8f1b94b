"""CONTRACT §3a: after each applied change the case's new state is published, without sensitive data."""
from __future__ import annotations

import asyncio
from typing import Any

import orjson

from consumers.publication import PublishedState
from tests.factories import (
    PUBLISH_CASE_EVENT, CaseStory, case_created_data, full_story, publish_input, stored_case, task_data,
)

# Valid PESELs (checksums hold): events with an invalid one are refused before they reach publication.
PESELS = ("85031207819", "90072412344", "02270803624")
PHONES = ("+48601200300", "+48602300400")


def _drain(queue: asyncio.Queue[PublishedState]) -> list[PublishedState]:
    published = []
    while not queue.empty():
        published.append(queue.get_nowait())
    return published


def _keys(value: Any) -> set[str]:
    """Every key at any depth of a JSON-like value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def test_an_applied_batch_publishes_the_cases_new_state(services) -> None:
    # Given subscribers of two cases
    created, task = CaseStory("CASE-1").add("case.created", case_created_data()).add(
        "case.task_created", task_data("T-1")).events
    other = CaseStory("CASE-2").add("case.created", case_created_data(title="Card")).events[0]
    with services.bus.subscribe("CASE-1") as case_1, services.bus.subscribe("CASE-2") as case_2:
        # When one batch creates CASE-1 and adds a task, and creates CASE-2
        await services.pipeline.ingest([created, task, other])

        # Then each subscriber receives its case once, in the state the store now holds
        [published] = _drain(case_1)
        [published_2] = _drain(case_2)
    stored = await stored_case(services, "CASE-1")
    assert published.case_id == "CASE-1" and published.previous_status is None
    assert {k: published.state[k] for k in ("id", "version", "status", "title", "updatedAt")} == {
        "id": "CASE-1", "version": 2, "status": "NEW", "title": "Mortgage for a flat",
        "updatedAt": stored["updatedAt"]}
    assert [t["id"] for t in published.state["tasks"]] == ["T-1"]
    # It carries the entries this change added, never the whole history.
    assert [e["kind"] for e in published.state["historyAdded"]] == ["CASE_CREATED", "TASK_CREATED"]
    assert published.state["historyAddedCount"] == 2
    assert "history" not in published.state
    assert (published_2.state["id"], published_2.state["title"]) == ("CASE-2", "Card")


async def test_the_published_state_has_no_pesel_and_no_participant_phone(services) -> None:
    # Given a case whose events carry PESELs and phones (customer, participants, a customer update)
    story = full_story("CASE-1")
    closing = story.envelopes.pop()  # before the closing: a closed case takes no new participant
    story.add("case.updated", {"customer": {"pesel": PESELS[2]}})
    story.add("case.participant_added", {"participant": {
        "id": "P-3", "role": "GUARANTOR", "name": "Jan Nowak", "phone": "+48603400500", "pesel": PESELS[2]}})
    story.add("case.closed", closing["data"])

    with services.bus.subscribe("CASE-1") as updates:
        # When they are applied, in one batch and then one by one
        await services.pipeline.ingest(story.events[:5])
        for event in story.events[5:]:
            await services.pipeline.ingest([event])
        published = _drain(updates)

    # Then no published state names a PESEL anywhere, nor a participant's phone
    assert [p.state["version"] for p in published] == list(range(5, len(story.events) + 1))
    for state in (p.state for p in published):
        assert not {k for k in _keys(state) if "pesel" in k.lower()}
        assert all("phone" not in participant for participant in state["participants"])
        wire = orjson.dumps(state, default=str).decode()
        assert not [secret for secret in (*PESELS, *PHONES, "+48603400500") if secret in wire]
    assert [p["id"] for p in published[-1].state["participants"]] == ["P-1", "P-2", "P-3"]
    assert published[-1].state["customer"] == {"id": "CUST-1", "name": "Anna Kowalska", "segment": "AFFLUENT"}


async def test_a_duplicate_publishes_nothing_new(services, gql) -> None:
    # Given a case at version 2, whose state was published when it was applied
    story = CaseStory("CASE-1").add("case.created", case_created_data()).add("case.task_created", task_data())
    await services.pipeline.ingest(story.events)

    with services.bus.subscribe("CASE-1") as updates:
        # When its task event is delivered again, through the pipeline and over HTTP
        [result] = await services.pipeline.ingest([story.events[1]])
        over_http = await gql(PUBLISH_CASE_EVENT, {"event": publish_input(story.envelopes[1])})

        # Then both are duplicates and nothing is published again: the outbox already carried version 2
        republished = _drain(updates)
    assert result.status.value == over_http["data"]["publishCaseEvent"]["status"] == "DUPLICATE"
    assert republished == []
    assert [e["id"] for e in await services.outbox.sent("updates")] == ["CASE-1:2"]


async def test_a_parked_event_publishes_nothing_until_its_case_exists(services) -> None:
    # Given a subscriber of a case that does not exist yet
    created, task = CaseStory("CASE-1").add("case.created", case_created_data()).add(
        "case.task_created", task_data()).events
    with services.bus.subscribe("CASE-1") as updates:
        # When a task event is parked, then the case is created
        await services.pipeline.ingest([task])
        while_parked = _drain(updates)
        await services.pipeline.ingest([created])

        # Then nothing was published while parked, and the creation publishes the case with the task
        assert while_parked == []
        [published] = _drain(updates)
    assert (published.state["version"], [t["id"] for t in published.state["tasks"]]) == (2, ["T-1"])
