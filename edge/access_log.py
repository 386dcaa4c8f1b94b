"""The request id and the access log: one JSON line per request, its HTTP metrics and the GraphQL operation metrics.

`X-Request-Id`: a client's (or gateway's) value is kept when it is 1 to 128 printable ASCII characters without
spaces, else the server draws one; either way it is sent back on the response, stamped on every log line logged
while the request is served (`logs.REQUEST_ID`) and on every audit record the request writes.

The line holds what an operator needs to follow a request and nothing a client sent as data: requestId, method,
path (never the query string), status, durationMs, operation (the bounded label of edge.operations), sub (the
principal's subject), channel, errorCodes. Never variables, tokens, the document or a PESEL.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from edge.authentication import CHANNEL, PRINCIPAL
from edge.keys import OUTCOME, REQUEST_ID
from edge.operations import count_operation
from edge.ops import count_request
from logs import REQUEST_ID as CURRENT_REQUEST_ID

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
# A path is client-chosen too (a 404 for /85031207819): no run of PESEL length reaches the log.
_LONG_NUMBER = re.compile(r"\d{11,}")
MAX_PATH_LENGTH = 200
# Refusals made outside the edge's own helpers (edge/authentication.py) are read back for their codes.
MAX_REFUSAL_BYTES = 4096

log = logging.getLogger("case_repository.access")


def request_id_from(header: str | None) -> str:
    """The client's id if it is sane, else a fresh one (32 hex digits)."""
    if header is not None and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_from(request.headers.get(HEADER))
    request[REQUEST_ID] = request_id
    token = CURRENT_REQUEST_ID.set(request_id)
    started = time.perf_counter()
    status, response = 500, None
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        seconds = time.perf_counter() - started
        count_request(request, status, seconds)
        outcome = request.get(OUTCOME)
        if outcome is not None and outcome.operation is not None:
            count_operation(outcome.operation, outcome.codes, seconds)
        if log.isEnabledFor(logging.INFO):
            _log_line(request, request_id, status, seconds, response)
        CURRENT_REQUEST_ID.reset(token)


def _log_line(request: web.Request, request_id: str, status: int, seconds: float,
              response: web.StreamResponse | None) -> None:
    outcome = request.get(OUTCOME)
    codes = outcome.codes if outcome is not None else _refusal_codes(response)
    principal = request.get(PRINCIPAL)
    log.info("request", extra={
        "requestId": request_id, "method": request.method,
        "path": _LONG_NUMBER.sub("#", request.path)[:MAX_PATH_LENGTH], "status": status,
        "durationMs": round(seconds * 1000, 3),
        "operation": outcome.operation if outcome is not None else None,
        "sub": principal.subject if principal is not None else None, "channel": request.get(CHANNEL),
        "errorCodes": list(codes),
    })


async def send_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response carries the id, WebSocket handshakes and raised HTTP errors too."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers[HEADER] = request_id


def _refusal_codes(response: web.StreamResponse | None) -> tuple[str, ...]:
    if not isinstance(response, web.Response) or response.status < 400 or not response.content_type.endswith("json"):
        return ()
    body = response.body
    if not isinstance(body, bytes) or len(body) > MAX_REFUSAL_BYTES:
        return ()
    try:
        errors: Any = orjson.loads(body).get("errors")
        return tuple(str(e["extensions"]["code"]) for e in errors)
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        return ()
