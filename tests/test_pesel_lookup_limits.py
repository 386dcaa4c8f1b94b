"""Masked means unrecoverable (issue 11, item 1): a role that sees a PESEL masked keeps its last 4 digits, so
`customerByPesel` must not serve as an oracle for testing candidates — one lookup per request, a per-principal
hourly budget shared by every instance, every lookup audited with the caller's reason."""
from __future__ import annotations

from typing import Any

import pytest

from settings import Settings
from tests.factories import bearer, created

LOOKUP = 'query ($p: String!) { customerByPesel(pesel: $p) { id pesel } }'
EWA = bearer(username="ewa.kowalska", roles=("call-center", "case-reader"), channel="CALL_CENTER")
MAREK = bearer(username="marek.lis", roles=("call-center", "case-reader"), channel="CALL_CENTER")
AUDITOR = bearer(username="tomasz.kaminski", roles=("auditor",))
TRAIL = "{ auditTrail(first: 50) { edges { node { actorName operation reason outcome customerIds } } } }"
# Valid PESELs that are nobody's here: candidates an attacker would test.
CANDIDATES = ["44051401458", "02070803628", "90072412344", "85031207819"]


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=False, outbox_relay_seconds=3600.0, pesel_lookups_per_hour=3)


@pytest.fixture
async def anna(services: Any) -> None:
    await services.pipeline.ingest([created("CASE-1")])  # Anna Kowalska, PESEL 85031207819


def code_of(answer: dict[str, Any]) -> str:
    return answer["errors"][0]["extensions"]["code"]


async def test_aliases_do_not_multiply_a_lookup(gql: Any, anna: None) -> None:
    query = "{ " + " ".join(f'c{i}: customerByPesel(pesel: "{p}") {{ id }}' for i, p in enumerate(CANDIDATES)) + " }"

    answer = await gql(query, headers=EWA)

    # One answer at most, and never one that says which candidate matched
    assert answer["data"] in (None, {"c0": None, "c1": None, "c2": None, "c3": None})
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"] * 3
    assert all(e["message"] == "customerByPesel: one lookup per request" for e in answer["errors"])
    assert "CUST-1" not in repr(answer)


async def test_a_principal_s_hourly_budget_ends_in_rate_limited_for_them_alone(gql: Any, anna: None) -> None:
    answers = [await gql(LOOKUP, {"p": pesel}, headers=EWA) for pesel in CANDIDATES]

    # The first three are answered (the match masked, as the call center sees it), the fourth is refused
    assert [a.get("data") for a in answers[:3]] == [{"customerByPesel": None}] * 3
    assert code_of(answers[3]) == "RATE_LIMITED"
    assert answers[3]["errors"][0]["message"] == (
        "customerByPesel: at most 3 lookups an hour; try again later")
    assert "CUST-1" not in repr(answers[3])
    # Another agent still has their own budget
    assert await gql(LOOKUP, {"p": "85031207819"}, headers=MAREK) == {
        "data": {"customerByPesel": {"id": "CUST-1", "pesel": "*******7819"}}}


async def test_every_lookup_is_audited_with_its_reason(client: Any, gql: Any, anna: None) -> None:
    response = await client.post("/graphql", json={"query": LOOKUP, "variables": {"p": "85031207819"}},
                                 headers=EWA | {"X-Audit-Reason": "caller verification, ticket 4711"})
    assert (await response.json())["data"]["customerByPesel"]["id"] == "CUST-1"
    await gql(LOOKUP, {"p": "44051401458"}, headers=EWA)

    trail = [e["node"] for e in (await gql(TRAIL, headers=AUDITOR))["data"]["auditTrail"]["edges"]
             if e["node"]["actorName"] == "ewa.kowalska"]
    assert trail == [
        {"actorName": "ewa.kowalska", "operation": "customerByPesel", "reason": None, "outcome": "ok", "customerIds": []},
        {"actorName": "ewa.kowalska", "operation": "customerByPesel", "reason": "caller verification, ticket 4711",
         "outcome": "ok", "customerIds": ["CUST-1"]}]
