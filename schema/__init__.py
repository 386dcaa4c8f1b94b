"""Strawberry types of the Case Repository subgraph; `schema.build` assembles the schema."""
