"""Domain errors raised by rules and stores; schema/errors.py maps them to GraphQL error codes."""
from __future__ import annotations


class DomainError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
