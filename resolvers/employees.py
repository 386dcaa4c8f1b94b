"""The one check that an act on the dashboard comes from an employee: identity from the token, never from arguments."""
from __future__ import annotations

from auth.principal import Principal, PrincipalKind
from context import Context
from errors import Forbidden, Unauthenticated


def employee(context: Context, act: str) -> Principal:
    """The calling employee; UNAUTHENTICATED without a token, FORBIDDEN for systems and panel participants.
    `act` completes "sign in to …" and "only employees …", e.g. "write notes"."""
    principal = context.principal
    if principal is None:
        raise Unauthenticated(f"sign in to {act}")
    if principal.kind is not PrincipalKind.EMPLOYEE:
        raise Forbidden(f"only employees {act}")
    return principal
