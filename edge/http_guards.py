"""HTTP hardening in front of the GraphQL view: CSRF, body size, batching, security headers.

`http_guards(settings)` returns aiohttp middlewares; `edge.app.security_middlewares` puts them after the access log
(`edge.app.serving_middlewares`) so refusals are counted.
Every refusal happens before Strawberry reads the request, with a GraphQL-shaped JSON body
`{"errors": [{"message": ..., "extensions": {"code": "BAD_USER_INPUT"}}]}` (edge.refusals, which also picks
`application/graphql-response+json` when the client asks for it).

- CSRF: a browser can send a cross-site POST without a CORS preflight only as text/plain,
  application/x-www-form-urlencoded or multipart/form-data. So POST /graphql must be application/json
  (always preflighted cross-site), or multipart/form-data (file uploads) carrying a non-empty
  `Apollo-Require-Preflight` or `X-Apollo-Operation-Name` header, which forces a preflight; else 415.
  Mutations over GET: Strawberry refuses them itself (400 "mutations are not allowed when using GET"),
  since GET allows only queries; tests/test_http_guards.py keeps that proven.
- Body size: JSON bodies up to `max_json_bytes` (1 MiB), uploads up to `max_upload_bytes` (10 MiB, and
  they must declare Content-Length, as aiohttp's client_max_size does not bound multipart reads); 413.
- Body time: a JSON body must arrive within `settings.request_body_seconds` (60 s), else 408: a client trickling
  bytes would otherwise hold a connection and a task for as long as it likes.
- Batching: a JSON array body is refused (400). Strawberry's batching is off and neither Apollo Router
  nor Hive Gateway needs it; a batch would multiply every per-operation limit (depth, cost) by its length.
- Headers: `X-Content-Type-Options: nosniff` on every response, `Cache-Control: no-store` on /graphql
  (results carry personal data that must not sit in shared or browser caches).

WebSocket Origin is Strawberry's job: GraphQLView(allowed_origins=settings.ws_allowed_origins). It accepts
a handshake without Origin (gateways and other non-browser clients send none and carry no cookies) and a
same-origin one (Host or Sec-Fetch-Site), and refuses any other origin not listed with HTTP 403.
`graphql_view_options(settings)` gives those view arguments.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncio

from aiohttp import web
from aiohttp.typedefs import Middleware

from edge.refusals import refusal
from settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

GRAPHQL_PATH = "/graphql"
MAX_JSON_BYTES = 1024 * 1024
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
PREFLIGHT_HEADERS = ("Apollo-Require-Preflight", "X-Apollo-Operation-Name")


def http_guards(settings: Settings, *, graphql_path: str = GRAPHQL_PATH, max_json_bytes: int = MAX_JSON_BYTES,
                max_upload_bytes: int = MAX_UPLOAD_BYTES) -> list[Middleware]:
    """The middlewares, outermost first: headers also land on the guards' own refusals."""
    body_seconds = settings.request_body_seconds

    @web.middleware
    async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as error:
            _add_security_headers(error, request.path == graphql_path)
            raise
        if not response.prepared:  # streamed and WebSocket responses already sent their headers
            _add_security_headers(response, request.path == graphql_path)
        return response

    @web.middleware
    async def graphql_post_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != graphql_path:
            return await handler(request)
        if request.content_type == "application/json":
            refused = await _json_body_refusal(request, max_json_bytes, body_seconds)
        elif request.content_type == "multipart/form-data" and _preflighted(request):
            refused = _upload_refusal(request, max_upload_bytes)
        else:
            refused = refusal(request, 415, "POST /graphql needs Content-Type application/json (or multipart/form-data "
                                            "with an Apollo-Require-Preflight header)")
        return refused or await handler(request)

    return [security_headers, graphql_post_guard]


def graphql_view_options(settings: Settings) -> dict[str, Any]:
    """GraphQLView arguments that follow the settings: WebSocket origins, and the IDE only with introspection (the
    page is ours, edge.graphiql_page, rendered by edge.view; off, GET /graphql in a browser is a coded 404)."""
    return {"allowed_origins": settings.ws_allowed_origins, "multipart_uploads_enabled": True,
            "graphql_ide": "graphiql" if settings.introspection_enabled else None}


async def _json_body_refusal(request: web.Request, limit: int, seconds: float) -> web.Response | None:
    if request.content_length is not None and request.content_length > limit:
        return _too_large(request, limit)
    try:
        # read() caches the body on the request, so Strawberry does not read the socket again. A body that has
        # arrived whole (most: one packet) is read without the timeout's task and timer.
        body = await (request.read() if request.content.is_eof() else asyncio.wait_for(request.read(), seconds))
    except web.HTTPRequestEntityTooLarge:  # a chunked body over the app's client_max_size
        return _too_large(request, limit)
    except TimeoutError:
        late = refusal(request, 408, f"the request body did not arrive within {seconds:g} s")
        late.force_close()  # the rest of that body may still come: it must not be read as the next request
        return late
    if len(body) > limit:
        return _too_large(request, limit)
    if body.lstrip()[:1] == b"[":
        return refusal(request, 400, "batched operations are not accepted: send one operation per request")
    return None


def _upload_refusal(request: web.Request, limit: int) -> web.Response | None:
    if request.content_length is None:
        return refusal(request, 411, "an upload to /graphql must declare its Content-Length")
    if request.content_length > limit:
        return _too_large(request, limit)
    return None


def _preflighted(request: web.Request) -> bool:
    return any(request.headers.get(name, "").strip() for name in PREFLIGHT_HEADERS)


def _too_large(request: web.Request, limit: int) -> web.Response:
    return refusal(request, 413, f"request body exceeds the limit of {limit} bytes")


def _add_security_headers(response: web.StreamResponse | web.HTTPException, graphql: bool) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
    if graphql:
        response.headers["Cache-Control"] = "no-store"
