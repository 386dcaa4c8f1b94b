"""Relaying the commands a terms approval staged in its document: at once by the writer, later by the relay loop.

Order (at least once, never lost): put the staged messages in the outbox (keyed by CloudEvent id, so a copy
staged again is not sent twice), send, and only then clear them from the document, conditionally on its
`revision`. A writer that stops after staging leaves `stagedAt` set; every relay pass (`sweep_terms`) takes over
documents staged longer than ABANDONED_AFTER ago.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from consumers.relay import OutboxRelay
from consumers.staging import ABANDONED_AFTER, SWEEP_LIMIT
from stores.outbox import Message
from stores.terms import TermsStore


async def relay_terms(terms: TermsStore, relay: OutboxRelay, docs: Sequence[dict[str, Any]]) -> None:
    """Send what these terms documents (as written) staged, then forget it in the documents."""
    docs = [d for d in docs if d.get("outbox")]
    if not docs:
        return
    await relay.add_and_send([Message.from_staged(e) for doc in docs for e in doc["outbox"] if e["kind"] == "message"])
    await terms.clear_staged([(doc["_id"], doc["revision"]) for doc in docs])


async def sweep_terms(terms: TermsStore, relay: OutboxRelay) -> None:
    """Relay what writers that stopped left staged (the relay loop runs this on every pass)."""
    older_than = datetime.now(timezone.utc) - ABANDONED_AFTER
    await relay_terms(terms, relay, await terms.staged(older_than, SWEEP_LIMIT))
