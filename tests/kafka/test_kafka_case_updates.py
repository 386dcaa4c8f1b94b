"""After applying, the repository publishes `case.state_changed` to `case-updates`: keyed by case id,
`sequence` == version, the new state without PESELs and phone numbers."""
from __future__ import annotations

import orjson
import pytest

from settings import Settings
from stores.database import Database
from tests.factories import case_created_data, envelope
from tests.kafka.kit import KafkaProbe, Repository, Topics, wait_for_versions

pytestmark = pytest.mark.kafka

CASE = "CASE-UPDATES-1"
CO_BORROWER = {"id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak", "phone": "+48602300400",
               "pesel": "90072412344"}
SENSITIVE = [b"85031207819", b"90072412344", b"+48601200300", b"+48602300400"]


async def test_each_applied_change_is_published_keyed_by_case_with_its_version_and_no_sensitive_data(
    kafka_settings: Settings, topics: Topics, database: Database, probe: KafkaProbe, repository: Repository,
) -> None:
    instance = await repository.start_instance(kafka_settings, database)
    stream = [
        envelope("case.created", CASE, case_created_data(), sequence=1),
        envelope("case.participant_added", CASE, {"participant": CO_BORROWER}, sequence=2),
        envelope("case.status_changed", CASE, {"status": "IN_REVIEW", "stage": "ANALYSIS"}, sequence=3),
    ]

    # when a case's events are applied one after another
    for event in stream:
        await probe.produce_events(topics.events, [event])
        await wait_for_versions(instance.services, {CASE: int(event["sequence"])})

    # then case-updates carries one structured CloudEvent per applied change, keyed by the case id
    published = await probe.read(topics.updates, 3)
    assert [(m.key, list(m.headers)) for m in published] == [
        (CASE.encode(), [("content-type", b"application/cloudevents+json")])] * 3
    events = [orjson.loads(m.value) for m in published]
    assert [{k: e[k] for k in ("specversion", "id", "source", "type", "subject", "sequence", "datacontenttype",
                               "previousstatus")} for e in events] == [
        {"specversion": "1.0", "id": f"{CASE}:{n}", "source": "case-repository", "type": "case.state_changed",
         "subject": CASE, "sequence": str(n), "datacontenttype": "application/json", "previousstatus": previous}
        for n, previous in [(1, None), (2, "NEW"), (3, "NEW")]
    ]
    # and the data is the new state at that version, without the customer's or participants' PESEL or phone
    assert [(e["data"]["version"], e["data"]["status"]) for e in events] == [(1, "NEW"), (2, "NEW"), (3, "IN_REVIEW")]
    final = events[-1]["data"]
    assert final["id"] == CASE
    assert final["customer"] == {"id": "CUST-1", "name": "Anna Kowalska", "segment": "RETAIL"}
    assert final["participants"] == [
        {"id": "P-1", "role": "PRIMARY_BORROWER", "name": "Anna Kowalska"},
        {"id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak"},
    ]
    assert [secret for m in published for secret in SENSITIVE if secret in m.value] == []
