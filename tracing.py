"""OpenTelemetry traces of the aiohttp server, aiokafka and pymongo: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

Off, nothing of OpenTelemetry is imported and no request pays for it. On, spans go to the OTLP/HTTP endpoint in
batches; the SDK reads the standard OTEL_* variables itself (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER,
OTEL_EXPORTER_OTLP_HEADERS, ...). A server span carries the request id, so a trace leads to the access log line
and the audit records of the same request. pymongo's spans carry the command name and collection, never the
command's document (a filter may hold a PESEL's blind index, a case id or a customer's name): the instrumentor's
`capture_statement` stays off.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from logs import REQUEST_ID
from settings import Settings

log = logging.getLogger(__name__)
SERVICE_NAME = "case-repository"
REQUEST_ID_ATTRIBUTE = "case_repository.request_id"


@dataclass
class Tracing:
    """What is switched on: the provider whose spans are exported, and the middleware naming the request id."""
    provider: Any
    middleware: Middleware

    def shutdown(self) -> None:
        """Export what is still buffered: called when the app stops."""
        self.provider.shutdown()


_started: Tracing | None = None


def start_tracing(settings: Settings) -> Tracing | None:
    """Instruments aiohttp's server, pymongo and aiokafka (process-wide, once); None when off.

    Called before the app, the first MongoClient and the Kafka clients exist: pymongo reads its command listeners
    when a client is created, and aiohttp's instrumentation applies to Applications made afterwards."""
    global _started
    if settings.otel_exporter_otlp_endpoint is None:
        return None
    if _started is not None:
        return _started
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, when set, win over the default name.
    resource = Resource.create({"service.name": SERVICE_NAME}).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT itself and appends /v1/traces, as the specification says.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    PymongoInstrumentor().instrument(tracer_provider=provider, capture_statement=False)
    AIOKafkaInstrumentor().instrument(tracer_provider=provider)
    # Every aiohttp Application made from now on opens a server span in its first middleware (the library's way:
    # its middleware reads settings that only `instrument` sets).
    AioHttpServerInstrumentor().instrument(tracer_provider=provider)
    _started = Tracing(provider=provider, middleware=_request_id_on_span())
    log.info("tracing on", extra={"endpoint": settings.otel_exporter_otlp_endpoint})
    return _started


def tracing_middlewares(tracing: Tracing | None) -> list[Middleware]:
    return [] if tracing is None else [tracing.middleware]


def _request_id_on_span() -> Middleware:
    """Puts the request id, drawn by the access log (the middleware before this one), on the open server span."""
    from opentelemetry import trace

    @web.middleware
    async def annotated(request: web.Request, handler: Handler) -> web.StreamResponse:
        trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, REQUEST_ID.get() or "")
        return await handler(request)

    return annotated
