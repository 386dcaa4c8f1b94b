"""The Case Repository server: `python server.py [--host H] [--port P]`."""
from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from auth.dev_tokens import headers_tab_lines
from auth.panel_tokens import PanelSessionVerifier
from auth.startup_checks import check_startup
from auth.tokens import TokenVerifier
from consumers.dead_letters import StoreDeadLetters
from consumers.kafka import KafkaClients
from consumers.pipeline import EventPipeline
from consumers.relay import OutboxRelay
from consumers.staging import Staging
from consumers.updates import LocalSender, UpdatesBus
from context import Services
from demo.events import load_demo_cases
import garbage_collector
from edge.app import build_app, graphql_view, security_middlewares, serving_middlewares
from edge.keys import SERVICES
from edge.view import CaseRepositoryView
from logs import configure_logging
from edge.refusal_limits import RefusalLimits
from edge.response_cache import ResponseCache
from schema.build import build_schema
from settings import Settings
from stores.appointments import AppointmentStore
from stores.audit import AuditStore
from stores.calendar import CalendarStore
from stores.cases import CaseStore
from stores.database import Database, connect, write_concern_w
from stores.dead_letters import DeadLetterStore
from stores.document_contents import DocumentContentStore
from stores.events import EventStore
from stores.history import HistoryStore
from stores.migrations import (index_participant_pesels, move_embedded_history, store_case_search_terms,
                               store_task_order_keys)
from stores.notes import NoteStore
from stores.outbox import OutboxStore
from stores.counters import WindowCounters
from stores.panel_access import PanelStores
from stores.protection import FieldCipher, KeyRing
from stores.tasks import TaskStore
from stores.terms import TermsStore
from tracing import start_tracing, tracing_middlewares

log = logging.getLogger("case_repository")

# SERVICES is re-exported: tests and the bench read the app's services as `server.SERVICES`.
__all__ = ["SERVICES", "build_services", "create_app", "main"]


def build_services(settings: Settings, database: Database, kafka: KafkaClients | None) -> Services:
    """Kafka carries updates and dead letters when configured; else the in-process bus and the store do."""
    cipher = FieldCipher(KeyRing.from_setting(settings.data_encryption_key))
    cases, events, audit = CaseStore(database, cipher), EventStore(database, cipher), AuditStore(database)
    history, tasks, outbox = HistoryStore(database), TaskStore(database), OutboxStore(database, cipher)
    notes = NoteStore(database)
    stored_letters = StoreDeadLetters(DeadLetterStore(database, cipher))
    bus = UpdatesBus()
    responses = ResponseCache(ttl_seconds=settings.response_cache_seconds,
                              max_bytes=settings.response_cache_max_bytes)
    bus.add_listener(responses.on_published)
    sender = kafka.sender(on_update_sent=responses.on_published) if kafka else LocalSender(bus)
    relay = OutboxRelay(outbox, sender, interval_seconds=settings.outbox_relay_seconds,
                        lease=timedelta(seconds=settings.outbox_lease_seconds))
    terms, appointments = TermsStore(database), AppointmentStore(database, cipher)
    panel = PanelStores.on(database)
    lookups = WindowCounters(database, "lookup_counters")
    staging = Staging(cases, events, history, tasks, audit, relay,
                      records=[terms, appointments, notes, panel.codes, panel.invitations])
    relay.add_sweep(staging.sweep)
    return Services(
        settings=settings, cases=cases, events=events, history=history, tasks=tasks, notes=notes, outbox=outbox,
        terms=terms, appointments=appointments, calendar=CalendarStore(database), staging=staging, relay=relay,
        bus=bus, audit=audit, cipher=cipher, responses=responses, lookups=lookups,
        pipeline=EventPipeline(cases, events, staging),
        dead_letters=kafka.dead_letters(stored_letters) if kafka else stored_letters,
        verifier=TokenVerifier(settings, panel_sessions=PanelSessionVerifier(
            panel.sessions, settings.panel_session_idle_seconds)),
        panel=panel, documents=DocumentContentStore(database, cipher),
        # The address counters share the PESEL lookups' collection (keys "address:..." beside "pesel:...").
        refusals=RefusalLimits(audit, lookups, settings.unauthenticated_requests_per_minute),
    )


def print_dev_tokens(settings: Settings) -> None:
    """`make run` in dev: for every persona, what `python -m auth.dev_tokens` prints for GraphiQL's Headers tab."""
    print("Dev tokens: paste one persona's JSON line into GraphiQL > Headers "
          "(again later: .venv/bin/python -m auth.dev_tokens)")
    for line in headers_tab_lines(settings):
        print(line)


def create_app(settings: Settings, database: Database | None = None) -> web.Application:
    """The aiohttp app; tests pass their own settings and, if they like, their own database."""
    if not settings.is_dev:
        check_startup(settings)
    owns_database = database is None
    tracing = start_tracing(settings)  # before the store and Kafka clients exist, so their calls are traced
    database = database or connect(settings.mongodb_uri, settings.mongodb_database,
                                   write_concern=write_concern_w(settings.mongodb_write_concern),
                                   journal=settings.mongodb_journal)
    kafka = KafkaClients(settings) if settings.kafka_enabled else None
    services = build_services(settings, database, kafka)
    schema = build_schema(expose_internal_errors=settings.is_dev, introspection=settings.introspection_enabled)
    view = graphql_view(settings, schema, CaseRepositoryView)
    # Spans start after the access log has drawn the request id, so every span carries it.
    middlewares = [*serving_middlewares(), *tracing_middlewares(tracing), *security_middlewares(settings, services)]
    app = build_app(services, database, kafka, middlewares=middlewares, view=view)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        for store in (services.cases, services.events, services.history, services.tasks, services.outbox,
                      services.audit, services.notes, services.documents):
            await store.ensure_indexes()
        await services.terms.ensure_indexes()
        await services.appointments.ensure_indexes()
        await services.panel.ensure_indexes()
        await services.lookups.ensure_indexes()
        await move_embedded_history(database, services.history, services.tasks)
        await services.events.rekey_parked()
        await index_participant_pesels(database, services.cipher)
        await store_task_order_keys(database)
        await store_case_search_terms(database)
        await services.verifier.start()
        if kafka is not None:
            await kafka.start(services.pipeline, services.dead_letters, services.bus)
        # Its first pass runs at once: what a stopped instance left unsent goes out now, not a period later.
        await services.relay.start()
        # Only into an empty store: a persistent local store (`make run STORE=local`) keeps what the demo changed.
        if settings.demo_data and await services.cases.is_empty():
            count = await load_demo_cases(services.pipeline)
            log.info("demo cases loaded through the event pipeline", extra={"events": count})
        yield
        # The relay loop first: ingest, still running, sends what it stages itself, through the producer.
        await services.relay.stop()
        await services.refusals.flush_due(everything=True)  # the repeats of open windows go on record too
        if kafka is not None:
            await kafka.stop()
        await services.verifier.close()
        if tracing is not None:
            tracing.shutdown()
        if owns_database:  # a database handed in (tests sharing one) is closed by whoever made it
            database.close()
        log.info("case repository stopped")

    app.cleanup_ctx.append(lifecycle)
    return app


class PortInUse(Exception):
    """The listen address is taken (another server, or this one already running)."""


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts: a taken port fails at once, with nothing to undo."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(f"{host}:{port} is already in use") from error
        raise
    return sock


async def serve(settings: Settings, sock: socket.socket) -> None:
    """Start the app on `sock`, log "started" once it accepts connections, run until SIGTERM or SIGINT."""
    runner = web.AppRunner(create_app(settings), access_log=None, handle_signals=False)
    await runner.setup()  # the app's lifecycle: indexes, Kafka clients, relay, demo data
    garbage_collector.settle_after_startup()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await web.SockSite(runner, sock).start()
        log.info("case repository started", extra={
            "host": settings.host, "port": settings.port,
            "store": "in-memory" if settings.embedded_store else "mongodb",
            "kafka": settings.kafka_bootstrap_servers or "in-process bus"})
        print(f"Case Repository: GraphiQL at http://{settings.host}:{settings.port}/graphql", flush=True)
        if settings.is_dev:
            print_dev_tokens(settings)
        sys.stdout.flush()
        await stopping.wait()
    finally:
        await runner.cleanup()


def main() -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description="Case Repository GraphQL server")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args()
    configure_logging(settings.log_level)
    settings = settings.with_overrides(host=args.host, port=args.port)
    try:
        sock = bind(settings.host, settings.port)
    except PortInUse as busy:
        print(f"error: {busy}; choose another port with PORT=8001 make run (or python server.py --port 8001)",
              file=sys.stderr)
        return 1
    asyncio.run(serve(settings, sock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
