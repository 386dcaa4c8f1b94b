"""What operators call: /healthz, /readyz (store, identity keys, Kafka), /metrics, and the HTTP metrics each request
adds (`count_request`, called by the access-log middleware, which times every request once)."""
from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from edge.keys import DATABASE, KAFKA, SERVICES
from stores.database import OUTAGE_ERRORS

REQUESTS = Counter("case_repository_http_requests_total", "HTTP requests", ["path", "status"])
ERRORS = Counter("case_repository_http_errors_total", "HTTP requests that failed with 5xx", ["path"])
LATENCY = Histogram("case_repository_http_request_seconds", "HTTP request latency", ["path"])


def count_request(request: web.Request, status: int, seconds: float) -> None:
    """The HTTP metrics of one finished request, by route (never the client's raw path: unbounded labels)."""
    path = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    LATENCY.labels(path).observe(seconds)
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
    body: dict[str, object] = {"status": "ready" if ready else "unavailable", "checks": checks}
    if checks["store"]:
        # A backlog is not unreadiness (the store has the truth and the relay catches up): shown, not judged.
        backlog = await request.app[SERVICES].relay.measure()
        body["outbox"] = {"pending": backlog.pending, "oldestPendingSeconds": backlog.oldest_age_seconds,
                          "failed": backlog.failed}
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    try:
        await request.app[SERVICES].relay.measure()  # the outbox gauges as of this scrape
    except OUTAGE_ERRORS:
        pass  # the store is down: the gauges keep their last values, /readyz says why
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_ops_routes(app: web.Application) -> None:
    """Route /healthz, /readyz and /metrics."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
