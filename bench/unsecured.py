"""R2's baseline: the app's /graphql view, services and types with every security measure taken out.

Bench-only; never served by the product. What is left out, against server.create_app:
- the HTTP guards and the authentication middleware (no token is read or verified);
- the policy's guards: `access.guards.attach_policy` is never called, so no field carries a permission or
  sensitive-field extension (`assert_no_guards` proves it for this process), and no FederationGuard;
- the row scope: the context's scope is stores.case_scope.EVERYTHING and its principal is fixed;
- the query limits (token limiter, depth/alias validation rules, cost guard) and the AuditOperation extension;
- audit records: the services' audit store discards, so no other path (e.g. a response-cache hit) writes one.
What stays is everything else create_app and build_schema set up: the `measure` metrics middleware, the view
class (response cache, orjson encoding), the schema class, the parser and validation caches, the error codes
and the executor. `app_shape` lists an app's middlewares and schema extensions by name, so R2 can check that
the secure app differs from this one by exactly SECURITY_MIDDLEWARES and SECURITY_EXTENSIONS, and fail
when server.py or schema/build.py grow something this module does not mirror yet.

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
from strawberry.extensions import ValidationCache
from strawberry.permission import PermissionExtension
from strawberry.types.base import get_object_definition

from access.guards import SensitiveField
from auth.principal import Principal
from bench.caller import bench_principal, graphql_schema
from context import Context, Services
from http_guards import graphql_view_options
from schema.build import CaseRepositorySchema, FreshPerEventExecutor, Mutation, ParserCacheWithErrors, Query
from schema.cases import Participant
from schema.customers import Customer
from schema.errors import error_codes
from schema.subscriptions import Subscription
from schema.tasks import Task
from server import DATABASE, KAFKA, SERVICES, CaseRepositoryView, build_services, measure
from settings import Settings
from stores.case_scope import EVERYTHING, CaseScope
from stores.database import Database

GUARDED_TYPES = (Query, Mutation, Subscription, Customer, Participant)
SECURITY_MIDDLEWARES = frozenset({"security_headers", "graphql_post_guard", "authenticate"})
SECURITY_EXTENSIONS = frozenset({"MaxTokensLimiter", "AddValidationRules", "QueryLimitGuard", "FederationGuard",
                                 "AuditOperation"})


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
    return CaseRepositorySchema(
        query=Query, mutation=Mutation, subscription=Subscription, types=[Task], federation_version="2.5",
        extensions=[lambda: ParserCacheWithErrors(maxsize=512), lambda: ValidationCache(maxsize=512),
                    error_codes(settings.is_dev)],
        execution_context_class=FreshPerEventExecutor,
    )


def unsecured_app(settings: Settings, database: Database) -> web.Application:
    """An aiohttp app like create_app's, serving /graphql without any of the security set."""
    services = dataclasses.replace(build_services(settings, database, None), audit=DiscardingAudit())
    app = web.Application(middlewares=[measure], client_max_size=1024 * 1024)
    app[DATABASE] = database
    app[SERVICES] = services
    app[KAFKA] = None

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await services.cases.ensure_indexes()
        await services.events.ensure_indexes()
        yield
        database.close()

    view = UnsecuredView(schema=unsecured_schema(settings), allow_queries_via_get=True,
                         **graphql_view_options(settings))
    view.principal = bench_principal(settings)
    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/graphql", view)
    return app


def app_shape(app: web.Application) -> dict[str, Any]:
    """What an app is made of, by name: its middlewares, the /graphql view and schema classes, the extensions."""
    schema = graphql_schema(app)
    view = next(route.handler for route in app.router.routes()
                if route.resource is not None and route.resource.canonical == "/graphql")
    # Extensions are listed as factories (lambdas or classes); what they build names them.
    extensions = [type(factory()).__name__ for factory in schema.extensions]
    # The baseline's view subclasses the product's: name the product class it serves with.
    product_view = next(cls for cls in type(view).__mro__ if not cls.__module__.startswith("bench."))
    return {"middlewares": [m.__name__ for m in app.middlewares], "view": product_view.__name__,
            "schema": type(schema).__name__, "extensions": extensions}


def shape_difference(secure: dict[str, Any], baseline: dict[str, Any]) -> str | None:
    """Why the two apps differ by more than the security set, or None when they differ by exactly it."""
    problems = []
    for key in ("view", "schema"):
        if secure[key] != baseline[key]:
            problems.append(f"{key} {secure[key]} against {baseline[key]}")
    for key, security in (("middlewares", SECURITY_MIDDLEWARES), ("extensions", SECURITY_EXTENSIONS)):
        kept = [name for name in secure[key] if name not in security]
        if kept != baseline[key]:
            problems.append(f"{key} without the security set {kept} against {baseline[key]}")
    return "; ".join(problems) or None
