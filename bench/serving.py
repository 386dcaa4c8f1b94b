"""Serve an aiohttp app on 127.0.0.1 on a free port, the way `web.run_app` would; start a bench server in a child
process of its own."""
from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Start `app` (running its cleanup_ctx) and yield its base URL; stop it on exit."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def start_child(module: str, *arguments: str, name: str) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """`python -m module arguments` with pipes to its stdin and stdout, and the JSON line it writes once it serves;
    `name` says in the error which server exited before that."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", module, *arguments,
                                                   stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        await process.wait()
        raise RuntimeError(f"the {name} exited with code {process.returncode} before serving")
    return process, orjson.loads(line)
