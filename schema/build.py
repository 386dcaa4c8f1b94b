"""Assembles the federated schema from the domain types."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLObjectType, GraphQLResolveInfoHelpers
from graphql.pyutils import Path
from strawberry.federation.schema import FederationAny
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext, Info
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.tools import merge_types

from access.guards import attach_policy, federation_guard
from schema.appointments import AppointmentMutations, CalendarQueries
from schema.audit import AuditOperation, AuditQueries
from schema.cases import Case, CaseQueries, Document, Participant
from schema.customers import Customer, CustomerQueries
from schema.document_caches import DOCUMENT_CACHE_SIZE, ParserCacheWithErrors, ValidationCacheByIdentity
from schema.entities import distinct_entities
from schema.errors import error_codes, log_errors
from schema.events import EventMutations
from schema.extension_runner import HookRunner
from schema.fast_execution import cached_subfields, execute_fields_fast, plans_of
from schema.incidents import IncidentMutations
from schema.limits import QueryLimits, limit_extensions
from schema.notes import NoteMutations
from schema.panel import PanelMutations, PanelQueries, PanelSubscriptions
from schema.principal import PrincipalQueries
from schema.notifications import NotificationSubscriptions
from schema.subscriptions import Subscription as CaseSubscriptions
from schema.task_claims import TaskMutations
from schema.tasks import Task, TaskQueries
from schema.terms import NegotiatedTerms, NegotiatedTermsVersion, TermsMutations, TermsQueries


# Each domain owns its root fields; the schema only lists the domains (field order follows this order).
Query = merge_types("Query", (PrincipalQueries, CaseQueries, CustomerQueries, TaskQueries, TermsQueries,
                              CalendarQueries, AuditQueries, PanelQueries))
Mutation = merge_types("Mutation", (EventMutations, TaskMutations, IncidentMutations, TermsMutations, NoteMutations,
                                    AppointmentMutations, PanelMutations))
Subscription = merge_types("Subscription", (CaseSubscriptions, NotificationSubscriptions, PanelSubscriptions))


class FreshPerEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, without two things it keeps that outlive their use:
    - the field memo it shares across a subscription's events, growing ~2.4 MB per 1,000 pushes;
    - the reference cycle of its `async_helpers` (bound methods of the executor, stored on it). Everything an
      execution built hangs off the executor (its context, loaders, result lists: ~184 objects for a case detail),
      so every request left that much for the garbage collector to find, where reference counting now frees it
      as the request ends. Under a fan-out the young collections this forced were each an 8-17 ms stop of all
      pushes (issue 14, R6 at 100 subscribers on each of 100 cases)."""

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor

    @property  # type: ignore[override]
    def async_helpers(self) -> GraphQLResolveInfoHelpers:
        helpers = self.__dict__.get("_async_helpers")
        if helpers is not None:
            return helpers
        # Bound to this executor (a per-event copy: to the copy); both methods use only state the copies share.
        return GraphQLResolveInfoHelpers(gather=self.gather_async_work, track=self.track_async_work)

    @async_helpers.setter
    def async_helpers(self, helpers: GraphQLResolveInfoHelpers) -> None:
        if getattr(helpers.gather, "__self__", None) is self and getattr(helpers.track, "__self__", None) is self:
            return  # graphql-core's own: built on each read instead of kept (the cycle)
        self.__dict__["_async_helpers"] = helpers


class CaseRepositoryExecutor(FreshPerEventExecutor):
    """Trivial leaf fields completed in place and selections collected once per parsed operation
    (schema/fast_execution.py); the rest as graphql-core does it."""

    def execute_fields(self, parent_type: GraphQLObjectType, source_value: Any, path: Path | None,
                       grouped_field_set: Any, position_context: Any) -> Any:
        # Strawberry always hands over a manager; one with middlewares (an extension's `resolve`) sees every field.
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        return execute_fields_fast(self, plans_of(self.schema), parent_type, source_value, path, grouped_field_set,
                                   position_context)

    def collect_subfields(self, return_type: GraphQLObjectType, field_details_list: Any) -> Any:
        collected = cached_subfields(self, return_type, field_details_list)
        return super().collect_subfields(return_type, field_details_list) if collected is None else collected


class CaseRepositorySchema(strawberry.federation.Schema):
    def create_extensions_runner(self, execution_context: ExecutionContext,
                                 extensions: list[SchemaExtension]) -> HookRunner:
        return HookRunner(execution_context, extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        log_errors(errors)

    # Same signature as Strawberry's: the `_entities` field is built from it.
    def entities_resolver(self, info: Info, representations: list[FederationAny]) -> list[FederationAny]:
        return distinct_entities(lambda distinct: super(CaseRepositorySchema, self).entities_resolver(info, distinct),
                                 representations)


def assemble_schema(*, expose_internal_errors: bool = True, describe_schema: bool = True,
                    guards: Sequence[Any] = (),
                    executor: type[FreshPerEventExecutor] = CaseRepositoryExecutor) -> CaseRepositorySchema:
    """The federated schema over the domains' root fields; `guards` (limits, federation guard, audit) run
    between the parser and validation caches and the error codes."""
    return CaseRepositorySchema(
        query=Query, mutation=Mutation, subscription=Subscription, types=[Task],
        federation_version="2.5",
        extensions=[
            lambda: ParserCacheWithErrors(maxsize=DOCUMENT_CACHE_SIZE), ValidationCacheByIdentity,
            *guards, error_codes(expose_internal_errors, describe_schema),
        ],
        execution_context_class=executor,
    )


def build_schema(*, expose_internal_errors: bool = True, introspection: bool = True,
                 limits: QueryLimits | None = None,
                 executor: type[FreshPerEventExecutor] = CaseRepositoryExecutor) -> CaseRepositorySchema:
    """The served schema: the access policy attached to its fields, and every guard in place. With
    `executor=FreshPerEventExecutor` every field takes graphql-core's own path (tests compare the two)."""
    attach_policy(root_types=[Query, Mutation, Subscription],
                  data_types=[Case, Customer, Participant, Document, NegotiatedTerms, NegotiatedTermsVersion])
    return assemble_schema(expose_internal_errors=expose_internal_errors, describe_schema=introspection,
                           executor=executor, guards=[
        *limit_extensions(limits or QueryLimits(), introspection=introspection),
        # Audit wraps the error codes, so the record sees the final code of every error.
        federation_guard(introspection), AuditOperation,
    ])
