"""Strawberry's HTTP view parses the Content-Type and Accept headers of every request with `email.message.Message`
(tens of µs, a tenth of a response-cache hit); clients send the same few values, so each is parsed once.

Installed by edge/view.py for Strawberry's async view (the one aiohttp uses) and its streaming transports (which
parse the Accept header); the answers are Strawberry's own."""
from __future__ import annotations

from functools import lru_cache

from strawberry.http import async_base_view, streaming
from strawberry.http.parse_content_type import parse_content_type as _parse_uncached

# Distinct values seen: a header is at most 8 KiB (aiohttp's limit), and a client choosing a new one per request
# costs only the parse it would have cost anyway.
_DISTINCT_VALUES = 256


@lru_cache(maxsize=_DISTINCT_VALUES)
def _parsed(value: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    mime_type, params = _parse_uncached(value)
    return mime_type, tuple(params.items())


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Strawberry's `parse_content_type`, remembered per value (a fresh dict each call: a caller may change it)."""
    mime_type, params = _parsed(value)
    return mime_type, dict(params)


def install() -> None:
    # Both places the async view parses a header: the request's Content-Type, and the Accept header each of its
    # streaming transports looks at.
    async_base_view.parse_content_type = parse_content_type  # type: ignore[assignment]
    streaming.parse_content_type = parse_content_type  # type: ignore[assignment]
