"""The request context: the only wiring between the app's services and the resolvers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from strawberry.dataloader import DataLoader

from consumers.dead_letters import DeadLetters
from consumers.pipeline import EventPipeline
from consumers.updates import UpdatesBus
from settings import Settings
from stores.cases import CaseStore
from stores.events import EventStore


@dataclass(frozen=True)
class Services:
    """Long-lived services, built once per app in server.py."""

    settings: Settings
    cases: CaseStore
    events: EventStore
    pipeline: EventPipeline
    bus: UpdatesBus
    dead_letters: DeadLetters


class Loaders:
    """Per-request DataLoaders: every path to a case, customer or task is batched into one store call."""

    def __init__(self, services: Services) -> None:
        cases = services.cases
        self.case: DataLoader[str, dict[str, Any] | None] = DataLoader(
            lambda ids: _in_order(cases.get_many(ids), ids))
        self.customer: DataLoader[str, dict[str, Any] | None] = DataLoader(
            lambda ids: _in_order(cases.latest_customer_snapshots(ids), ids))
        self.customer_summary: DataLoader[str, dict[str, Any]] = DataLoader(
            lambda ids: _in_order(cases.customer_summaries(ids), ids))
        self.case_by_task: DataLoader[str, dict[str, Any] | None] = DataLoader(self._cases_by_task(cases))

    def _cases_by_task(self, cases: CaseStore) -> Any:
        async def load(task_ids: list[str]) -> list[dict[str, Any] | None]:
            docs = await cases.with_tasks(task_ids)
            for doc in docs:
                # A task's `case` field then reads the case it came with, not the store again.
                self.case.prime(doc["_id"], doc)
            by_task = {task["id"]: doc for doc in docs for task in doc.get("tasks", ())}
            return [by_task.get(task_id) for task_id in task_ids]

        return load


async def _in_order(found: Any, ids: list[str]) -> list[Any]:
    by_id = await found
    return [by_id.get(i) for i in ids]


@dataclass
class Context:
    services: Services
    request: web.Request | None = None
    response: web.StreamResponse | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services)

    @property
    def settings(self) -> Settings:
        return self.services.settings
