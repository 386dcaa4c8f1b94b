"""Case reads served again from the per-caller response cache: never stale after a change, never shared
between callers, always audited."""
from __future__ import annotations

from typing import Any

from tests.factories import bearer, created, event

CASE_QUERY = 'query CaseDetail { case(id: "CASE-1") { id status version customer { id name } } }'


def _status(case_id: str, status: str, **kwargs: Any) -> Any:
    return event("case.status_changed", case_id, {"status": status}, **kwargs)


async def test_a_repeated_read_is_answered_from_the_cache_without_reading_cases(services, gql, database) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    first = await gql(CASE_QUERY)
    database.round_trips.reset()

    again = await gql(CASE_QUERY)

    assert again == first
    assert database.round_trips.by_operation == {"audit.insert_one": 1}


async def test_an_applied_change_evicts_the_cached_answer(services, gql) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    await gql(CASE_QUERY)

    await services.pipeline.ingest([_status("CASE-1", "APPROVED")])
    after = await gql(CASE_QUERY)

    assert after["data"]["case"]["status"] == "APPROVED"
    assert after["data"]["case"]["version"] == 2


async def test_a_case_that_did_not_exist_is_not_remembered_as_missing(services, gql) -> None:
    assert (await gql(CASE_QUERY))["data"] == {"case": None}

    await services.pipeline.ingest([created("CASE-1")])

    assert (await gql(CASE_QUERY))["data"]["case"]["id"] == "CASE-1"


async def test_callers_never_share_an_answer(services, gql) -> None:
    await services.pipeline.ingest([created("CASE-1", data={"branch": "KRK-01"})])
    krakow = bearer(roles=("case-reader",), branch="KRK-01", username="krakow.advisor")
    warsaw = bearer(roles=("case-reader",), branch="WAW-01", username="warsaw.advisor")

    seen_by_krakow = await gql(CASE_QUERY, headers=krakow)
    seen_by_warsaw = await gql(CASE_QUERY, headers=warsaw)

    assert seen_by_krakow["data"]["case"]["id"] == "CASE-1"
    assert seen_by_warsaw == {"data": {"case": None}}


async def test_a_cached_answer_is_audited_like_an_executed_one(services, gql) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    await gql(CASE_QUERY)
    await gql(CASE_QUERY)

    page = await services.audit.trail(case_id="CASE-1", first=10)
    reads = [r for r in page.records if r["action"] == "READ"]

    assert [(r["operation"], r["caseIds"], r["customerIds"], r["outcome"]) for r in reads] == [
        ("CaseDetail", ["CASE-1"], ["CUST-1"], "ok"),
        ("CaseDetail", ["CASE-1"], ["CUST-1"], "ok"),
    ]


async def test_a_cached_answer_is_withheld_when_the_audit_cannot_be_written(services, gql, monkeypatch) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    await gql(CASE_QUERY)

    async def audit_down(entry: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("audit store unreachable")

    monkeypatch.setattr(services.audit, "append", audit_down)
    result = await gql(CASE_QUERY)

    assert result["data"] is None
    assert result["errors"][0]["extensions"]["code"] == "INTERNAL"


async def test_lists_are_not_cached(services, gql) -> None:
    await services.pipeline.ingest([created("CASE-1")])
    query = "{ cases(first: 5) { totalCount } }"
    assert (await gql(query))["data"]["cases"]["totalCount"] == 1

    await services.pipeline.ingest([created("CASE-2")])

    assert (await gql(query))["data"]["cases"]["totalCount"] == 2


async def test_a_cached_null_does_not_claim_the_case_was_shown(services, gql) -> None:
    await gql(CASE_QUERY)
    await gql(CASE_QUERY)

    page = await services.audit.trail(actor=None, first=10)

    assert [r["caseIds"] for r in page.records if r["operation"] == "CaseDetail"] == [[], []]
