"""`case(id, asOf:)`: the case as it stood at a moment, rebuilt from its journaled events (CONTRACT §3).

It must answer exactly what a live read answered at that moment, under the same row scope, field policy and audit.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.factories import BASE_TIME, bearer, full_story

CASE_AT = """query ($id: ID!, $asOf: DateTime) { case(id: $id, asOf: $asOf) {
  id title status stage outcome closedAt version updatedAt hasOpenIncident
  customer { id name segment pesel }
  participants { id role name pesel }
  documents { id status } tasks { id state assignee } incidents { id state } offers { id status amount }
  consents { id state }
  history(first: 50) { totalCount edges { node { id kind summary at } } }
} }"""


async def _read(gql: Any, as_of: str | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return await gql(CASE_AT, {"id": "CASE-1", "asOf": as_of}, headers=headers)


async def test_the_case_as_of_each_moment_equals_what_a_live_read_showed_then(services, gql) -> None:
    # Given a case's whole story applied one event at a time, with a live read captured after each event
    story = full_story("CASE-1")
    live: list[tuple[str, dict[str, Any]]] = []
    for raw, event in zip(story.envelopes, story.events, strict=True):
        await services.pipeline.ingest([event])
        live.append((raw["time"], await _read(gql)))

    # When the case is read as of each of those moments
    # Then every answer is the live answer of that moment, field for field
    for moment, answer in live:
        assert await _read(gql, moment) == answer, moment
    assert live[-1][1]["data"]["case"]["version"] == 18
    assert live[4][1]["data"]["case"]["version"] == 5


async def test_between_two_events_the_case_is_as_the_earlier_one_left_it(services, gql) -> None:
    # Given a case whose status changed to IN_PROGRESS at the 8th event (80 minutes after the base time)
    story = full_story("CASE-1")
    await services.pipeline.ingest(story.events)

    # When it is read a minute before and a minute after that change
    before = await _read(gql, (BASE_TIME + timedelta(minutes=79)).isoformat())
    after = await _read(gql, (BASE_TIME + timedelta(minutes=81)).isoformat())

    # Then the first shows it as it was, the second with the change
    assert {k: before["data"]["case"][k] for k in ("status", "stage", "version")} == {
        "status": "NEW", "stage": "APPLICATION", "version": 7}
    assert {k: after["data"]["case"][k] for k in ("status", "stage", "version")} == {
        "status": "IN_PROGRESS", "stage": "ANALYSIS", "version": 8}


async def test_before_the_case_existed_it_is_null(services, gql) -> None:
    await services.pipeline.ingest(full_story("CASE-1").events)

    assert await _read(gql, (BASE_TIME - timedelta(days=1)).isoformat()) == {"data": {"case": None}}


async def test_the_same_row_scope_and_field_policy_apply_as_to_a_live_read(services, gql) -> None:
    # Given a case of branch KRK-01
    story = full_story("CASE-1")
    await services.pipeline.ingest(story.events)
    moment = story.envelopes[5]["time"]
    other_branch = bearer(roles=("advisor", "case-reader"), branch="WAW-01", channel="BRANCH", username="adam.waw")
    call_center = bearer(roles=("call-center", "case-reader"), channel="CALL_CENTER", username="ewa.cc")

    # When an advisor of another branch, and a call-center agent, read it as of a past moment
    hidden = await _read(gql, moment, other_branch)
    masked = await _read(gql, moment, call_center)

    # Then the other branch sees nothing, and the agent sees the PESELs masked, exactly as live
    assert hidden == {"data": {"case": None}}
    assert masked["data"]["case"]["customer"]["pesel"] == "*******7819"
    assert [p["pesel"] for p in masked["data"]["case"]["participants"]] == ["*******7819", "*******2344"]


async def test_a_read_as_of_a_moment_is_audited_like_a_live_read(services, gql, database) -> None:
    await services.pipeline.ingest(full_story("CASE-1").events)
    reader = bearer(roles=("case-reader", "pii-reader"), channel="BACK_OFFICE", username="olga.audit")

    await gql('query PastCase { case(id: "CASE-1", asOf: "2026-11-21T11:00:00Z") { id customer { pesel } } }',
              headers=reader)

    [record] = await database.collection("audit").find({"operation": "PastCase"}).to_list(None)
    assert {k: record[k] for k in ("action", "actorName", "caseIds", "customerIds", "fields", "outcome")} == {
        "action": "READ", "actorName": "olga.audit", "caseIds": ["CASE-1"], "customerIds": ["CUST-1"],
        "fields": ["Customer.pesel:full"], "outcome": "ok"}
