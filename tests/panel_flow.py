"""The Customer Panel as a participant uses it, over HTTP: ask for a code, read it from the dev outbox, sign in."""
from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

MORTGAGE = "CASE-2026-000123"
ANNA_DIGITS, PIOTR_DIGITS = "7819", "2344"  # the last 4 digits of P-1's and P-2's PESEL in the demo mortgage
REQUEST_CODE = "mutation ($c: ID!, $f: String!) { panelRequestCode(caseId: $c, peselFragment: $f) }"
LOGIN = """mutation ($c: ID!, $f: String!, $o: String!) {
  panelLogin(caseId: $c, peselFragment: $f, otp: $o) { token expiresAt participant { id role name } } }"""


async def post(client: TestClient, query: str, variables: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                                 headers=headers or {})
    return await response.json()


async def sent_codes(client: TestClient) -> list[dict[str, Any]]:
    """The `panel-otp` notifications sent so far, oldest first (GET /dev/commands)."""
    response = await client.get("/dev/commands", params={"type": "notification.requested"})
    return [event["data"] for event in await response.json() if event["data"]["template"] == "panel-otp"]


async def last_code(client: TestClient, participant_id: str) -> str:
    return [d for d in await sent_codes(client) if d["params"]["participantId"] == participant_id][-1]["params"]["otp"]


async def request_code(client: TestClient, case_id: str, digits: str) -> dict[str, Any]:
    return await post(client, REQUEST_CODE, {"c": case_id, "f": digits})


async def login(client: TestClient, case_id: str, digits: str, otp: str) -> dict[str, Any]:
    return await post(client, LOGIN, {"c": case_id, "f": digits, "o": otp})


async def signed_in(client: TestClient, participant_id: str, digits: str,
                    case_id: str = MORTGAGE) -> dict[str, str]:
    """`Authorization` for `participant_id` after the whole sign-in."""
    assert await request_code(client, case_id, digits) == {"data": {"panelRequestCode": True}}
    answer = await login(client, case_id, digits, await last_code(client, participant_id))
    assert "errors" not in answer, answer
    return {"Authorization": f"Bearer {answer['data']['panelLogin']['token']}"}
