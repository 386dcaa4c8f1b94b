"""Who the benchmarks call as, and the app's own schema, so bench queries go through the real checks."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from auth.dev_tokens import PERSONAS_BY_NAME, mint_dev_token, persona_claims
from auth.principal import Principal, principal_from_claims
from context import Context, Services
from settings import Settings

# A back-office clerk reads every case type of every branch: the row scope admits the bench's cases.
PERSONA = "back-office"


def bench_token(settings: Settings) -> str:
    """The development token a client of the API would send."""
    return mint_dev_token(settings, PERSONA)


def bench_principal(settings: Settings) -> Principal:
    """The principal that token stands for, without a round through the token verifier."""
    return principal_from_claims(persona_claims(settings, PERSONAS_BY_NAME[PERSONA]), settings.auth_audience)


def bench_context(services: Services) -> Context:
    """A request context as the /graphql view builds it for the bench caller."""
    principal = bench_principal(services.settings)
    return Context(services=services, principal=principal, channel=principal.channel)


def graphql_schema(app: web.Application) -> Any:
    """The schema the app's /graphql view serves (with the app's extensions and limits)."""
    return next(route.handler.schema for route in app.router.routes()
                if route.resource is not None and route.resource.canonical == "/graphql")
