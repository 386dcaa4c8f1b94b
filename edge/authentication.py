"""Authentication of HTTP requests and WebSocket handshakes to /graphql.

Identity comes from the token only. A request without a token goes on as anonymous (every guarded field then
answers UNAUTHENTICATED); a request with a bad token, however malformed, stops here with 401 and an audit record.
Requests without a valid token are limited per client address and their refusals aggregated in the audit
(edge.refusal_limits): past the limit, 429 RATE_LIMITED.
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
from edge.refusal_limits import RATE_LIMITED, RATE_LIMITED_REASON, RefusalLimits
from errors import Unauthenticated

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_REASON_LENGTH = 500
PRINCIPAL = web.RequestKey("principal", Principal | None)
CHANNEL = web.RequestKey("channel", str | None)
AUDIT_REASON = web.RequestKey("audit_reason", str | None)


def _refusal(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


def client_address(request: web.Request) -> str:
    """The address the request came from, as the server sees it (behind a proxy: the proxy's)."""
    return request.remote or "unknown"


def failed_authentication_entry(request: web.Request, reason: str, operation: str,
                                action: str = "AUTHENTICATION_FAILED") -> dict[str, Any]:
    """The audit record of a refused request: who tried is unknown, where from is not. The X-Channel header is the
    client's own text: the audit store bounds its length like every other value."""
    return {
        "at": datetime.now(timezone.utc), "actor": "anonymous", "action": action,
        "operation": operation, "outcome": "denied", "reason": reason,
        "channel": request.headers.get("X-Channel"), "remote": client_address(request),
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


def signs_in_on_the_socket(request: web.Request) -> bool:
    """A WebSocket handshake without a token: its caller signs in with connection_init, where a refusal counts
    (edge.view). Counting every handshake would cap a gateway's or a NAT's many subscribers at the anonymous limit."""
    return request.headers.get("Upgrade", "").lower() == "websocket"


def authentication(verifier: TokenVerifier, limits: RefusalLimits, graphql_path: str = "/graphql") -> Middleware:
    async def rate_limited(request: web.Request) -> web.Response:
        await limits.record(failed_authentication_entry(request, RATE_LIMITED_REASON, "http", action=RATE_LIMITED))
        return _refusal(429, RATE_LIMITED, f"{RATE_LIMITED_REASON}: at most {limits.per_minute} a minute; sign in or "
                                           "try again later", headers={"Retry-After": "60"})

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != graphql_path:
            return await handler(request)
        await limits.flush_due()
        header = request.headers.get("Authorization")
        principal = None
        if header is not None:
            token = bearer_token(header)
            try:
                if token is None:
                    raise Unauthenticated("the Authorization header must be `Bearer <token>`")
                principal = await verifier.verify(token)
            except Unauthenticated as error:
                if not await limits.admit(client_address(request)):
                    return await rate_limited(request)
                await limits.record(failed_authentication_entry(request, error.message, "http"))
                return _refusal(401, "UNAUTHENTICATED", error.message)
        elif not signs_in_on_the_socket(request) and not await limits.admit(client_address(request)):
            return await rate_limited(request)
        try:
            request[CHANNEL] = call_channel(principal, request.headers.get("X-Channel"))
        except ValueError as error:
            entry = failed_authentication_entry(request, str(error), "http", action="BAD_REQUEST")
            if principal is not None:
                entry.update(actor=principal.subject, actorName=principal.username)
            await limits.record(entry)
            return _refusal(400, "BAD_USER_INPUT", str(error))
        request[PRINCIPAL] = principal
        reason = request.headers.get("X-Audit-Reason")
        request[AUDIT_REASON] = reason[:MAX_REASON_LENGTH] if reason else None
        return await handler(request)

    return authenticate
