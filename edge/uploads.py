"""Uploads through POST /graphql (GraphQL multipart request spec) get their own body limit.

aiohttp bounds every multipart part by the app's `client_max_size` (1 MiB, the JSON limit). An upload that the
HTTP guards in front let through (multipart with a preflight header and a declared Content-Length within the
upload limit, edge/http_guards.py) is read with the upload limit instead, on that route only: JSON bodies and
every other route keep 1 MiB. The file itself is checked against PANEL_UPLOAD_MAX_BYTES by the mutation, with a
GraphQL error (resolvers/panel_uploads.py); the content stays in memory, never on local disk.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from edge.http_guards import GRAPHQL_PATH

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def upload_body_limit(limit: int, *, graphql_path: str = GRAPHQL_PATH) -> Middleware:
    @web.middleware
    async def read_uploads_up_to_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and request.path == graphql_path and request.content_type == "multipart/form-data":
            request = request.clone(client_max_size=limit)
        return await handler(request)

    return read_uploads_up_to_limit
