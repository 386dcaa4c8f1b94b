"""OpenTelemetry traces as an operator switches them on: `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans arrive at an
OTLP/HTTP collector for the three libraries a request crosses (aiohttp server, pymongo, aiokafka), and the server
span names the request id. Off (unset), the app never imports OpenTelemetry.

Real processes: the app (`python server.py`), the MongoDB-wire store and the Tansu broker; the collector is a small
aiohttp server in the test that decodes what the SDK's exporter posts (`ExportTraceServiceRequest`, protobuf).
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.child_process import ROOT, AppProcess, free_port
from tests.factories import case_created_data, envelope
from tests.kafka.kit import Broker, KafkaProbe, Topics, wait_until
from tests.kafka.processes import app_env, bearer
from tests.wire_store import WireStore

pytestmark = pytest.mark.kafka

DATABASE = "case_repository_tracing"
CASE_QUERY = "query ($id: ID!) { case(id: $id) { id status } }"


class Collector:
    """What an OTLP/HTTP trace collector received: every span, flattened with its attributes."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.services: set[str] = set()

    async def traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource_spans in export.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    self.services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append({
                        "name": span.name, "kind": span.kind, "scope": scope_spans.scope.name,
                        "attributes": {a.key: _value(a.value) for a in span.attributes}})
        return web.Response(content_type="application/x-protobuf", body=b"")


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    received = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", received.traces)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield received, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_spans_of_the_server_the_store_and_the_broker_reach_the_collector_with_the_request_id(
    collector: tuple[Collector, str], kafka_broker: Broker, topics: Topics, probe: KafkaProbe,
    wire_store: WireStore,
) -> None:
    received, endpoint = collector
    env = app_env(wire_store, DATABASE, kafka_broker.bootstrap, topics,
                  OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="case-repository-under-test",
                  # Export every 100 ms rather than every 5 s, so the test need not wait.
                  OTEL_BSP_SCHEDULE_DELAY="100")
    app = AppProcess({k: v for k, v in env.items() if not k.startswith("OTEL_") or k in (
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_BSP_SCHEDULE_DELAY")})
    case_id = f"CASE-TRACE-{uuid.uuid4().hex[:8].upper()}"
    request_id = f"trace-{uuid.uuid4().hex}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        app.start()
        try:
            await app.wait_ready(http)
            # given a case that arrived on case-events
            await probe.produce_events(topics.events, [envelope("case.created", case_id, case_created_data())])

            async def read_case() -> dict[str, Any]:
                async with http.post(f"{app.url}/graphql", json={"query": CASE_QUERY, "variables": {"id": case_id}},
                                     headers={**bearer("back-office"), "X-Request-Id": request_id}) as response:
                    return await response.json()

            # when an employee reads it with a request id of their own
            answer = await wait_until(read_case, lambda body: (body.get("data") or {}).get("case") is not None,
                                      f"{case_id} to be readable")
            assert answer["data"]["case"] == {"id": case_id, "status": "NEW"}

            # then the collector holds a server span with that request id, store spans and broker spans
            def complete(spans: list[dict[str, Any]]) -> bool:
                scopes = {span["scope"] for span in spans}
                return (any(span["attributes"].get("case_repository.request_id") == request_id for span in spans)
                        and any("pymongo" in scope for scope in scopes) and any("aiokafka" in scope for scope in scopes))

            async def spans() -> list[dict[str, Any]]:
                return list(received.spans)

            collected = await wait_until(spans, complete, "server, pymongo and aiokafka spans at the collector")
        finally:
            app.stop()
    server_span = next(s for s in collected if s["attributes"].get("case_repository.request_id") == request_id)
    assert server_span["name"] == "POST /graphql"
    assert server_span["attributes"]["http.method"] == "POST"
    assert server_span["attributes"]["http.status_code"] == 200
    assert received.services == {"case-repository-under-test"}
    store_spans = [s for s in collected if "pymongo" in s["scope"]]
    assert {s["attributes"].get("db.system") for s in store_spans} == {"mongodb"}
    # A store span names its command only, never the command's document: a filter may hold an id, a name or a
    # PESEL's blind index.
    statements = {s["attributes"].get("db.statement") for s in store_spans}
    assert {"find", "insert"} <= statements
    assert all(statement is None or " " not in statement for statement in statements)
    assert not any(case_id in str(s["attributes"]) for s in store_spans)
    broker_spans = [s for s in collected if "aiokafka" in s["scope"]]
    assert topics.events in {s["attributes"].get("messaging.destination.name") for s in broker_spans}


def test_without_an_endpoint_the_app_never_imports_opentelemetry() -> None:
    # A process of its own: this test process has imported OpenTelemetry already (the collector above).
    probe = ("import sys, server; from settings import Settings; server.create_app(Settings()); "
             "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"
