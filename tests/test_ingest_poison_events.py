"""An event that fails every time it is applied (not an outage) is dead-lettered; its partition goes on."""
from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka.errors import MessageSizeTooLargeError
from pymongo.errors import AutoReconnect, DocumentTooLarge

from consumers.kafka_ingest import IngestConsumer
from stores.case_scope import EVERYTHING
from tests.factories import case_created_data, envelope
from tests.ingest_fakes import PARTITION, Consumer, Letters, Message


def _message(offset: int, case_id: str) -> Message:
    raw = envelope("case.created", case_id, case_created_data(), event_id=f"evt-{case_id}")
    return Message(offset, orjson.dumps(raw), case_id.encode())


@pytest.fixture
def loop(settings, services, monkeypatch) -> tuple[IngestConsumer, Consumer, Letters]:
    real_ingest = services.pipeline.ingest

    async def ingest(events, **kwargs):
        if any(e.case_id == "CASE-POISON" for e in events):
            raise ValueError("a bug that fails this event every time")
        return await real_ingest(events, **kwargs)

    monkeypatch.setattr(services.pipeline, "ingest", ingest)
    letters, consumer = Letters(), Consumer(end=3)
    ingest_loop = IngestConsumer(settings, services.pipeline, letters)
    ingest_loop._consumer = consumer
    return ingest_loop, consumer, letters


async def test_a_poison_event_is_dead_lettered_and_the_others_applied(loop, services) -> None:
    ingest_loop, consumer, letters = loop
    batch = {PARTITION: [_message(0, "CASE-1"), _message(1, "CASE-POISON"), _message(2, "CASE-2")]}

    await ingest_loop._apply(batch)

    stored = await services.cases.get_many(["CASE-1", "CASE-2", "CASE-POISON"], scope=EVERYTHING)
    assert sorted(stored) == ["CASE-1", "CASE-2"]
    assert [(orjson.loads(p)["subject"], r) for p, r in letters.sent] == [
        ("CASE-POISON", "ValueError: could not be applied; see the log")]
    assert consumer.committed == {PARTITION: 3}


async def test_an_outage_is_not_mistaken_for_a_poison_event(loop, services, monkeypatch) -> None:
    ingest_loop, consumer, letters = loop

    async def store_down(*args: Any, **kwargs: Any) -> Any:
        raise AutoReconnect("primary stepped down")

    monkeypatch.setattr(services.cases, "get_for_update", store_down)

    with pytest.raises(AutoReconnect):
        await ingest_loop._apply({PARTITION: [_message(0, "CASE-1")]})

    assert (letters.sent, consumer.committed) == ([], {})


@pytest.mark.parametrize(("error", "reason"), [
    (MessageSizeTooLargeError("The message is 1200000 bytes when serialized"),
     "MessageSizeTooLargeError: message larger than max_request_size"),
    (DocumentTooLarge("BSON document too large"), "DocumentTooLarge: document larger than MongoDB's BSON size limit"),
])
async def test_a_failure_that_never_heals_is_dead_lettered_with_its_reason_not_retried_forever(
    loop, services, monkeypatch, error: Exception, reason: str,
) -> None:
    ingest_loop, consumer, letters = loop
    real_ingest = services.pipeline.ingest

    async def ingest(events, **kwargs):
        if any(e.case_id == "CASE-BIG" for e in events):
            raise error
        return await real_ingest(events, **kwargs)

    monkeypatch.setattr(services.pipeline, "ingest", ingest)

    await ingest_loop._apply({PARTITION: [_message(0, "CASE-1"), _message(1, "CASE-BIG"), _message(2, "CASE-2")]})

    stored = await services.cases.get_many(["CASE-1", "CASE-2", "CASE-BIG"], scope=EVERYTHING)
    assert sorted(stored) == ["CASE-1", "CASE-2"]
    assert [(orjson.loads(p)["subject"], r) for p, r in letters.sent] == [("CASE-BIG", reason)]
    assert consumer.committed == {PARTITION: 3}
