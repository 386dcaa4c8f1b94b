"""Domain errors raised by rules and stores; schema/errors.py maps them to GraphQL error codes."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """`extensions` are extra facts for the client (a CONFLICT's current holder), added beside `code`."""

    code = "INTERNAL"

    def __init__(self, message: str, *, extensions: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = dict(extensions or {})


class NotFound(DomainError):
    code = "NOT_FOUND"


class BadInput(DomainError):
    code = "BAD_USER_INPUT"


class Conflict(DomainError):
    code = "CONFLICT"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class StoreUnavailable(DomainError):
    """The store cannot be reached; the caller should back off and retry, never drop work."""

    code = "INTERNAL"


class RateLimited(DomainError):
    """Too many attempts from one place or at one thing: try again later."""

    code = "RATE_LIMITED"
