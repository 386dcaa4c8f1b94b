"""CloudEvents in binary mode (`ce_*` headers, the data as the JSON value) are applied like structured ones."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from auth.dev_tokens import mint_dev_token
from settings import Settings
from stores.database import Database
from tests.factories import case_created_data
from tests.kafka.kit import KafkaProbe, Repository, Topics, services_of, wait_for_versions

pytestmark = pytest.mark.kafka

CASE = "CASE-BINARY-1"


def _binary_headers(event_id: str, event_type: str, sequence: int) -> list[tuple[str, bytes]]:
    attributes = {"specversion": "1.0", "id": event_id, "source": "bpms/mortgage", "type": event_type,
                  "subject": CASE, "time": f"2026-11-21T10:0{sequence}:00Z", "sequence": str(sequence)}
    return [(f"ce_{name}", value.encode()) for name, value in attributes.items()] + [
        ("content-type", b"application/json")]


async def test_a_binary_mode_event_is_applied_and_readable_over_graphql(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
) -> None:
    client = await repository.start_app(kafka_settings, database)
    data: list[tuple[str, str, dict[str, Any]]] = [
        ("evt-bin-1", "case.created", case_created_data(title="Mortgage (binary mode)")),
        ("evt-bin-2", "case.status_changed", {"status": "IN_REVIEW", "stage": "ANALYSIS"}),
    ]

    # when two events arrive in binary mode
    for sequence, (event_id, event_type, payload) in enumerate(data, start=1):
        await probe.produce(topics.events, orjson.dumps(payload), CASE, _binary_headers(event_id, event_type, sequence))

    # then both are applied, and an API client reads the case as they describe it (history newest first)
    await wait_for_versions(services_of(client), {CASE: 2})
    token = mint_dev_token(kafka_settings, "back-office")
    response = await client.post("/graphql", headers={"Authorization": f"Bearer {token}"}, json={
        "query": "query ($id: ID!) { case(id: $id) { id title status stage version "
                 "history { edges { node { id summary } } } } }",
        "variables": {"id": CASE}})
    assert await response.json() == {"data": {"case": {
        "id": CASE, "title": "Mortgage (binary mode)", "status": "IN_REVIEW", "stage": "ANALYSIS", "version": 2,
        "history": {"edges": [
            {"node": {"id": "evt-bin-2", "summary": "Status changed to IN_REVIEW, stage ANALYSIS"}},
            {"node": {"id": "evt-bin-1", "summary": "Case opened: Mortgage (binary mode)"}},
        ]},
    }}}
