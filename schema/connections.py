"""Relay connection types shared by every list."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry

from resolvers.pagination import Page

Node = TypeVar("Node")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[Node]):
    cursor: str
    node: Node


@strawberry.type
class Connection(Generic[Node]):
    edges: list[Edge[Node]]
    page_info: PageInfo
    total_count: int | None


def connection_from_page(page: Page[Any], wrap: Callable[[Any], Any]) -> Connection[Any]:
    edges = [Edge(cursor=c, node=wrap(item)) for item, c in zip(page.items, page.cursors)]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.cursors[-1] if page.cursors else None),
        total_count=page.total,
    )
