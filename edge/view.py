"""The /graphql view: the request context, the response cache in front of execution, WebSocket sign-in."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from graphql import GraphQLError
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from auth.tokens import bearer_token_from_payload
from context import Context
from edge.authentication import AUDIT_REASON, CHANNEL, PRINCIPAL, failed_authentication_entry
from edge.keys import SERVICES
from errors import Unauthenticated
from resolvers.audit import AUDIT_UNAVAILABLE, record_operation
from edge.response_cache import cacheable_operation


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
