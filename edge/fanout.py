"""Shared pushes of the case feeds: one execution per event for every subscriber who would see the same bytes.

Subscriptions to `caseUpdated` / `caseStatusChanged` over graphql-transport-ws join a `PushGroup` keyed by what
decides a push's bytes: the document, the operation, the variables and the caller's view (kind, roles, channel,
branch: the row scope and the field policy are functions of these alone), plus the channel and reason the audit
record names. The group runs one Strawberry subscription as its view (the same executor, extensions and errors as a
subscription of its own), and fans each result's serialized payload out to its members' socket outboxes, splicing
each member's subscription id into the `next` frame. Per member stay: the token's expiry (checked at every push, and
on a timer, which ends that member alone exactly as an expiring subscription of its own ends) and the recipient list
of the push's audit record: one record per push and group, naming every member it was sent to.
"""
from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import orjson
from graphql import FieldNode, GraphQLError, OperationType
from prometheus_client import Counter, Gauge
from strawberry.schema import BaseSchema
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from auth.principal import Principal
from context import Context
from edge.operations import chosen_operation
from edge.outbox import SocketOutbox
from errors import Unauthenticated
from resolvers.audit import AUDIT_UNAVAILABLE, record_operation
from schema.errors import classify
from stores.audit import AuditStore

GROUPS = Gauge("case_repository_push_groups", "Shared push groups (one execution per event each)")
MEMBERS = Gauge("case_repository_push_subscribers", "Subscriptions served by shared push groups")
EXECUTIONS = Counter("case_repository_push_executions_total", "Push selections executed for a group")
PUSHES = Counter("case_repository_pushes_total", "Pushes queued to subscribers of a group")

# Root fields whose pushes depend on the event and the caller's view only (no per-caller state in the selection).
SHARED_FEEDS = frozenset({"caseUpdated", "caseStatusChanged"})
# A group's own principal never expires: its members' tokens do, each on its own.
_NEVER = datetime(9000, 1, 1, tzinfo=timezone.utc)
# The audit actor of a push sent to several callers (each is named in `recipients`).
SEVERAL_SUBSCRIBERS = "subscribers"
EXPIRED_MESSAGE = "the token expired; subscribe again with a fresh one"
# How a member's wait ends besides the group's last result: its token expired, or the stream simply ended.
EXPIRED, ENDED = object(), object()


@dataclasses.dataclass(frozen=True)
class SharedFeed:
    root: str
    # The audit record's `operation`, as the audit extension names it: the operation's name, else its root field.
    label: str


@functools.lru_cache(maxsize=512)
def shared_feed(query: str, operation_name: str | None) -> SharedFeed | None:
    """The root field when the operation is a subscription to one shared feed, else None (served on its own,
    which also gives a document that does not parse its stock error)."""
    found = chosen_operation(query, operation_name)
    if found is None:
        return None
    operation = found[1]
    selections = operation.selection_set.selections
    if operation.operation is not OperationType.SUBSCRIPTION or len(selections) != 1:
        return None
    root = selections[0]
    if not isinstance(root, FieldNode) or root.name.value not in SHARED_FEEDS:
        return None
    return SharedFeed(root.name.value, operation.name.value if operation.name else root.name.value)


def view_key(context: Context) -> tuple[Any, ...]:
    """What of the caller decides a push's bytes and its audit record, besides who they are."""
    p = context.principal
    assert p is not None
    return (p.kind, p.roles, p.channel, p.branch, p.case_id, p.customer_id, p.participant_id,
            context.channel, context.audit_reason)


def next_payload(result: ExecutionResult) -> bytes:
    """A result as the `payload` of a `next` message, exactly as Strawberry's handler builds it."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return orjson.dumps(payload)


class Member:
    """One subscription served by a group."""

    def __init__(self, subscription_id: str, principal: Principal, outbox: SocketOutbox) -> None:
        self.subscription_id = subscription_id
        self.principal = principal
        self.outbox = outbox
        # Set once: EXPIRED, ENDED, or the group's last result, one it could not share.
        self.ended: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.timer: asyncio.TimerHandle | None = None

    def end(self, outcome: Any) -> None:
        if not self.ended.done():
            self.ended.set_result(outcome)


class _RecipientsAudit:
    """The audit store as a group's pushes see it: each push's record names the members it is about to reach."""

    def __init__(self, store: AuditStore, group: PushGroup) -> None:
        self._store = store
        self._group = group

    async def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        recipients = self._group.admit_recipients()
        if not recipients:
            return entry  # every member's token expired this instant: the push reaches nobody
        subjects = {m.principal.subject for m in recipients}
        if len(subjects) > 1:
            entry = {**entry, "actor": SEVERAL_SUBSCRIBERS, "actorName": None}
        else:
            entry = {**entry, "actor": recipients[0].principal.subject,
                     "actorName": recipients[0].principal.username}
        # Subjects only, each once: a record naming 1,000 recipients stays cheap to hash and store.
        return await self._store.append({**entry, "recipients": sorted(subjects)})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class PushGroup:
    """Members sharing one execution per event."""

    def __init__(self, schema: BaseSchema, query: str, operation_name: str | None, variables: dict[str, Any] | None,
                 first: Context, forget: Callable[[PushGroup], None]) -> None:
        assert first.principal is not None
        self.members: dict[Member, None] = {}
        self._forget = forget
        self._recipients: list[Member] | None = None  # admitted by the audit record of the push under way
        services = dataclasses.replace(first.services, audit=_RecipientsAudit(first.services.audit, self))
        self.context = Context(services=services, principal=dataclasses.replace(first.principal, expires_at=_NEVER),
                               channel=first.channel, audit_reason=first.audit_reason)
        stream = self._run(schema, query, operation_name, variables)
        # Its own context: the record of a push is nobody's request (its recipients are named in the record).
        self._task = asyncio.create_task(stream, context=contextvars.Context())
        GROUPS.inc()

    def join(self, member: Member) -> None:
        self.members[member] = None
        MEMBERS.inc()

    def leave(self, member: Member) -> None:
        if member in self.members:
            del self.members[member]
            MEMBERS.dec()
        if not self.members:
            self._close()

    def admit_recipients(self) -> list[Member]:
        """The members this push goes to: each authorized now (the row scope is the group's; the token its own)."""
        now = datetime.now(timezone.utc)
        admitted = []
        for member in list(self.members):
            if member.principal.is_expired(now):
                member.end(EXPIRED)
            elif not member.outbox.closed:  # a socket closed for being too slow is shown nothing more
                admitted.append(member)
        self._recipients = admitted
        return admitted

    async def _run(self, schema: BaseSchema, query: str, operation_name: str | None,
                   variables: dict[str, Any] | None) -> None:
        last: Any = ENDED
        try:
            stream = await schema.stream(query, variable_values=variables, context_value=self.context,
                                         operation_name=operation_name)
            async with aclosing(stream):
                first = True
                async for result in stream:
                    recipients = self._recipients if self._recipients is not None else self.admit_recipients()
                    self._recipients = None
                    if (first and isinstance(result, PreExecutionError)) or not isinstance(result, ExecutionResult):
                        last = result  # each member answers it as a subscription of its own would
                        return
                    first = False
                    EXECUTIONS.inc()
                    payload = next_payload(result)
                    for member in recipients:
                        if member in self.members:
                            member.outbox.push(member.subscription_id, payload)
                    PUSHES.inc(len(recipients))
        finally:
            self._close()
            for member in list(self.members):
                member.end(last)

    def _close(self) -> None:
        if self._forget is not None:
            forget, self._forget = self._forget, None  # type: ignore[assignment]
            forget(self)
            GROUPS.dec()
            if self._task is not asyncio.current_task():
                self._task.cancel()


class PushFanOut:
    """The process's push groups, one per (document, operation, variables, view)."""

    def __init__(self, schema: BaseSchema) -> None:
        self._schema = schema
        self._groups: dict[tuple[Any, ...], PushGroup] = {}

    def group_key(self, query: str, operation_name: str | None, variables: dict[str, Any] | None,
                  context: Context) -> tuple[Any, ...] | None:
        """None when the operation is not served by a group."""
        if context.principal is None or shared_feed(query, operation_name) is None:
            return None
        try:
            arguments = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        return (query, operation_name, arguments, view_key(context))

    async def serve(self, key: tuple[Any, ...], subscription_id: str, query: str, operation_name: str | None,
                    variables: dict[str, Any] | None, context: Context, outbox: SocketOutbox,
                    answer: Callable[[Any], Awaitable[None]]) -> None:
        """Serve one subscription from its group until the group's stream ends or the member's token expires;
        `answer` sends a result the group could not share (its first, pre-execution error, or the expiry)."""
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = PushGroup(self._schema, query, operation_name, variables, context,
                                                  lambda g: self._groups.pop(key, None) if self._groups.get(key) is g
                                                  else None)
        principal = context.principal
        assert principal is not None
        member = Member(subscription_id, principal, outbox)
        remaining = (principal.expires_at - datetime.now(timezone.utc)).total_seconds()
        member.timer = asyncio.get_running_loop().call_later(max(remaining, 0), member.end, EXPIRED)
        group.join(member)
        try:
            outcome = await member.ended
        finally:
            member.timer.cancel()
            group.leave(member)
        if outcome is EXPIRED:
            feed = shared_feed(query, operation_name)
            await answer(await expired(context, feed.label if feed else None))
        elif outcome is not ENDED:
            await answer(outcome)


async def expired(context: Context, operation: str | None) -> ExecutionResult:
    """What a subscription of its own sends when its token expires, with its refusal on record."""
    if not await record_operation(context, action="READ", outcome="denied", operation=operation):
        return ExecutionResult(data=None, errors=[GraphQLError(AUDIT_UNAVAILABLE, extensions={"code": "INTERNAL"})])
    error = Unauthenticated(EXPIRED_MESSAGE)
    return ExecutionResult(data=None, errors=[classify(GraphQLError(str(error), original_error=error),
                                                        expose_internal=False)])

