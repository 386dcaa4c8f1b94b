"""The app's state, under typed keys: set by `edge.app.build_app`, read by the view and the ops endpoints."""
from __future__ import annotations

from aiohttp import web

from consumers.kafka import KafkaClients
from context import Services
from stores.database import Database

SERVICES = web.AppKey("services", Services)
DATABASE = web.AppKey("database", Database)
KAFKA = web.AppKey("kafka", KafkaClients | None)
