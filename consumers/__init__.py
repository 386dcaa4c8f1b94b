"""Inbound case events: validation, the pure reducer, the ingest pipeline and the Kafka loops."""
