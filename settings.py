"""Settings read from the environment once, in one typed object."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace


# Public development defaults: safe only because APP_ENV=prod refuses to start with them.
DEV_AUTH_SECRET = "case-repository-dev-secret-not-for-production"
DEV_ENCRYPTION_KEY = "ZGV2LWtleS1jYXNlLXJlcG9zaXRvcnktMzItYnl0ZXM="


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    app_env: str = "dev"
    mongodb_uri: str | None = None
    mongodb_database: str = "case_repository"
    # Write concern of every write: acknowledged by this many members (or "majority") and on the journal.
    mongodb_write_concern: str = "majority"
    mongodb_journal: bool = True
    kafka_bootstrap_servers: str | None = None
    kafka_group_id: str = "case-repository"
    kafka_topic_events: str = "case-events"
    kafka_topic_updates: str = "case-updates"
    kafka_topic_commands: str = "case-commands"
    kafka_topic_dlq: str = "case-events.dlq"
    demo_data: bool = True
    max_page_size: int = 500
    default_page_size: int = 20
    log_level: str = "INFO"
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    # Only honoured when app_env == "dev"; prod refuses to start while it is the dev default.
    auth_dev_secret: str = DEV_AUTH_SECRET
    # base64 of 32 bytes; prod refuses to start while it is the dev default.
    data_encryption_key: str = DEV_ENCRYPTION_KEY
    graphql_introspection: bool | None = None
    allow_embedded: bool = False
    ws_allowed_origins: tuple[str, ...] = ()
    # OpenTelemetry traces are exported only when this is set (tracing.py); the SDK reads the other OTEL_* itself.
    otel_exporter_otlp_endpoint: str | None = None
    response_cache_seconds: float = 30.0
    # The response cache's bound in bytes (answers differ in size by orders of magnitude; CONTRACT: 64 MiB).
    response_cache_max_bytes: int = 64 * 1024 * 1024
    # A request body that has not fully arrived by then is refused with 408 (a trickling client holds a task).
    request_body_seconds: float = 60.0
    # How often each instance's outbox relay looks for messages and staged effects nobody sent.
    outbox_relay_seconds: float = 1.0
    # How long a writer's claim on an outbox message it is sending lasts: past it, another instance sends it.
    outbox_lease_seconds: float = 30.0
    # How long a requested incident retry waits for the engine's answer before it shows TIMED_OUT.
    incident_retry_timeout_seconds: float = 600.0
    # customerByPesel calls one principal may make per hour, on every instance together.
    pesel_lookups_per_hour: int = 20
    # Requests to /graphql without a valid token (anonymous or refused) one client address may make per minute, on
    # every instance together; the next is 429 RATE_LIMITED (edge/refusal_limits.py).
    unauthenticated_requests_per_minute: int = 600
    # Customer Panel sign-in: how long a one-time code is valid, and a panel session's idle and absolute lifetimes.
    panel_code_ttl_seconds: float = 600.0
    panel_session_idle_seconds: float = 900.0
    panel_session_max_seconds: float = 3600.0
    # panelRequestCode and panelLogin answer no sooner than this, so their time does not tell a match from none.
    panel_answer_floor_seconds: float = 0.25
    # The largest document a participant uploads in the Customer Panel (multipart POST /graphql only; JSON bodies
    # keep their 1 MiB).
    panel_upload_max_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (unset = embedded default)."""
        env = os.environ if env is None else env
        mongodb_uri = env.get("MONGODB_URI") or None
        return cls(
            host=env.get("HOST", cls.host),
            port=int(env.get("PORT", cls.port)),
            app_env=env.get("APP_ENV", cls.app_env),
            mongodb_uri=mongodb_uri,
            mongodb_database=env.get("MONGODB_DATABASE", cls.mongodb_database),
            mongodb_write_concern=env.get("MONGODB_WRITE_CONCERN") or cls.mongodb_write_concern,
            mongodb_journal=_flag(env.get("MONGODB_JOURNAL"), default=cls.mongodb_journal),
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            kafka_group_id=env.get("KAFKA_GROUP_ID", cls.kafka_group_id),
            kafka_topic_events=env.get("KAFKA_TOPIC_EVENTS", cls.kafka_topic_events),
            kafka_topic_updates=env.get("KAFKA_TOPIC_UPDATES", cls.kafka_topic_updates),
            kafka_topic_commands=env.get("KAFKA_TOPIC_COMMANDS", cls.kafka_topic_commands),
            kafka_topic_dlq=env.get("KAFKA_TOPIC_DLQ", cls.kafka_topic_dlq),
            # Demo cases only make sense in a store that starts empty every time.
            demo_data=_flag(env.get("DEMO_DATA"), default=mongodb_uri is None),
            max_page_size=int(env.get("MAX_PAGE_SIZE", cls.max_page_size)),
            default_page_size=int(env.get("DEFAULT_PAGE_SIZE", cls.default_page_size)),
            log_level=env.get("LOG_LEVEL", cls.log_level),
            auth_jwks_url=env.get("AUTH_JWKS_URL") or None,
            auth_issuer=env.get("AUTH_ISSUER") or None,
            auth_audience=env.get("AUTH_AUDIENCE") or None,
            auth_dev_secret=env.get("AUTH_DEV_SECRET") or DEV_AUTH_SECRET,
            data_encryption_key=env.get("DATA_ENCRYPTION_KEY") or DEV_ENCRYPTION_KEY,
            graphql_introspection=(_flag(env["GRAPHQL_INTROSPECTION"], default=False)
                                   if env.get("GRAPHQL_INTROSPECTION") else None),
            allow_embedded=_flag(env.get("ALLOW_EMBEDDED"), default=False),
            response_cache_seconds=float(env.get("RESPONSE_CACHE_SECONDS", cls.response_cache_seconds)),
            response_cache_max_bytes=int(env.get("RESPONSE_CACHE_MAX_BYTES", cls.response_cache_max_bytes)),
            request_body_seconds=float(env.get("REQUEST_BODY_SECONDS", cls.request_body_seconds)),
            outbox_relay_seconds=float(env.get("OUTBOX_RELAY_SECONDS", cls.outbox_relay_seconds)),
            outbox_lease_seconds=float(env.get("OUTBOX_LEASE_SECONDS", cls.outbox_lease_seconds)),
            pesel_lookups_per_hour=int(env.get("PESEL_LOOKUPS_PER_HOUR", cls.pesel_lookups_per_hour)),
            unauthenticated_requests_per_minute=int(
                env.get("UNAUTHENTICATED_REQUESTS_PER_MINUTE", cls.unauthenticated_requests_per_minute)),
            incident_retry_timeout_seconds=float(
                env.get("INCIDENT_RETRY_TIMEOUT_SECONDS", cls.incident_retry_timeout_seconds)),
            panel_code_ttl_seconds=float(env.get("PANEL_CODE_TTL_SECONDS", cls.panel_code_ttl_seconds)),
            panel_session_idle_seconds=float(env.get("PANEL_SESSION_IDLE_SECONDS", cls.panel_session_idle_seconds)),
            panel_session_max_seconds=float(env.get("PANEL_SESSION_MAX_SECONDS", cls.panel_session_max_seconds)),
            panel_answer_floor_seconds=float(
                env.get("PANEL_ANSWER_FLOOR_SECONDS", cls.panel_answer_floor_seconds)),
            panel_upload_max_bytes=int(env.get("PANEL_UPLOAD_MAX_BYTES", cls.panel_upload_max_bytes)),
            ws_allowed_origins=tuple(o.strip() for o in env.get("WS_ALLOWED_ORIGINS", "").split(",") if o.strip()),
            otel_exporter_otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)

    @property
    def is_dev(self) -> bool:
        return self.app_env == "dev"

    @property
    def dev_tokens_accepted(self) -> bool:
        """HS256 development tokens: only in dev, and with the public default secret only on the in-memory
        store, so a real deployment that forgot APP_ENV=prod does not accept tokens anyone can sign."""
        return self.is_dev and (self.embedded_store or self.auth_dev_secret != DEV_AUTH_SECRET)

    @property
    def introspection_enabled(self) -> bool:
        """On in dev, off in prod unless GRAPHQL_INTROSPECTION=1."""
        return self.is_dev if self.graphql_introspection is None else self.graphql_introspection

    @property
    def embedded_store(self) -> bool:
        return self.mongodb_uri is None

    @property
    def kafka_enabled(self) -> bool:
        return self.kafka_bootstrap_servers is not None
