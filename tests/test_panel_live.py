"""The panel's live view: `panelCaseUpdated` pushes what `panelCase` shows, for the session's own case only, and
ends with the session (issue 9). `caseUpdated` (the employee `Case`) is refused to a panel token."""
from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from settings import Settings
from tests.factories import status_changed
from tests.live import BusWatch, next_frame, signed_in_socket, subscribe
from tests.panel_flow import ANNA_DIGITS, MORTGAGE, post, signed_in

LIVE = "subscription { panelCaseUpdated { caseId statusText stageText actions { id } consents { id } } }"


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=True, outbox_relay_seconds=3600.0, panel_answer_floor_seconds=0.0)


async def test_a_participant_follows_their_case_live_until_they_sign_out(
    client: TestClient, services: Any, bus_watch: BusWatch,
) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    async with signed_in_socket(client, anna) as ws:
        await subscribe(ws, "s1", LIVE, {})
        await bus_watch.until_active(1)

        await services.pipeline.ingest([status_changed(MORTGAGE, "DECISION", "DECISION", sequence=1000)])
        pushed = await next_frame(ws)
        assert await post(client, "mutation { panelLogout }", headers=anna) == {"data": {"panelLogout": True}}
        await services.pipeline.ingest([status_changed(MORTGAGE, "IN_PROGRESS", "ANALYSIS", sequence=1001)])
        ended = await next_frame(ws)

    assert pushed == {"id": "s1", "type": "next", "payload": {"data": {"panelCaseUpdated": {
        "caseId": MORTGAGE, "statusText": "Decision being made", "stageText": "Credit decision",
        "actions": [{"id": "T-123-5"}], "consents": [{"id": "C-2"}]}}}}
    assert ended["id"] == "s1" and ended["type"] in ("next", "error")
    errors = ended["payload"]["errors"] if ended["type"] == "next" else ended["payload"]
    assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(("query", "message"), [
    (f'subscription {{ caseUpdated(id: "{MORTGAGE}") {{ id participants {{ pesel }} }} }}',
     "caseUpdated is not available to a Customer Panel session"),
    ('subscription { panelCaseUpdated(id: "CASE-2026-000124") { caseId } }',
     "a panel session follows its own case only"),
])
async def test_a_panel_token_subscribes_to_nothing_but_its_own_panel_case(
    client: TestClient, bus_watch: BusWatch, query: str, message: str,
) -> None:
    anna = await signed_in(client, "P-1", ANNA_DIGITS)
    async with signed_in_socket(client, anna) as ws:
        await subscribe(ws, "s1", query, {})
        frame = await next_frame(ws)

    errors = frame["payload"]["errors"] if frame["type"] == "next" else frame["payload"]
    assert [(e["message"], e["extensions"]["code"]) for e in errors] == [(message, "FORBIDDEN")]
    assert "data" not in frame["payload"] or frame["payload"].get("data") is None
    assert bus_watch.active == 0
