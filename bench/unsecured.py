"""R2's baseline: the app's /graphql view, services and types with every security measure taken out.

Bench-only; never served by the product. What is left out, against server.create_app:
- the HTTP guards and the authentication middleware (no token is read or verified);
- the policy's guards: `access.guards.attach_policy` is never called, so no field carries a permission or
  sensitive-field extension (`assert_no_guards` proves it for this process), and no FederationGuard;
- the row scope: the context's scope is stores.case_scope.EVERYTHING and its principal is fixed;
- the query limits (token limiter, depth/alias validation rules, cost guard) and the AuditOperation extension;
- audit records: the services' audit store discards, so no other path (e.g. a response-cache hit) writes one.
What stays is built by the same functions create_app and build_schema use, so it cannot drift from them:
`build_services`, `edge.app.build_app` (app keys, /graphql, ops endpoints), `edge.app.serving_middlewares`
(the access log and HTTP metrics), `edge.app.graphql_view` (the view class with its response cache and
orjson encoding) and `schema.build.assemble_schema` (the schema class, the parser and validation caches, the
error codes and the executor), given no security middlewares and no guards.

attach_policy appends extensions to the shared Strawberry field definitions, and Strawberry reads
`field.extensions` again on every request (argument mapping), so this app must live in a process in which
build_schema (and so create_app) never ran: R2 serves it from its own child process (bench/side_server.py).
"""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from functools import cached_property
from typing import Any

from aiohttp import web
from strawberry.permission import PermissionExtension
from strawberry.types.base import get_object_definition

from access.guards import SensitiveField
from auth.principal import Principal
from bench.caller import bench_principal
from context import Context, Services
from edge.app import build_app, graphql_view, serving_middlewares
from edge.keys import SERVICES
from edge.view import CaseRepositoryView
from schema.build import CaseRepositorySchema, Mutation, Query, Subscription, assemble_schema
from schema.cases import Participant
from schema.customers import Customer
from server import build_services
from settings import Settings
from stores.case_scope import EVERYTHING, CaseScope
from stores.database import Database

GUARDED_TYPES = (Query, Mutation, Subscription, Customer, Participant)


class DiscardingAudit:
    """An audit store that writes nothing: the baseline keeps no trail."""

    async def ensure_indexes(self) -> None:
        return None

    async def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        return entry


@dataclasses.dataclass
class UnscopedContext(Context):
    """The product's request context, but every case is in scope."""

    @cached_property
    def scope(self) -> CaseScope:
        return EVERYTHING


def unscoped_context(services: Services, principal: Principal, request: web.Request | None = None,
                     response: web.StreamResponse | None = None) -> Context:
    """The baseline's request context: a fixed caller, and every case in scope."""
    return UnscopedContext(services=services, request=request, response=response, principal=principal,
                           channel=principal.channel)


class UnsecuredView(CaseRepositoryView):
    """The product's view with a fixed caller (worked out once) instead of the authentication middleware's."""

    principal: Principal

    async def get_context(self, request: web.Request, response: web.StreamResponse) -> Context:  # type: ignore[override]
        return unscoped_context(request.app[SERVICES], self.principal, request, response)


def assert_no_guards() -> None:
    """Refuse to build the baseline in a process where attach_policy already added the policy's guards."""
    for cls in GUARDED_TYPES:
        for field in get_object_definition(cls, strict=True).fields:
            if any(isinstance(e, (PermissionExtension, SensitiveField)) for e in field.extensions):
                raise RuntimeError(f"{cls.__name__}.{field.name} carries a policy guard: build the unsecured app "
                                   "in a process where build_schema never ran")


def unsecured_schema(settings: Settings) -> CaseRepositorySchema:
    """build_schema's schema without attach_policy, the query limits, the federation guard and the audit."""
    assert_no_guards()
    return assemble_schema(expose_internal_errors=settings.is_dev)


def unsecured_app(settings: Settings, database: Database) -> web.Application:
    """create_app's app from the same parts, serving /graphql without any of the security set."""
    services = dataclasses.replace(build_services(settings, database, None), audit=DiscardingAudit())
    view = graphql_view(settings, unsecured_schema(settings), UnsecuredView)
    view.principal = bench_principal(settings)
    app = build_app(services, database, None, middlewares=serving_middlewares(), view=view)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await services.cases.ensure_indexes()
        await services.events.ensure_indexes()
        yield
        database.close()

    app.cleanup_ctx.append(lifecycle)
    return app
