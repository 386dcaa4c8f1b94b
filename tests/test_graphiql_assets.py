"""GraphiQL's files as the server serves them (in process): every one local, with its integrity hash, immutable under a
versioned URL; the example operations embedded with their variables; without npm's packages the page says what to
install while /graphql works; with introspection off neither the page nor its files exist. The page in a browser:
tests/test_graphiql_page.py.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

import edge.graphiql_page
from server import create_app
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
HTML = {"Accept": "text/html"}
# The hashes jsDelivr/unpkg publish for these exact files (and Strawberry's own page pins): npm gave us the same bytes.
PUBLISHED = {
    "/graphiql/assets/react@18.2.0/umd/react.production.min.js":
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
    "/graphiql/assets/react-dom@18.2.0/umd/react-dom.production.min.js":
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    "/graphiql/assets/graphiql@3.8.3/graphiql.min.js":
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    "/graphiql/assets/graphiql@3.8.3/graphiql.min.css":
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    "/graphiql/assets/@graphiql/plugin-explorer@3.2.5/dist/index.umd.js":
        "sha384-5p6hGdlOTvUy6Wf0GauxCz+xM9YB/YYvcGG+bf9msr2eyd+KVIxgRkepHgUijedJ",
    "/graphiql/assets/@graphiql/plugin-explorer@3.2.5/dist/style.css":
        "sha384-YN9MumWidbWKuNj8VfH5ggrFvm9YqAoIOMnKYpeGL3dr7Eg1qnQ+SAqSthdNZCjz",
}


@pytest.fixture
def settings() -> Settings:
    return Settings(demo_data=False, outbox_relay_seconds=3600.0)


def page_files(page: str) -> dict[str, str]:
    """Every file the page loads, by URL, with its integrity attribute."""
    return {url: integrity for url, integrity in
            re.findall(r'(?:src|href)="([^"]+)" integrity="([^"]+)"', page)}


def sha384(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


async def test_every_file_of_the_page_is_local_hashed_and_immutable(client: TestClient) -> None:
    page = await (await client.get("/graphql", headers=HTML)).text()
    files = page_files(page)

    assert sorted(files) == sorted([*PUBLISHED, "/graphiql/graphiql-page.css", "/graphiql/graphiql-page.js"])
    assert "https://" not in page and "http://" not in page
    for url, integrity in files.items():
        response = await client.get(url)
        assert (response.status, sha384(await response.read())) == (200, integrity)
        assert response.headers["Cache-Control"] == (
            "public, max-age=31536000, immutable" if url.startswith("/graphiql/assets/") else "no-cache")
    assert {url: files[url] for url in PUBLISHED} == PUBLISHED


async def test_the_example_operations_are_embedded_with_their_variables(client: TestClient) -> None:
    page = await (await client.get("/graphql", headers=HTML)).text()
    embedded = json.loads(re.search(r'<script type="application/json" id="operations">(.*?)</script>', page,
                                    re.S).group(1))

    assert [operation["name"] for operation in embedded] == sorted(
        path.name for path in (ROOT / "graphql" / "operations").glob("*.graphql"))
    by_name = {operation["name"]: operation for operation in embedded}
    assert json.loads(by_name["my_tasks.graphql"]["variables"]) == {
        "filter": {"state": ["CREATED", "ASSIGNED"], "overdue": False},
        "orderBy": {"field": "DUE_AT", "direction": "ASC"}, "first": 20}
    assert by_name["my_tasks.graphql"]["query"] == (ROOT / "graphql" / "operations" / "my_tasks.graphql").read_text()


async def test_without_the_npm_packages_the_page_says_what_to_install(database: Any, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge.graphiql_page, "NODE_MODULES", tmp_path)
    app = create_app(Settings(demo_data=False, outbox_relay_seconds=3600.0), database)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/graphql", headers=HTML)
        page = await response.text()
        answered = await client.post("/graphql", json={"query": "{ __typename }"})

        assert (response.status, response.content_type) == (503, "text/html")
        assert "<h1>GraphiQL is not installed on this server</h1>" in page
        assert ("Its files come from npm and were not found: @graphiql/plugin-explorer/dist/index.umd.js, "
                "@graphiql/plugin-explorer/dist/style.css, graphiql/graphiql.min.css, graphiql/graphiql.min.js, "
                "react-dom/umd/react-dom.production.min.js, react/umd/react.production.min.js.") in page
        assert "make run" in page
        assert (answered.status, orjson.loads(await answered.read())) == (200, {"data": {"__typename": "Query"}})


async def test_with_introspection_off_there_is_neither_page_nor_files(database: Any) -> None:
    app = create_app(Settings(demo_data=False, outbox_relay_seconds=3600.0, graphql_introspection=False), database)
    async with TestClient(TestServer(app)) as client:
        page = await client.get("/graphql", headers=HTML)
        library = await client.get("/graphiql/assets/graphiql@3.8.3/graphiql.min.js")
        script = await client.get("/graphiql/graphiql-page.js")

        assert [page.status, library.status, script.status] == [404, 404, 404]
