"""Strawberry's HTTP view parses the Content-Type of every request with `email.message.Message` (about 8 µs, a
twentieth of an executed case detail); clients send the same few values, so each distinct value is parsed once.

Installed by edge/view.py for Strawberry's async view (the one aiohttp uses); the answers are Strawberry's own."""
from __future__ import annotations

from functools import lru_cache

from strawberry.http import async_base_view
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
    async_base_view.parse_content_type = parse_content_type  # type: ignore[assignment]
