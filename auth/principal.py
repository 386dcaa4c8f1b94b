"""Who is calling: the principal built from a verified token's claims.

Rules (CONTRACT §4), decided here once so every layer reads the same answer:

* PANEL: a Customer Panel session (auth/panel_tokens.py, issued by ``panelLogin``), never a JWT: a JWT that
  claims ``token_use == "panel"`` is refused, since only a live session record may sign a participant in.
  A panel principal has no roles: what it may see is decided by its case and participant.
* CUSTOMER: an online / mobile banking customer: realm role ``customer`` and a ``customer_id`` claim. Its
  roles are only ``customer``, whatever else the token lists: a customer reaches no employee operation (and
  without ``customer_id`` none of their own either).
* SYSTEM: a client-credentials token. Keycloak marks those with a ``client_id`` claim (newer
  versions; ``clientId`` in older ones) and a ``preferred_username`` of ``service-account-<client>``.
  Either mark is enough. ``azp`` alone is NOT: every user token has it too. The username of a system
  principal is its client id.
* EMPLOYEE: every other token.

Roles = ``realm_access.roles`` + ``resource_access.<client>.roles`` for the configured client
(AUTH_AUDIENCE). Roles of other clients (e.g. Keycloak's ``account``) are ignored: they are granted
for other applications. A claim of the wrong shape fails the token rather than being guessed at.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from access.policy import CHANNELS
from errors import Unauthenticated

SERVICE_ACCOUNT_PREFIX = "service-account-"
PANEL_TOKEN_USE = "panel"
CUSTOMER_ROLE = "customer"


class PrincipalKind(StrEnum):
    EMPLOYEE = "EMPLOYEE"
    SYSTEM = "SYSTEM"
    PANEL = "PANEL"
    CUSTOMER = "CUSTOMER"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    subject: str
    username: str
    roles: frozenset[str]
    groups: tuple[str, ...]
    channel: str | None
    branch: str | None
    expires_at: datetime
    case_id: str | None = None
    participant_id: str | None = None
    token_id: str | None = None
    customer_id: str | None = None

    def has_role(self, role: str) -> bool:
        """True when the token granted this realm or client role."""
        return role in self.roles

    def is_expired(self, now: datetime | None = None) -> bool:
        """True once `expires_at` has passed (subscriptions end then)."""
        return (now or datetime.now(timezone.utc)) >= self.expires_at


def _invalid(claim: str) -> Unauthenticated:
    return Unauthenticated(f"invalid token: claim {claim}")


def _optional_text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _invalid(name)
    return value


def _required_text(claims: Mapping[str, Any], name: str) -> str:
    value = _optional_text(claims, name)
    if value is None:
        raise Unauthenticated(f"invalid token: missing claim {name}")
    return value


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(name)
    return tuple(value)


def _roles_of(container: Any, name: str) -> tuple[str, ...]:
    if container is None:
        return ()
    if not isinstance(container, Mapping):
        raise _invalid(name)
    return _strings(container.get("roles"), name)


def token_roles(claims: Mapping[str, Any], client_id: str | None) -> frozenset[str]:
    """Realm roles plus the roles granted for `client_id` (the configured audience)."""
    roles = set(_roles_of(claims.get("realm_access"), "realm_access"))
    if client_id is not None:
        resource_access = claims.get("resource_access")
        if resource_access is not None and not isinstance(resource_access, Mapping):
            raise _invalid("resource_access")
        roles.update(_roles_of((resource_access or {}).get(client_id), "resource_access"))
    return frozenset(roles)


def _client_id(claims: Mapping[str, Any]) -> str | None:
    explicit = _optional_text(claims, "client_id") or _optional_text(claims, "clientId")
    if explicit is not None:
        return explicit
    username = _optional_text(claims, "preferred_username") or ""
    if username.startswith(SERVICE_ACCOUNT_PREFIX):
        return _optional_text(claims, "azp") or username.removeprefix(SERVICE_ACCOUNT_PREFIX)
    return None


def principal_from_claims(claims: Mapping[str, Any], client_id: str | None) -> Principal:
    """Build the principal from claims whose signature and registered claims were already checked."""
    subject = _required_text(claims, "sub")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise _invalid("exp")
    channel = _optional_text(claims, "channel")
    if channel is not None and channel not in CHANNELS:
        # Fail closed: a channel we do not know could bypass channel-specific masking.
        raise _invalid("channel")
    common = {
        "subject": subject,
        "groups": _strings(claims.get("groups"), "groups"),
        "channel": channel,
        "branch": _optional_text(claims, "branch"),
        "expires_at": datetime.fromtimestamp(exp, timezone.utc),
        "token_id": _optional_text(claims, "jti"),
    }
    if claims.get("token_use") == PANEL_TOKEN_USE:
        raise Unauthenticated("invalid token: panel sessions are opened by panelLogin only")
    roles = token_roles(claims, client_id)
    if CUSTOMER_ROLE in roles:
        return Principal(kind=PrincipalKind.CUSTOMER, username=_optional_text(claims, "preferred_username") or subject,
                         roles=frozenset({CUSTOMER_ROLE}), customer_id=_optional_text(claims, "customer_id"),
                         **common)
    system_client = _client_id(claims)
    if system_client is not None:
        return Principal(kind=PrincipalKind.SYSTEM, username=system_client, roles=roles, **common)
    return Principal(kind=PrincipalKind.EMPLOYEE, username=_optional_text(claims, "preferred_username") or subject,
                     roles=roles, **common)
