"""The Case Repository server: `python server.py [--host H] [--port P]`."""
from __future__ import annotations

import argparse
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from graphql import GraphQLError
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from auth.dev_tokens import mint_dev_token
from auth.middleware import AUDIT_REASON, CHANNEL, PRINCIPAL, authentication, failed_authentication_entry
from auth.startup_checks import check_startup
from auth.tokens import TokenVerifier, bearer_token_from_payload
from consumers.dead_letters import StoreDeadLetters
from consumers.kafka import KafkaClients
from consumers.pipeline import EventPipeline
from consumers.updates import LocalUpdatesPublisher, UpdatesBus
from context import Context, Services
from demo.events import load_demo_cases
from errors import Unauthenticated
from http_guards import graphql_view_options, http_guards
from logs import configure_logging
from resolvers.audit import AUDIT_UNAVAILABLE, record_operation
from response_cache import EvictingPublisher, ResponseCache, cacheable_operation
from schema.build import build_schema
from settings import Settings
from stores.audit import AuditStore
from stores.cases import CaseStore
from stores.database import Database, connect
from stores.dead_letters import DeadLetterStore
from stores.events import EventStore
from stores.protection import FieldCipher, KeyRing

log = logging.getLogger("case_repository")

SERVICES = web.AppKey("services", Services)
DATABASE = web.AppKey("database", Database)
KAFKA = web.AppKey("kafka", KafkaClients | None)

REQUESTS = Counter("case_repository_http_requests_total", "HTTP requests", ["path", "status"])
ERRORS = Counter("case_repository_http_errors_total", "HTTP requests that failed with 5xx", ["path"])
LATENCY = Histogram("case_repository_http_request_seconds", "HTTP request latency", ["path"])


class CaseRepositoryView(GraphQLView):
    async def get_context(self, request: web.Request, response: web.StreamResponse) -> Context:  # type: ignore[override]
        return Context(
            services=request.app[SERVICES], request=request, response=response,
            principal=request.get(PRINCIPAL), channel=request.get(CHANNEL), audit_reason=request.get(AUDIT_REASON),
        )

    async def execute_single(self, request: web.Request, request_adapter: Any, sub_response: web.Response,  # type: ignore[override]
                             context: Context, root_value: Any, request_data: Any) -> ExecutionResult:
        """Serve a repeated case read from the response cache; audited exactly like an executed one."""
        cache = context.services.responses
        key = cache.key(context.principal, context.channel, request_data.query, request_data.variables,
                        request_data.operation_name)
        if key is not None and (hit := cache.get(key)) is not None:
            context.audit.case_ids.update(hit.case_ids)
            context.audit.customer_ids.update(hit.customer_ids)
            context.audit.fields.update(hit.fields)
            operation = cacheable_operation(request_data.query, request_data.operation_name)
            if not await record_operation(context, action="READ", outcome="ok", operation=operation):
                return ExecutionResult(data=None, errors=[GraphQLError(AUDIT_UNAVAILABLE,
                                                                       extensions={"code": "INTERNAL"})])
            return ExecutionResult(data=hit.data, errors=None)
        since = cache.changes()
        result = await super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)
        if key is not None and not result.errors and result.data is not None:
            cache.put(key, result.data, case_ids=context.audit.case_ids, looked_up=context.case_lookups,
                      customer_ids=context.audit.customer_ids, fields=context.audit.fields, computed_since=since)
        return result

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:  # type: ignore[override]
        """graphql-transport-ws: the token arrives in connection_init (or on the handshake); none = 4403."""
        token = bearer_token_from_payload(context.connection_params)
        principal = context.principal
        if token is not None:
            try:
                principal = await context.services.verifier.verify(token)
            except Unauthenticated as error:
                assert context.request is not None
                await context.services.audit.append(
                    failed_authentication_entry(context.request, error.message, "websocket"))
                raise ConnectionRejectionError() from error
        if principal is None:
            raise ConnectionRejectionError()
        context.sign_in(principal)
        return UNSET

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket clients expect text frames.
        return orjson.dumps(data).decode()


@web.middleware
async def measure(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    path = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        LATENCY.labels(path).observe(time.perf_counter() - started)
        REQUESTS.labels(path, str(status)).inc()
        if status >= 500:
            ERRORS.labels(path).inc()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = {"store": await request.app[DATABASE].ping(), "identity": request.app[SERVICES].verifier.ready}
    kafka = request.app[KAFKA]
    if kafka is not None:
        checks["kafka"] = await kafka.ready()
    ready = all(checks.values())
    return web.json_response({"status": "ready" if ready else "unavailable", "checks": checks},
                             status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_services(settings: Settings, database: Database, kafka: KafkaClients | None) -> Services:
    """Kafka carries updates and dead letters when configured; else the in-process bus and the store do."""
    cipher = FieldCipher(KeyRing.from_setting(settings.data_encryption_key))
    cases, events, audit = CaseStore(database, cipher), EventStore(database, cipher), AuditStore(database)
    bus = UpdatesBus()
    responses = ResponseCache(ttl_seconds=settings.response_cache_seconds)
    bus.add_listener(responses.on_published)
    publisher = EvictingPublisher(kafka.updates_publisher(), responses) if kafka else LocalUpdatesPublisher(bus)
    return Services(
        settings=settings, cases=cases, events=events, bus=bus, audit=audit, cipher=cipher, responses=responses,
        pipeline=EventPipeline(cases, events, publisher, audit),
        dead_letters=kafka.dead_letters() if kafka else StoreDeadLetters(DeadLetterStore(database, cipher)),
        verifier=TokenVerifier(settings),
    )


def print_dev_tokens(settings: Settings) -> None:
    """`make run` in dev: ready-to-paste tokens for GraphiQL's Headers tab."""
    print("Dev tokens (paste into GraphiQL > Headers; all personas: .venv/bin/python -m auth.dev_tokens):")
    for persona in ("advisor", "call-center", "back-office", "auditor", "system-publisher"):
        print(f"  {persona:17} {{\"Authorization\": \"Bearer {mint_dev_token(settings, persona)}\"}}")


def create_app(settings: Settings, database: Database | None = None) -> web.Application:
    """The aiohttp app; tests pass their own settings and, if they like, their own database."""
    if not settings.is_dev:
        check_startup(settings)
    owns_database = database is None
    database = database or connect(settings.mongodb_uri, settings.mongodb_database)
    kafka = KafkaClients(settings) if settings.kafka_enabled else None
    services = build_services(settings, database, kafka)
    app = web.Application(
        middlewares=[measure, *http_guards(settings), authentication(services.verifier, services.audit)],
        client_max_size=1024 * 1024,
    )
    app[DATABASE] = database
    app[SERVICES] = services
    app[KAFKA] = kafka

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await services.cases.ensure_indexes()
        await services.events.ensure_indexes()
        await services.audit.ensure_indexes()
        await services.verifier.start()
        if kafka is not None:
            await kafka.start(services.pipeline, services.dead_letters, services.bus)
        if settings.demo_data:
            count = await load_demo_cases(services.pipeline)
            log.info("demo cases loaded through the event pipeline", extra={"events": count})
        log.info("case repository started", extra={
            "store": "in-memory" if settings.embedded_store else "mongodb",
            "kafka": settings.kafka_bootstrap_servers or "in-process bus"})
        yield
        if kafka is not None:
            await kafka.stop()
        await services.verifier.close()
        if owns_database:  # a database handed in (tests sharing one) is closed by whoever made it
            database.close()
        log.info("case repository stopped")

    schema = build_schema(expose_internal_errors=settings.is_dev, introspection=settings.introspection_enabled)
    # No queries over GET: their arguments (a PESEL, say) would sit in URLs, proxy logs and browser history.
    view = CaseRepositoryView(schema=schema, allow_queries_via_get=False, **graphql_view_options(settings))
    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/graphql", view)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


def main() -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description="Case Repository GraphQL server")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args()
    configure_logging(settings.log_level)
    settings = settings.with_overrides(host=args.host, port=args.port)
    app = create_app(settings)
    print(f"Case Repository: GraphiQL at http://{args.host}:{args.port}/graphql", flush=True)
    if settings.is_dev:
        print_dev_tokens(settings)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
