"""The app's parts, for server.create_app and the bench's baseline to compose: middlewares, view, app."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from strawberry.schema import BaseSchema

from consumers.kafka import KafkaClients
from context import Services
from edge.access_log import access_log, send_request_id
from edge.authentication import authentication
from edge.http_guards import GRAPHQL_PATH, graphql_view_options, http_guards
from edge.keys import DATABASE, KAFKA, SERVICES
from edge.dev import add_dev_routes
from edge.documents import add_document_routes
from edge.graphiql_page import add_graphiql_routes
from edge.ops import add_ops_routes
from edge.panel_page import add_panel_routes
from edge.uploads import upload_body_limit
from edge.view import CaseRepositoryView
from settings import Settings
from stores.database import Database

MAX_BODY_BYTES = 1024 * 1024
UPLOAD_FORM_BYTES = 64 * 1024
View = TypeVar("View", bound=CaseRepositoryView)


def serving_middlewares() -> list[Middleware]:
    """What every app serving /graphql runs first: the request id, access log and HTTP metrics, so the refusals
    below are logged and counted too."""
    return [access_log]


def security_middlewares(settings: Settings, services: Services) -> list[Middleware]:
    """The HTTP guards, the upload body limit, then authentication: a request refused by a guard never reaches the
    token verifier."""
    # An upload's body is its file (up to PANEL_UPLOAD_MAX_BYTES, checked by the mutation with a GraphQL error) and
    # the form around it (operations, map, part headers); JSON bodies keep their own 1 MiB.
    uploads = settings.panel_upload_max_bytes + UPLOAD_FORM_BYTES
    return [*http_guards(settings, max_upload_bytes=uploads), upload_body_limit(uploads),
            authentication(services.verifier, services.refusals)]


def graphql_view(settings: Settings, schema: BaseSchema, view_class: type[View]) -> View:
    """The /graphql view (CaseRepositoryView or a subclass) over `schema`, with the HTTP guards' view options."""
    # No queries over GET: their arguments (a PESEL, say) would sit in URLs, proxy logs and browser history.
    return view_class(schema=schema, allow_queries_via_get=False, **graphql_view_options(settings))


def build_app(services: Services, database: Database, kafka: KafkaClients | None, *,
              middlewares: Iterable[Middleware], view: CaseRepositoryView) -> web.Application:
    """An aiohttp app with its state under the typed keys, `view` at /graphql and the ops endpoints."""
    app = web.Application(middlewares=list(middlewares), client_max_size=MAX_BODY_BYTES)
    app[DATABASE] = database
    app[SERVICES] = services
    app[KAFKA] = kafka
    app.on_response_prepare.append(send_request_id)
    app.router.add_route("*", GRAPHQL_PATH, view)
    add_ops_routes(app)
    add_dev_routes(app, services.settings)
    add_document_routes(app)
    add_panel_routes(app)
    add_graphiql_routes(app, services.settings)
    return app
