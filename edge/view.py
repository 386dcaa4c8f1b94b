"""The /graphql view: the request context, the response cache in front of execution, WebSocket sign-in, and
answers in the GraphQL-over-HTTP shape: every refusal coded JSON (edge.refusals), the media type the client asks for,
and with `application/graphql-response+json` a request error (a document or variables that do not parse or
validate) answered 400, as that type promises. A WebSocket message is bounded like an HTTP body (1 MiB): a larger one
closes the socket with 4400 and a reason that names the bound."""
from __future__ import annotations

from contextlib import suppress
from functools import cached_property
from typing import Any

import orjson
from aiohttp import WSCloseCode, web
from graphql import GraphQLError
from cross_web import HTTPException
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler, Operation, _OperationStreamClosed,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.unset import UNSET, UnsetType

from auth.tokens import bearer_token_from_payload
from context import Context
from edge import content_type
from edge.fanout import PushFanOut
from edge.outbox import SocketOutbox
from edge.authentication import AUDIT_REASON, CHANNEL, PRINCIPAL, client_address, failed_authentication_entry
from edge.refusal_limits import RATE_LIMITED, RATE_LIMITED_REASON
from edge.graphiql_page import GRAPHIQL
from edge.keys import OUTCOME, SERVICES, Outcome
from edge.operations import LABELS, SocketOperation
from edge.refusals import GRAPHQL_RESPONSE_JSON, JSON, refusal, response_media_type
from errors import Unauthenticated
from resolvers.audit import AUDIT_UNAVAILABLE, record_operation
from edge.response_cache import cacheable_operation

content_type.install()

# Strawberry's own refusals, by status: the code a client can act on.
_REFUSAL_CODES = {404: "NOT_FOUND"}
_ALLOWED_METHODS = {"Allow": "GET, POST"}
# Like an HTTP body (edge.app.MAX_BODY_BYTES): a subscribe message is a GraphQL request as well.
MAX_MESSAGE_BYTES = 1024 * 1024
# graphql-transport-ws closes on a message it cannot accept with 4400 (its clients do not retry 4400 either).
MESSAGE_TOO_LARGE = 4400


class BoundedWebSocket(web.WebSocketResponse):
    """aiohttp's reader stops at `max_msg_size` (without buffering the rest) and closes with the generic 1009;
    the protocol's clients expect a 4400-range code, so that close says 4400 and why."""

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG:
            code, message = MESSAGE_TOO_LARGE, f"Message larger than {MAX_MESSAGE_BYTES} bytes".encode()
        return await super().close(code=code, message=message, drain=drain)


class SharedPushesHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with every frame through the socket's outbox (edge/outbox.py), and the shared case
    feeds served by the view's push groups (edge/fanout.py); every other operation runs as Strawberry runs it.
    Each operation is in the WebSocket operation metrics (edge.operations.SocketOperation) while it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adapter = self.websocket
        self.outbox = SocketOutbox(adapter.ws, adapter.request.transport)  # type: ignore[attr-defined]
        self._running: dict[Operation[Context, None], SocketOperation] = {}

    async def send_message(self, message: Any) -> None:
        await self.outbox.send(self.view.encode_json(message))

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        counted = self._running[operation] = SocketOperation(operation.query, operation.operation_name)
        try:
            await self._run_operation(operation)
        except Exception:
            counted.note([GraphQLError("the operation failed", extensions={"code": "INTERNAL"})])
            raise
        finally:  # also when cancelled: the client's complete, the socket closing
            del self._running[operation]
            counted.ended()

    async def _handle_pre_execution_error(self, operation: Operation[Context, None], result: PreExecutionError) -> None:
        self._running[operation].note(result.errors)
        await super()._handle_pre_execution_error(operation, result)

    async def _send_result_stream(self, operation: Operation[Context, None], result_source: Any) -> None:
        counted = self._running[operation]
        # A subscription's stream goes to Strawberry untouched: nothing is added per push.
        await super()._send_result_stream(operation, counted.noting(result_source) if counted.single_result
                                          else result_source)

    async def _run_operation(self, operation: Operation[Context, None]) -> None:
        fanout: PushFanOut = self.view.fanout  # type: ignore[attr-defined]
        key = fanout.group_key(operation.query, operation.operation_name, operation.variables, self.context)
        if key is None:
            return await super().run_operation(operation)

        async def answer(result: Any) -> None:
            """A result the group could not share, answered as Strawberry answers it on a stream of its own."""
            if isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
            elif isinstance(result, ExecutionResult):
                await operation.send_next(result)
            else:
                await self._reject_incremental_delivery(operation)

        try:
            await fanout.serve(key, operation.id, operation.query, operation.operation_name, operation.variables,
                               self.context, self.outbox, answer)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except _OperationStreamClosed:
            return
        except Exception as error:  # as Strawberry's own run_operation: log, complete, forget
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def shutdown(self) -> None:
        await super().shutdown()
        self.outbox.close()


class CaseRepositoryView(GraphQLView):
    graphql_transport_ws_handler_class = SharedPushesHandler

    def is_websocket_request(self, request: web.Request) -> bool:
        # Strawberry asks aiohttp's handshake check, which builds a WebSocketResponse and raises inside it for every
        # plain POST (a twentieth of a cache hit); a handshake is a GET with an Upgrade header, so the rest is no.
        if request.method != "GET" or "Upgrade" not in request.headers:
            return False
        return super().is_websocket_request(request)

    @cached_property
    def fanout(self) -> PushFanOut:
        """This view's push groups: subscriptions of every socket it serves share them."""
        return PushFanOut(self.schema)

    async def create_websocket_response(self, request: web.Request, subprotocol: str | None) -> web.WebSocketResponse:
        # No permessage-deflate: each socket's compressor would redo, per subscriber, the work a shared push does
        # once (measured ~60 us per frame, more than the rest of a push's fan-out). Pushes are small JSON.
        ws = web.WebSocketResponse(protocols=[subprotocol] if subprotocol else [], compress=False)
        await ws.prepare(request)
        return ws

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        try:
            response = await self.run(request=request)
        except HTTPException as error:
            code = _REFUSAL_CODES.get(error.status_code, "BAD_USER_INPUT")
            return refusal(request, error.status_code, error.reason, code,
                           headers=_ALLOWED_METHODS if error.status_code == 405 else None)
        if isinstance(response, web.Response) and response.content_type == JSON:
            response.content_type = response_media_type(request)
            outcome = request.get(OUTCOME)
            if response.content_type == GRAPHQL_RESPONSE_JSON and outcome is not None and outcome.request_error:
                response.set_status(400)
        return response

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        """Our GraphiQL page (edge.graphiql_page), not Strawberry's: local files, nothing typed in the URL."""
        return request.app[GRAPHIQL].response()

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
                return _noted(request, request_data, ExecutionResult(
                    data=None, errors=[GraphQLError(AUDIT_UNAVAILABLE, extensions={"code": "INTERNAL"})]))
            return _noted(request, request_data, ExecutionResult(data=hit.data, errors=None))
        since = cache.changes()
        result = await super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)
        if key is not None and not result.errors and result.data is not None:
            cache.put(key, result.data, case_ids=context.audit.case_ids, looked_up=context.case_lookups,
                      customer_ids=context.audit.customer_ids, fields=context.audit.fields, computed_since=since)
        return _noted(request, request_data, result)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:  # type: ignore[override]
        """graphql-transport-ws: the token arrives in connection_init (or on the handshake); none = 4403."""
        token = bearer_token_from_payload(context.connection_params)
        principal = context.principal
        if token is not None:
            try:
                principal = await context.services.verifier.verify(token)
            except Unauthenticated as error:
                await _refuse_sign_in(context, error.message)
                raise ConnectionRejectionError() from error
        if principal is None:
            await _refuse_sign_in(context, "no token: connection_init carries no Authorization")
            raise ConnectionRejectionError()
        context.sign_in(principal)
        return UNSET

    async def create_websocket_response(self, request: web.Request,  # type: ignore[override]
                                        subprotocol: str | None) -> web.WebSocketResponse:
        socket = BoundedWebSocket(protocols=[subprotocol] if subprotocol else [], max_msg_size=MAX_MESSAGE_BYTES)
        await socket.prepare(request)
        return socket

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket clients expect text frames.
        return orjson.dumps(data).decode()

    def create_response(self, response_data: Any, sub_response: web.Response) -> web.Response:  # type: ignore[override]
        # Strawberry turns the encoded answer into text and aiohttp turns it back into bytes: it goes out as encoded.
        sub_response.body = orjson.dumps(response_data)
        sub_response.content_type = JSON
        sub_response.charset = "utf-8"
        return sub_response


async def _refuse_sign_in(context: Context, reason: str) -> None:
    """A socket that did not sign in counts against its address's limit of requests without a valid token, as a
    refused HTTP request does; past the limit it is on record as RATE_LIMITED."""
    request, refusals = context.request, context.services.refusals
    assert request is not None
    if await refusals.admit(client_address(request)):
        await refusals.record(failed_authentication_entry(request, reason, "websocket"))
    else:
        await refusals.record(
            failed_authentication_entry(request, RATE_LIMITED_REASON, "websocket", action=RATE_LIMITED))


def _noted(request: web.Request, request_data: Any, result: ExecutionResult) -> ExecutionResult:
    """Note the operation's label and error codes on the request, for the access log and the metrics."""
    errors = result.errors or []
    codes = tuple(dict.fromkeys(str((e.extensions or {}).get("code", "INTERNAL")) for e in errors))
    # No data and no error tied to a field: the document or the variables were refused before execution.
    request_error = (bool(errors) and result.data is None and all(e.path is None for e in errors)
                     and "INTERNAL" not in codes)
    request[OUTCOME] = Outcome(LABELS.label(request_data.query, request_data.operation_name), codes, request_error)
    return result
