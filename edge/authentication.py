"""Authentication of HTTP requests and WebSocket handshakes to /graphql.

Identity comes from the token only. A request without a token goes on as anonymous (every guarded field then
answers UNAUTHENTICATED); a request with a bad token stops here with 401 and an audit record.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from access.policy import CHANNELS
from auth.principal import Principal
from auth.tokens import TokenVerifier, bearer_token
from errors import Unauthenticated

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_REASON_LENGTH = 500
PRINCIPAL = web.RequestKey("principal", Principal | None)
CHANNEL = web.RequestKey("channel", str | None)
AUDIT_REASON = web.RequestKey("audit_reason", str | None)


def _refusal(status: int, code: str, message: str) -> web.Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def failed_authentication_entry(request: web.Request, reason: str, operation: str) -> dict[str, Any]:
    """The audit record of a refused token: who tried is unknown, where from is not."""
    return {
        "at": datetime.now(timezone.utc), "actor": "anonymous", "action": "AUTHENTICATION_FAILED",
        "operation": operation, "outcome": "denied", "reason": reason,
        "channel": request.headers.get("X-Channel"), "remote": request.remote,
    }


def call_channel(principal: Principal | None, header: str | None) -> str | None:
    """The token's `channel` claim; the X-Channel header only where the token carries none."""
    if principal is not None and principal.channel:
        return principal.channel
    if header is None:
        return None
    channel = header.strip().upper()
    if channel not in CHANNELS:
        raise ValueError(f"X-Channel must be one of {', '.join(CHANNELS)}")
    return channel


def authentication(verifier: TokenVerifier, audit: Any, graphql_path: str = "/graphql") -> Middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != graphql_path:
            return await handler(request)
        header = request.headers.get("Authorization")
        principal = None
        if header is not None:
            token = bearer_token(header)
            try:
                if token is None:
                    raise Unauthenticated("the Authorization header must be `Bearer <token>`")
                principal = await verifier.verify(token)
            except Unauthenticated as error:
                await audit.append(failed_authentication_entry(request, error.message, "http"))
                return _refusal(401, "UNAUTHENTICATED", error.message)
        try:
            request[CHANNEL] = call_channel(principal, request.headers.get("X-Channel"))
        except ValueError as error:
            return _refusal(400, "BAD_USER_INPUT", str(error))
        request[PRINCIPAL] = principal
        reason = request.headers.get("X-Audit-Reason")
        request[AUDIT_REASON] = reason[:MAX_REASON_LENGTH] if reason else None
        return await handler(request)

    return authenticate
