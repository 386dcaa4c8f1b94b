"""Codes in filters (case types, channels) in the form the store keeps them, so `leasing` finds LEASING cases."""
from __future__ import annotations

from consumers.event_types import canonical_code
from errors import BadInput


def canonical_codes(values: list[str] | None, field: str) -> list[str] | None:
    """The values as stored codes; a value that is no code is BAD_USER_INPUT naming the filter field."""
    if values is None:
        return None
    try:
        return [canonical_code(value) for value in values]
    except ValueError as error:
        raise BadInput(f"{field}: {error}") from None
