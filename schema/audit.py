"""The audit trail for auditors, and the extension that audits every operation when it ends."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError, OperationType
from strawberry.extensions import SchemaExtension
from strawberry.types import Info

from access.operations import operation_roots
from errors import DomainError
from resolvers import audit as audit_rules
from resolvers.audit import AUDIT_UNAVAILABLE, record_operation
from schema.connections import Connection, connection_from_page

_DENIALS = {"FORBIDDEN", "UNAUTHENTICATED", "QUERY_TOO_COMPLEX"}
# Root fields that read nothing of a case or a customer: not worth a record each.
_UNAUDITED_ROOTS = frozenset({"__typename", "__schema", "__type", "_service"})


@strawberry.type
class AuditChange:
    field: str
    old: strawberry.scalars.JSON | None
    new: strawberry.scalars.JSON | None
    case_id: strawberry.ID | None


@strawberry.type
class AuditRecord:
    id: strawberry.ID
    at: datetime
    actor: str
    actor_name: str | None = strawberry.field(
        description="Who, in people's words: the token's preferred_username; for events, their source systems.")
    recipients: list[str] = strawberry.field(
        description="A subscription push's recipients, each once, as `actor` names a caller (the token's subject): "
                    "a push to several subscribers is one record, whose actor is \"subscribers\". Empty for any "
                    "other record.")
    action: str
    operation: str | None
    case_ids: list[strawberry.ID]
    customer_ids: list[strawberry.ID]
    fields: list[str]
    event_ids: list[strawberry.ID]
    changes: list[AuditChange]
    channel: str | None
    reason: str | None
    outcome: str
    hash: str
    request_id: str | None = strawberry.field(
        default=None, description="The X-Request-Id of the request that wrote it (also in that request's access log "
                                  "line); none for records written outside a request, e.g. by the Kafka consumer.")

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> AuditRecord:
        return cls(
            id=str(doc["_id"]), at=doc["at"], actor=doc["actor"], actor_name=doc.get("actorName"),
            recipients=doc.get("recipients") or [], action=doc["action"],
            operation=doc.get("operation"), case_ids=doc.get("caseIds") or [],
            customer_ids=doc.get("customerIds") or [], fields=doc.get("fields") or [],
            event_ids=doc.get("eventIds") or [], channel=doc.get("channel"), reason=doc.get("reason"),
            outcome=doc["outcome"], hash=doc["hash"], request_id=doc.get("requestId"),
            changes=[AuditChange(field=c.get("field", ""), old=c.get("old"), new=c.get("new"), case_id=c.get("caseId"))
                     for c in doc.get("changes") or []],
        )


@strawberry.type
class AuditQueries:
    @strawberry.field(description="The tamper-evident audit trail, newest first.")
    async def audit_trail(
        self, info: Info, case_id: strawberry.ID | None = None, customer_id: strawberry.ID | None = None,
        actor: Annotated[str | None, strawberry.argument(
            description="The records of this caller (a token's subject): as the actor, or among a push's "
                        "recipients.")] = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[AuditRecord]:
        page = await audit_rules.audit_trail(info.context, case_id=case_id, customer_id=customer_id, actor=actor,
                                             first=first, after=after)
        return connection_from_page(page, AuditRecord.from_doc)


def _outcome(errors: list[GraphQLError] | None) -> str:
    if not errors:
        return "ok"
    codes = {(e.extensions or {}).get("code") for e in errors}
    # Before ErrorCodes has run (stream results), the domain error itself tells a refusal.
    codes |= {e.original_error.code for e in errors if isinstance(e.original_error, DomainError)}
    return "denied" if codes & _DENIALS else "error"


class AuditOperation(SchemaExtension):
    """One append-only record per query or mutation; if it cannot be written, the caller gets no data.

    A subscription leaves one record per push (or refusal), written after the push's selection has run, so it
    names every case and sensitive field that push showed; a push that cannot be recorded is not sent. The
    records of one event's pushes to many subscribers arrive together and go into one store write (the audit
    store's group commit), each push still waiting for its own record.
    """

    async def on_stream_result(self, result: Any) -> AsyncIterator[None]:  # type: ignore[override]
        execution = self.execution_context
        context = execution.context
        _, roots = operation_roots(execution.graphql_document, execution.operation_name)
        recorded = await record_operation(context, action="READ", outcome=_outcome(getattr(result, "errors", None)),
                                          operation=execution.operation_name or ",".join(sorted(roots)) or None)
        context.begin_operation()  # the next push starts a record of its own
        if not recorded:
            result.data = None
            result.errors = [GraphQLError(AUDIT_UNAVAILABLE, extensions={"code": "INTERNAL"})]
        yield

    async def on_operation(self) -> AsyncIterator[None]:  # type: ignore[override]
        self.execution_context.context.begin_operation()
        yield
        execution = self.execution_context
        operation, roots = operation_roots(execution.graphql_document, execution.operation_name)
        result = execution.result
        outcome = _outcome(result.errors if result else None)
        if operation is OperationType.SUBSCRIPTION:
            return  # subscriptions audit each push, and a refusal, themselves
        if roots and roots <= _UNAUDITED_ROOTS and outcome == "ok":
            return  # reads no case or customer; a refused attempt is still recorded
        recorded = await record_operation(
            execution.context, action="WRITE" if operation is OperationType.MUTATION else "READ",
            operation=execution.operation_name or ",".join(sorted(roots)) or None, outcome=outcome,
        )
        if not recorded and result is not None:
            result.data = None
            result.errors = [GraphQLError(AUDIT_UNAVAILABLE, extensions={"code": "INTERNAL"})]
