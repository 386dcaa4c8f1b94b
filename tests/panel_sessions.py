"""A Customer Panel session opened straight in the store, for tests of what a panel token may NOT do (the sign-in
itself is tested over HTTP in tests/test_panel_signin.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from auth.panel_tokens import new_panel_token


async def panel_headers(services: Any, case_id: str, participant_id: str) -> dict[str, str]:
    """`Authorization` for a live panel session of `participant_id` in `case_id`."""
    token, session_id = new_panel_token()
    now = datetime.now(timezone.utc)
    await services.panel.sessions.open({
        "_id": session_id, "caseId": case_id, "participantId": participant_id, "createdAt": now, "lastUsedAt": now,
        "idleUntil": now + timedelta(minutes=15), "expiresAt": now + timedelta(hours=1), "revokedAt": None})
    return {"Authorization": f"Bearer {token}"}
