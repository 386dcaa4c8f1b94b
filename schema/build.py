"""Assembles the federated schema from the domain types."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import Info

from access.guards import attach_policy, federation_guard
from errors import Unauthenticated
from resolvers import audit as audit_rules
from resolvers import cases as case_rules
from resolvers import customers as customer_rules
from resolvers import events as event_rules
from schema.audit import AuditOperation, AuditRecord
from schema.cases import Case, CaseFilter, CaseOrderInput, Participant, cases_connection
from schema.connections import Connection, connection_from_page
from schema.customers import Customer
from schema.errors import error_codes, log_errors
from schema.limits import QueryLimits, limit_extensions
from schema.principal import Principal
from schema.events import CaseEventInput, PublishResult, PublishStatus
from schema.subscriptions import Subscription
from schema.tasks import Task


@strawberry.type
class Query:
    @strawberry.field(description="Who the caller is: principal, roles, channel.")
    def me(self, info: Info) -> Principal:
        if info.context.principal is None:
            raise Unauthenticated("me needs a signed-in caller")
        return Principal.from_principal(info.context.principal, info.context.channel)

    @strawberry.field
    async def case(self, info: Info, id: strawberry.ID) -> Case | None:
        doc = await case_rules.get_case(info.context, id)
        return Case.from_doc(doc) if doc else None

    @strawberry.field
    async def cases(
        self, info: Info, filter: CaseFilter | None = None, order_by: CaseOrderInput | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[Case]:
        return await cases_connection(info, filter.to_criteria() if filter else None, order_by, first, after)

    @strawberry.field(description="The customer 360 view.")
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        doc = await customer_rules.get_customer(info.context, id)
        return Customer.from_doc(doc) if doc else None

    @strawberry.field(description="The customer 360 found by PESEL (looked up by a keyed blind index).")
    async def customer_by_pesel(self, info: Info, pesel: str) -> Customer | None:
        doc = await customer_rules.find_customer_by_pesel(info.context, pesel)
        return Customer.from_doc(doc) if doc else None

    @strawberry.field(description="The tamper-evident audit trail, newest first.")
    async def audit_trail(
        self, info: Info, case_id: strawberry.ID | None = None, customer_id: strawberry.ID | None = None,
        actor: str | None = None, first: int | None = None, after: str | None = None,
    ) -> Connection[AuditRecord]:
        page = await audit_rules.audit_trail(info.context, case_id=case_id, customer_id=customer_id, actor=actor,
                                             first=first, after=after)
        return connection_from_page(page, AuditRecord.from_doc)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Ingest one CloudEvent through the same pipeline as Kafka.")
    async def publish_case_event(self, info: Info, event: CaseEventInput) -> PublishResult:
        result = await event_rules.publish_case_event(
            info.context, event_id=event.id, source=event.source, event_type=event.type,
            subject=event.subject, time=event.time, sequence=event.sequence, data=event.data,
        )
        return PublishResult(event_id=result.event_id, status=PublishStatus(result.status.value))


class ParserCacheWithErrors(ParserCache):
    """ParserCache, except that a document that does not parse is left to Strawberry's own parse step,
    whose error handling gives the client a coded error (over WebSocket too)."""

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        try:
            execution.graphql_document = self.cached_parse_document(execution.query, **execution.parse_options)
        except GraphQLError:
            pass
        yield


class FreshPerEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core shares a field memo across a subscription's events, growing ~2.4 MB per 1,000 pushes."""

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor


class CaseRepositorySchema(strawberry.federation.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        log_errors(errors)


def build_schema(*, expose_internal_errors: bool = True, introspection: bool = True,
                 limits: QueryLimits | None = None) -> CaseRepositorySchema:
    attach_policy(root_types=[Query, Mutation, Subscription], data_types=[Customer, Participant])
    return CaseRepositorySchema(
        query=Query, mutation=Mutation, subscription=Subscription, types=[Task],
        federation_version="2.5",
        extensions=[
            lambda: ParserCacheWithErrors(maxsize=512), lambda: ValidationCache(maxsize=512),
            *limit_extensions(limits or QueryLimits(), introspection=introspection),
            # Audit wraps the error codes, so the record sees the final code of every error.
            federation_guard(introspection), AuditOperation, error_codes(expose_internal_errors),
        ],
        execution_context_class=FreshPerEventExecutor,
    )
