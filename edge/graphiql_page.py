"""GET /graphql in a browser: our own GraphiQL page, whose every file comes from this server (no CDN at run time).

The page's libraries are npm packages (package.json, installed by `npm ci` from `make run` and `make test`): they are
read from node_modules/ once when the app is built, hashed (sha384, for the `integrity` attributes) and served from
memory under /graphiql/assets/<package>@<version>/<file>, immutable since the version is in the URL. The page itself
(edge/static/graphiql/) writes nothing typed into the URL and keeps GraphiQL's state (tabs, query, variables,
headers, history) in memory only: a PESEL or a token in the URL or in localStorage would outlive the page. The
example operations of graphql/operations/ open as tabs, their `# Variables:` comment as the tab's variables.

Without node_modules the page says so (503) and everything else works; with introspection off (prod) there is no
page at all (edge.http_guards.graphql_view_options switches Strawberry's IDE off, so GET /graphql is a coded 404).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from aiohttp import web

from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
STATIC = Path(__file__).resolve().parent / "static" / "graphiql"
OPERATIONS = ROOT / "graphql" / "operations"
ASSETS_PATH = "/graphiql/assets"
PAGE_PATH = "/graphiql"


@dataclass(frozen=True)
class Asset:
    """One file of an npm package that the page loads."""

    package: str
    file: str
    content_type: str


# In load order: the UMD builds expect React first, then GraphiQL (which exposes GraphiQL.React for the plugin).
# Strawberry's page also loads js-cookie, to read Django's CSRF cookie; this server sets none (its CSRF defence is
# the content type, edge.http_guards), so the page does without it.
ASSETS = (
    Asset("graphiql", "graphiql.min.css", "text/css"),
    Asset("@graphiql/plugin-explorer", "dist/style.css", "text/css"),
    Asset("react", "umd/react.production.min.js", "text/javascript"),
    Asset("react-dom", "umd/react-dom.production.min.js", "text/javascript"),
    Asset("graphiql", "graphiql.min.js", "text/javascript"),
    Asset("@graphiql/plugin-explorer", "dist/index.umd.js", "text/javascript"),
)
# The page's own files, next to its template (edge/static/graphiql/index.html).
OWN_FILES = {"graphiql-page.css": "text/css", "graphiql-page.js": "text/javascript"}

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self'",
    # GraphiQL's stylesheet carries its fonts and icons as data: URLs.
    "font-src 'self' data:", "img-src 'self' data:",
    # 'self' covers the same origin's ws:// too (CSP 3), for subscriptions.
    "connect-src 'self'",
    "form-action 'none'", "base-uri 'none'", "frame-ancestors 'none'",
])
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY"}
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
# The page's own script and stylesheet keep their URL across releases: revalidated on every load.
REVALIDATED = {"Cache-Control": "no-cache"}
NOT_INSTALLED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GraphiQL is not installed</title></head>
<body><h1>GraphiQL is not installed on this server</h1>
<p>Its files come from npm and were not found: $missing.</p>
<p>Install Node 20 and run <code>make run</code> (or <code>npm ci</code> in the repository), then restart the
server. <code>POST /graphql</code> works as usual meanwhile.</p></body></html>
"""


@dataclass(frozen=True)
class ServedFile:
    url: str
    body: bytes
    content_type: str
    integrity: str


@dataclass(frozen=True)
class GraphiqlPage:
    """The rendered page (or the page saying what is missing) and every file it loads."""

    html: bytes
    status: int
    files: tuple[ServedFile, ...]

    def response(self) -> web.Response:
        return web.Response(body=self.html, status=self.status, content_type="text/html", charset="utf-8",
                            headers=PAGE_HEADERS)


GRAPHIQL = web.AppKey("graphiql", GraphiqlPage)


def sha384(body: bytes) -> str:
    """The Subresource Integrity value of `body`."""
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


# Read once per process: tests build many apps, and the files do not change under a running server.
@functools.cache
def load_page(node_modules: Path, operations: Path = OPERATIONS) -> GraphiqlPage:
    """Read, hash and render everything once; a missing package gives the page that names it."""
    missing = [f"{a.package}/{a.file}" for a in ASSETS if not (node_modules / a.package / a.file).is_file()]
    if missing:
        body = Template(NOT_INSTALLED).substitute(missing=html.escape(", ".join(sorted(set(missing)))))
        return GraphiqlPage(body.encode(), 503, ())
    libraries = tuple(_library_file(node_modules, asset) for asset in ASSETS)
    own = tuple(_served(f"{PAGE_PATH}/{name}", (STATIC / name).read_bytes(), content_type)
                for name, content_type in OWN_FILES.items())
    files = libraries + own
    page = Template((STATIC / "index.html").read_text()).substitute(
        styles="\n".join(_tag(f) for f in files if f.content_type == "text/css"),
        scripts="\n".join(_tag(f) for f in files if f.content_type == "text/javascript"),
        operations=_script_json(example_operations(operations)))
    return GraphiqlPage(page.encode(), 200, files)


def example_operations(directory: Path = OPERATIONS) -> list[dict[str, str]]:
    """One GraphiQL tab per file, by file name: its text as the query, its `# Variables:` comment as variables."""
    documents = {path.name: path.read_text() for path in sorted(directory.glob("*.graphql"))}
    return [{"name": name, "query": text, "variables": documented_variables(text)} for name, text in documents.items()]


def documented_variables(document: str) -> str:
    """The first JSON object of a `# Variables: {...}` comment (continued on indented `#` lines), pretty-printed;
    "" when there is none."""
    lines = document.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("# Variables:"):
            text = line.removeprefix("# Variables:")
            for continued in lines[index + 1:]:
                if not continued.startswith("#  "):
                    break
                text += "\n" + continued[1:]
            try:
                value, _ = json.JSONDecoder().raw_decode(text.strip())
            except json.JSONDecodeError:
                return ""
            return json.dumps(value, indent=2, ensure_ascii=False)
    return ""


def add_graphiql_routes(app: web.Application, settings: Settings) -> None:
    """With introspection on: the page under GRAPHIQL (the /graphql view renders it, edge.view) and a route for
    every file it loads. Off (prod's default): nothing, not even a read of node_modules/."""
    if not settings.introspection_enabled:
        return
    page = app[GRAPHIQL] = load_page(NODE_MODULES)
    for served in page.files:
        headers = IMMUTABLE if served.url.startswith(ASSETS_PATH) else REVALIDATED
        app.router.add_get(served.url, _responder(served, headers))


def _library_file(node_modules: Path, asset: Asset) -> ServedFile:
    package = node_modules / asset.package
    version = json.loads((package / "package.json").read_text())["version"]
    return _served(f"{ASSETS_PATH}/{asset.package}@{version}/{asset.file}", (package / asset.file).read_bytes(),
                   asset.content_type)


def _served(url: str, body: bytes, content_type: str) -> ServedFile:
    return ServedFile(url, body, content_type, sha384(body))


def _tag(served: ServedFile) -> str:
    if served.content_type == "text/css":
        return f'<link rel="stylesheet" href="{served.url}" integrity="{served.integrity}">'
    return f'<script src="{served.url}" integrity="{served.integrity}"></script>'


def _script_json(value: object) -> str:
    # Inside <script type="application/json">: no "</script>" may appear, so every "<" is escaped.
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def _responder(served: ServedFile, headers: dict[str, str]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def respond(request: web.Request) -> web.Response:
        return web.Response(body=served.body, content_type=served.content_type, charset="utf-8", headers=headers)
    return respond
