"""Refusals in the GraphQL-over-HTTP shape, and the response media type the client's Accept asks for.

Every refusal of /graphql, whichever layer makes it (the HTTP guards, the view), is a JSON body
`{"errors": [{"message": ..., "extensions": {"code": ...}}]}`, never text/plain. The media type is
`application/graphql-response+json` when the client's Accept prefers it (GraphQL over HTTP, the type that lets a
client trust the status code), else `application/json`, the legacy type every client accepts.
"""
from __future__ import annotations

import orjson
from aiohttp import web

from edge.keys import OUTCOME, Outcome

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def response_media_type(request: web.Request) -> str:
    """`application/graphql-response+json` if Accept names it, at least as high as application/json, else JSON.

    Only an explicit mention counts: `*/*` (what fetch and curl send) keeps the legacy type, as the spec asks.
    """
    accept = request.headers.get("Accept", "")
    preferred = _quality(accept, GRAPHQL_RESPONSE_JSON, exact=True)
    if preferred > 0 and preferred >= _quality(accept, JSON):
        return GRAPHQL_RESPONSE_JSON
    return JSON


def refusal(request: web.Request, status: int, message: str, code: str = "BAD_USER_INPUT",
            headers: dict[str, str] | None = None) -> web.Response:
    """A refusal with one coded error, noted on the request for its access log line."""
    request[OUTCOME] = Outcome(operation=None, codes=(code,))
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return web.Response(status=status, body=orjson.dumps(body), content_type=response_media_type(request),
                        headers=headers)


def _quality(accept: str, media_type: str, *, exact: bool = False) -> float:
    """The q of the most specific range in `accept` matching `media_type` (exact > type/* > */*); 0 if none."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] = (0, 0.0)
    for part in accept.split(","):
        name, *params = (piece.strip() for piece in part.split(";"))
        name = name.lower()
        specificity = 3 if name == media_type else 0 if exact else 2 if name == f"{kind}/*" else 1 if name == "*/*" else 0
        if specificity > best[0]:
            best = (specificity, _q(params))
    return best[1]


def _q(params: list[str]) -> float:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0
