"""Old -> new of every field a write changed, for the audit record of that write."""
from __future__ import annotations

from typing import Any

# Bookkeeping and derived fields: not what an auditor asks about.
# `sealedText` holds the sealed originals of what free text had redacted: the redacted text itself is the change.
_SKIPPED = frozenset({"_id", "stamps", "outbox", "writeId", "stagedAt", "updatedAt", "hasOpenIncident",
                      "isOpen", "customerId", "replayable", "sealedText"})
_ITEM_SKIPPED = frozenset({"id", "stamps", "version", "outbox", "stagedAt", "_id", "caseId", "caseType", "branch",
                           "restricted", "customerId", "sealedText"})
# Sealed at rest: the audit says that they changed, never what they are.
_SECRET = frozenset({"pesel", "phone", "peselIndex"})
SECRET_VALUE = "<sealed>"
ITEM_LISTS = ("participants", "documents", "tasks", "incidents", "consents", "offers", "processes", "forms")


def field_changes(case_id: str, before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """[{caseId, field, old, new}] for each field that differs, items named `tasks[T-1].state`."""
    before = before or {}
    changes: list[dict[str, Any]] = []

    def record(name: str, old: Any, new: Any) -> None:
        if old == new:
            return
        leaf = name.rsplit(".", 1)[-1]
        if leaf in _SECRET:
            old, new = (None if old is None else SECRET_VALUE), (None if new is None else SECRET_VALUE)
        changes.append({"caseId": case_id, "field": name, "old": old, "new": new})

    for key in sorted(set(before) | set(after)):
        if key in _SKIPPED:
            continue
        old, new = before.get(key), after.get(key)
        if key in ITEM_LISTS:
            _item_changes(key, old or [], new or [], record)
        elif isinstance(old, dict) or isinstance(new, dict):
            old, new = old or {}, new or {}
            for sub in sorted(set(old) | set(new)):
                if sub not in ("stamps", "sealedText"):
                    record(f"{key}.{sub}", old.get(sub), new.get(sub))
        else:
            record(key, old, new)
    return changes


def _item_changes(list_name: str, old: list[dict[str, Any]], new: list[dict[str, Any]], record: Any) -> None:
    old_items = {item.get("id", index): item for index, item in enumerate(old)}
    for index, item in enumerate(new):
        item_id = item.get("id", index)
        previous = old_items.get(item_id, {})
        for key in sorted((set(previous) | set(item)) - _ITEM_SKIPPED):
            record(f"{list_name}[{item_id}].{key}", previous.get(key), item.get(key))
