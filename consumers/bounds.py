"""How long an event's ids, names and free text may be, checked at ingest before the event is validated.

storable.py keeps what the store cannot encode out; this keeps out what the store could hold but no producer
needs: a 60 KiB case id or task name would sit in every list, page, audit record and live update of its case.
The limits are data, by attribute or field name; a field not named here gets `OTHER_TEXT`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

# CloudEvents attributes (the case id is `subject`).
ENVELOPE_LIMITS: dict[str, int] = {"id": 256, "source": 256, "type": 64, "subject": 128, "specversion": 8}
IDENTIFIER = 128
NAME = 256
FREE_TEXT = 4_000
URL = 2_048
OTHER_TEXT = 1_024
# `details` of an action is the producer's own object: bounded as a whole, in bytes of its JSON.
DETAILS_BYTES = 16 * 1024
MAX_LIST_ITEMS = 200

DATA_LIMITS: dict[str, int] = {
    **dict.fromkeys(("id", "code", "productCode", "key", "formKey", "definitionKey", "instanceId", "assignee",
                     "candidateGroups", "engine", "service", "sourceSystem", "role", "kind", "status", "stage",
                     "state", "segment", "channel", "caseType", "branch", "contentType", "currency", "outcome",
                     "pesel", "phone", "sha256"), IDENTIFIER),
    **dict.fromkeys(("name", "title"), NAME),
    **dict.fromkeys(("summary", "reason", "message", "text", "description"), FREE_TEXT),
    **dict.fromkeys(("url", "bpmnUrl"), URL),
}


def bounds_problem(envelope: Mapping[str, Any]) -> str | None:
    """The first attribute or field longer than its bound, named by its path; None when all fit."""
    for name, value in envelope.items():
        if name == "data":
            continue
        limit = ENVELOPE_LIMITS.get(name, OTHER_TEXT)
        if isinstance(value, str) and len(value) > limit:
            return _too_long(name, value, limit)
    data = envelope.get("data")
    return _data_problem(data, "data", None) if isinstance(data, Mapping) else None


def _limit(field: str | None) -> int:
    if field is None:
        return OTHER_TEXT
    if field.endswith("Id"):
        return IDENTIFIER
    return DATA_LIMITS.get(field, OTHER_TEXT)


def _data_problem(value: Any, path: str, field: str | None) -> str | None:
    if isinstance(value, str):
        limit = _limit(field)
        return _too_long(path, value, limit) if len(value) > limit else None
    if isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS:
            return f"{path}: more than {MAX_LIST_ITEMS} items ({len(value)})"
        for index, item in enumerate(value):
            # The items of a list of strings (candidateGroups) are bounded as the list's field.
            if (problem := _data_problem(item, f"{path}[{index}]", field)) is not None:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "details" and item is not None:
                size = len(orjson.dumps(item, default=str))
                if size > DETAILS_BYTES:
                    return f"{path}.{key}: larger than {DETAILS_BYTES} bytes as JSON ({size})"
                continue
            if (problem := _data_problem(item, f"{path}.{key}", str(key))) is not None:
                return problem
    return None


def _too_long(path: str, value: str, limit: int) -> str:
    return f"{path}: longer than {limit} characters ({len(value)})"
