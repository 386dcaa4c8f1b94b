"""The app's state, under typed keys: set by `edge.app.build_app`, read by the view and the ops endpoints; and what
one request learns on its way through the edge, for its access log line and metrics."""
from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from consumers.kafka import KafkaClients
from context import Services
from stores.database import Database

SERVICES = web.AppKey("services", Services)
DATABASE = web.AppKey("database", Database)
KAFKA = web.AppKey("kafka", KafkaClients | None)


@dataclass(frozen=True)
class Outcome:
    """How /graphql answered: the operation's bounded label (None when no operation ran, as for a refusal), the
    error codes in the order of the errors, and whether it was a request error (the document or its variables
    did not parse or validate: no data at all)."""

    operation: str | None
    codes: tuple[str, ...] = ()
    request_error: bool = False


REQUEST_ID = web.RequestKey("request_id", str)
OUTCOME = web.RequestKey("outcome", Outcome)
