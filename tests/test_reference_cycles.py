"""What a request leaves for the garbage collector: nothing. A read, an ingest through publishCaseEvent and the
pushes it causes are freed by reference counting as they end, so no young collection has their state to walk
(issue 14: each one it had to find was an 8-17 ms stop of every push of a fan-out)."""
from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from graphql import parse

from schema.build import CaseRepositoryExecutor, FreshPerEventExecutor, build_schema
from tests.factories import PUBLISH_CASE_EVENT, bearer, case_created_data, envelope, publish_input
from tests.live import next_frame, signed_in_socket, subscribe

OPERATIONS = Path(__file__).parents[1] / "graphql" / "operations"
CASE_DETAIL = (OPERATIONS / "case_detail.graphql").read_text()
CASE_UPDATED = "subscription ($id: ID!) { caseUpdated(id: $id) { id title status } }"


@contextmanager
def garbage_found() -> Iterator[Counter[str]]:
    """Counts, by type, what the collector finds unreachable (in a reference cycle, or held only by one) among the
    objects made inside the block."""
    found: Counter[str] = Counter()
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.update(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()


async def test_reads_ingests_and_pushes_leave_no_reference_cycles(client: TestClient) -> None:
    async def publish(raw: dict[str, Any]) -> None:
        response = await client.post("/graphql", json={"query": PUBLISH_CASE_EVENT,
                                                       "variables": {"event": publish_input(raw)}}, headers=bearer())
        assert (await response.json())["data"]["publishCaseEvent"]["status"] == "APPLIED"

    async def read() -> None:
        response = await client.post("/graphql", json={"query": CASE_DETAIL, "variables": {"id": "CASE-1"}},
                                     headers=bearer())
        body = await response.json()
        assert "errors" not in body and body["data"]["case"]["title"].startswith("title "), body

    async def change_and_read(number: int) -> None:
        await publish(envelope("case.updated", "CASE-1", {"title": f"title {number}"}, event_id=f"e-{number}",
                               sequence=number + 1))
        assert (await next_frame(ws))["payload"]["data"]["caseUpdated"]["title"] == f"title {number}"
        await read()

    await publish(envelope("case.created", "CASE-1", case_created_data(title="title 0"), event_id="e-0", sequence=1))
    async with signed_in_socket(client, bearer()) as ws:
        await subscribe(ws, "live", CASE_UPDATED, {"id": "CASE-1"})
        for number in range(1, 5):  # these warm the caches (parsed documents, plans, loaders' classes)
            await change_and_read(number)
        await asyncio.sleep(0.05)
        with garbage_found() as found:
            for number in range(5, 9):
                await change_and_read(number)
            await asyncio.sleep(0.05)

    assert dict(found) == {}


def test_the_executor_hands_out_its_helpers_without_keeping_them() -> None:
    schema = build_schema()
    executor = CaseRepositoryExecutor.build(schema._schema, parse("{ __typename }"))
    assert gc.get_referrers(executor) == []  # nothing the executor holds points back to it

    helpers = executor.async_helpers

    assert (helpers.gather.__self__, helpers.track.__self__) == (executor, executor)
    event_executor = executor.build_per_event_executor({})
    assert event_executor.async_helpers.track.__self__ is event_executor


def test_helpers_set_from_outside_are_kept() -> None:
    executor = FreshPerEventExecutor.build(build_schema()._schema, parse("{ __typename }"))
    other = FreshPerEventExecutor.build(build_schema()._schema, parse("{ __typename }"))

    executor.async_helpers = other.async_helpers

    assert executor.async_helpers.track.__self__ is other
