"""Development tokens for the demo personas, signed HS256 with AUTH_DEV_SECRET (APP_ENV=dev only).

    python -m auth.dev_tokens                # every persona: a comment line, then the JSON for GraphiQL's Headers tab
    python -m auth.dev_tokens advisor        # just that persona's header line, for curl -H

The claims mirror what Keycloak puts in its access tokens, so the server sees the same shapes in
development as in production.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from auth.principal import SERVICE_ACCOUNT_PREFIX
from auth.tokens import DEV_ALGORITHM
from settings import Settings

DEV_ISSUER = "case-repository-dev"
DEV_AUDIENCE = "case-repository"
DEFAULT_TTL = timedelta(hours=8)  # a working day of demos without re-minting


@dataclass(frozen=True)
class Persona:
    name: str
    description: str
    username: str
    roles: tuple[str, ...]
    groups: tuple[str, ...] = ()
    channel: str | None = None
    branch: str | None = None
    system: bool = False  # a client-credentials (service account) token
    customer_id: str | None = None  # an online / mobile banking customer (realm role `customer`)


# The persona table is data: add a row to add a persona.
PERSONAS: tuple[Persona, ...] = (
    Persona("advisor", "branch advisor in Kraków (KRK-01)", "anna.nowak",
            ("case-reader", "advisor"), ("/branches/KRK-01", "/bank/mortgage-advisors"), "BRANCH", "KRK-01"),
    Persona("advisor-waw", "branch advisor in Warsaw (WAW-01): same role, other branch", "piotr.zielinski",
            ("case-reader", "advisor"), ("/branches/WAW-01", "/bank/mortgage-advisors"), "BRANCH", "WAW-01"),
    Persona("call-center", "call-center agent", "ewa.kowalska",
            ("call-center", "case-reader"), ("/call-center",), "CALL_CENTER"),
    Persona("back-office", "back-office clerk", "jan.wisniewski",
            ("back-office", "case-reader", "case-writer"), ("/back-office",), "BACK_OFFICE"),
    Persona("team-manager", "team manager of the Kraków branch", "maria.wojcik",
            ("team-manager", "case-reader", "case-writer"), ("/branches/KRK-01",), "BRANCH", "KRK-01"),
    Persona("operations-manager", "head of operations: a team manager of every unit (no branch claim)",
            "barbara.wozniak", ("team-manager", "case-reader", "case-writer"), ("/bank/operations",),
            "BACK_OFFICE"),
    Persona("auditor", "internal auditor", "tomasz.kaminski",
            ("auditor", "case-reader"), ("/audit",), "BACK_OFFICE"),
    Persona("pii-officer", "officer cleared to read personal data", "katarzyna.lewandowska",
            ("pii-reader", "case-reader"), ("/compliance",), "BACK_OFFICE"),
    Persona("no-roles", "employee without any case role", "adam.dabrowski", ()),
    Persona("customer-anna", "Anna Kowalska in online banking (customer CUST-1001)", "anna.kowalska",
            ("customer",), channel="ONLINE", customer_id="CUST-1001"),
    Persona("customer-piotr", "Piotr Nowak in mobile banking (customer CUST-1002)", "piotr.nowak",
            ("customer",), channel="MOBILE", customer_id="CUST-1002"),
    Persona("system-publisher", "process engine publishing case events", "case-publisher",
            ("system-publisher",), system=True),
)
PERSONAS_BY_NAME = {persona.name: persona for persona in PERSONAS}


class DevTokensDisabled(RuntimeError):
    """Raised when asked to mint a development token outside APP_ENV=dev."""


def persona_claims(settings: Settings, persona: Persona, ttl: timedelta = DEFAULT_TTL,
                   now: float | None = None) -> dict[str, Any]:
    """The claims Keycloak would issue for this persona (iss/aud follow the settings when set)."""
    issued = int(time.time() if now is None else now)
    audience = settings.auth_audience or DEV_AUDIENCE
    claims: dict[str, Any] = {
        "iss": settings.auth_issuer or DEV_ISSUER, "aud": audience, "azp": audience,
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"case-repository-dev/{persona.name}")),
        "iat": issued, "exp": issued + int(ttl.total_seconds()), "jti": str(uuid.uuid4()), "typ": "Bearer",
        "preferred_username": persona.username, "realm_access": {"roles": list(persona.roles)},
        "groups": list(persona.groups),
    }
    if persona.system:
        claims.update(preferred_username=SERVICE_ACCOUNT_PREFIX + persona.username, client_id=persona.username,
                      azp=persona.username)
    if persona.channel is not None:
        claims["channel"] = persona.channel
    if persona.branch is not None:
        claims["branch"] = persona.branch
    if persona.customer_id is not None:
        claims["customer_id"] = persona.customer_id
    return claims


def mint_dev_token(settings: Settings, persona: str | Persona, ttl: timedelta = DEFAULT_TTL) -> str:
    """An HS256 token for a demo persona; refuses unless APP_ENV=dev (prod never honours them)."""
    if not settings.is_dev:
        raise DevTokensDisabled("development tokens are only minted when APP_ENV=dev")
    chosen = PERSONAS_BY_NAME[persona] if isinstance(persona, str) else persona
    return jwt.encode(persona_claims(settings, chosen, ttl), settings.auth_dev_secret, algorithm=DEV_ALGORITHM)


def headers_tab_lines(settings: Settings, ttl: timedelta = DEFAULT_TTL) -> list[str]:
    """For every persona: `# name: description (roles)`, then exactly what GraphiQL's Headers tab takes,
    `{"Authorization": "Bearer <token>"}`, then a blank line."""
    lines: list[str] = []
    for persona in PERSONAS:
        roles = ", ".join(persona.roles) or "no roles"
        headers = {"Authorization": f"Bearer {mint_dev_token(settings, persona, ttl)}"}
        lines += [f"# {persona.name}: {persona.description} ({roles})", json.dumps(headers), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth.dev_tokens", description=__doc__.splitlines()[0])
    parser.add_argument("persona", nargs="?", choices=sorted(PERSONAS_BY_NAME), help="print only this persona")
    parser.add_argument("--ttl-hours", type=float, default=DEFAULT_TTL.total_seconds() / 3600)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if not settings.is_dev:
        print("error: development tokens are only minted when APP_ENV=dev", file=sys.stderr)
        return 1
    ttl = timedelta(hours=args.ttl_hours)
    if args.persona is not None:
        print(f"Authorization: Bearer {mint_dev_token(settings, args.persona, ttl)}")
        return 0
    print("\n".join(headers_tab_lines(settings, ttl)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
