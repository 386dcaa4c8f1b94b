"""Customer Panel session tokens: opaque random strings, checked against their `panel_sessions` record on every use.

Why opaque and not a JWT: a panel token must stop working at logout and after 15 idle minutes, so every use
reads (and moves on) its session record anyway; a signature would add a key to manage and claims to parse while
deciding nothing the record does not. The token is 256 random bits; the store keeps only its SHA-256 (the session
id), so a copy of the database signs nobody in. The `panel_` prefix tells the verifier which check applies
before any JWT parsing.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from auth.principal import Principal, PrincipalKind
from errors import Unauthenticated
from stores.panel_access import PanelSessionStore

PANEL_TOKEN_PREFIX = "panel_"
TOKEN_BYTES = 32


def new_panel_token() -> tuple[str, str]:
    """(token for the participant, session id for the store)."""
    token = PANEL_TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    return token, session_id(token)


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_panel_token(token: str) -> bool:
    return token.startswith(PANEL_TOKEN_PREFIX)


def panel_principal(session: dict[str, Any]) -> Principal:
    """The participant a live session signs in: no roles, one case, one participant, the PANEL channel."""
    case_id, participant_id = session["caseId"], session["participantId"]
    return Principal(
        kind=PrincipalKind.PANEL, subject=f"panel:{case_id}/{participant_id}", username=f"panel:{participant_id}",
        roles=frozenset(), groups=(), channel="PANEL", branch=None, expires_at=session["idleUntil"],
        case_id=case_id, participant_id=participant_id, token_id=session["_id"],
    )


class PanelSessionVerifier:
    def __init__(self, sessions: PanelSessionStore, idle_seconds: float) -> None:
        self._sessions = sessions
        self._idle = timedelta(seconds=idle_seconds)

    async def verify(self, token: str) -> Principal:
        """The session's principal, its idle deadline moved on; UNAUTHENTICATED once logged out or expired."""
        session = await self._sessions.touch(session_id(token), self._idle)
        if session is None:
            raise Unauthenticated("invalid token: the panel session ended; sign in again")
        return panel_principal(session)
