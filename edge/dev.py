"""Development-only routes: what the service sent on `case-commands`, so a person (or a test) can read a panel code
without an SMS gateway. Routed only when APP_ENV=dev; in prod the path does not exist (404)."""
from __future__ import annotations

import orjson
from aiohttp import web

from edge.keys import SERVICES
from settings import Settings
from stores.outbox import COMMANDS


async def dev_commands(request: web.Request) -> web.Response:
    """The CloudEvents sent on `case-commands`, oldest first; `?type=` narrows them to one type."""
    sent = await request.app[SERVICES].outbox.sent(COMMANDS, request.query.get("type"))
    return web.json_response(sent, dumps=_dumps)


def _dumps(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC).decode()


def add_dev_routes(app: web.Application, settings: Settings) -> None:
    if settings.is_dev:
        app.router.add_get("/dev/commands", dev_commands)
