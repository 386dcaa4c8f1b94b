"""GET /panel: the reference Customer Panel page, plain HTML, CSS and JavaScript modules from edge/static/panel/, served by this process.

No build step and no CDN: the files are read once when the app is built and served from memory. The page's
Content-Security-Policy allows scripts, styles and requests to this origin only (no inline script or style, no
frames, no forms posting elsewhere), so injected markup cannot run or send a session token away.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

PANEL_PATH = "/panel"
STATIC = Path(__file__).resolve().parent / "static" / "panel"
# The page and its assets by URL name; anything else under /panel/ is 404 (no directory walking).
PAGE = "index.html"
FILES = {PAGE: "text/html", "panel.css": "text/css", "panel.js": "text/javascript", "api.js": "text/javascript",
         "case-view.js": "text/javascript", "favicon.svg": "image/svg+xml"}
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
    # form-action 'none': before the script runs, Enter in a field would submit the form by GET, putting the
    # PESEL digits into the URL; the browser now refuses that instead.
    "form-action 'none'", "base-uri 'none'", "frame-ancestors 'none'",
])
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidated on every load, so a new release's page and script never mix with an old one.
    "Cache-Control": "no-cache",
}


def _responder(body: bytes, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def respond(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=PAGE_HEADERS)
    return respond


def add_panel_routes(app: web.Application) -> None:
    """Routes GET /panel (the page) and its assets (/panel/panel.css, /panel/panel.js, ...)."""
    files = {name: (STATIC / name).read_bytes() for name in FILES}
    for name, content_type in FILES.items():
        path = PANEL_PATH if name == PAGE else f"{PANEL_PATH}/{name}"
        app.router.add_get(path, _responder(files[name], content_type))
