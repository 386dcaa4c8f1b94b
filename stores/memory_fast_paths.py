"""Cheaper drop-ins for mongomock's per-value helpers and its sort: each returns what the one it replaces returns.

mongomock walks every document it stores or hands back with general helpers that test each value against several
types (and `copy.deepcopy`, with its memo and dispatch, for each update's snapshot), and sorts with a Python
`__lt__` per comparison. Our documents are trees of plain `dict`s, `list`s, strings, numbers, booleans, `None` and
datetimes, so each drop-in handles exactly those types itself (an exact `type(...)` check: a subclass such as
`OrderedDict` or `SON` is not one of them) and hands every other value — `Timestamp`, `ObjectId`, `Decimal128`,
subclasses, tuples — to mongomock's own function. One liberty, with an immutable value: a copy keeps a
datetime itself where `copy.copy`/`copy.deepcopy` made an equal new one. `tests/test_memory_fast_paths.py`
compares each drop-in with the original over a table of values.

Measured on this (shared, 2-core) machine, CPU time in process, least of 5 alternating runs, before → after:
- `insert_many` of 32 audit records (~20 fields, one a list of 60 strings): 52 → 29 µs per record
  (`patch_datetime_awareness_in_document` was ~60 % of an insert);
- one single-event `EventPipeline.ingest` (850, onto 300 cases): 3.6 → 2.7 ms, the store thread's 2.6 → 1.9 ms
  (the update's `copy.deepcopy` snapshot of the case document was a third of the store's time);
- one case-detail `schema.execute` (bench R1's query): 3.6 → 2.8 ms, the store thread's 2.45 → 1.9 ms (sorting,
  projections recombined per document, copies of datetimes).
"""
from __future__ import annotations

import copy
import types
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import mongomock.collection
import mongomock.filtering
import mongomock.helpers

# Values every replaced helper returns as they are: mongomock's helpers return them unchanged, and `copy.copy` /
# `copy.deepcopy` return these very objects (`copy._deepcopy_atomic`, `copy._copy_immutable`).
_PLAIN = frozenset({str, int, float, bool, bytes, type(None)})


def _original(function: Any) -> Any:
    return getattr(function, "__wrapped__", function)


_patch_datetime_awareness = _original(mongomock.helpers.patch_datetime_awareness_in_document)
_make_datetime_timezone_aware = _original(mongomock.helpers.make_datetime_timezone_aware_in_document)
_copy_field = _original(mongomock.collection._copy_field)
_deepcopy = copy.deepcopy
_get_dataset = _original(mongomock.collection.Collection._get_dataset)
_combine_projection_spec = _original(mongomock.collection._combine_projection_spec)
_UTC = mongomock.helpers.utc


def patch_datetime_awareness_in_document(value: Any) -> Any:
    """mongomock's: every `dict` and `list` (and tuple, as a list) rebuilt, datetimes made naive UTC in ms."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {k: v if type(v) in _PLAIN else patch_datetime_awareness_in_document(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        if set(map(type, value)) <= _PLAIN:  # a list of strings, say: one C-speed check, one copy
            return list(value)
        return [item if type(item) in _PLAIN else patch_datetime_awareness_in_document(item) for item in value]
    if kind is datetime:  # mongomock's own lines: naive UTC, milliseconds
        mongo_us = (value.microsecond // 1000) * 1000
        if value.tzinfo:
            return (value - value.utcoffset()).replace(tzinfo=None, microsecond=mongo_us)
        return value.replace(microsecond=mongo_us)
    return _patch_datetime_awareness(value)


def make_datetime_timezone_aware_in_document(value: Any) -> Any:
    """mongomock's: every `dict` and `list` rebuilt (as plain ones), datetimes given `tzinfo=utc`."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is datetime:
        return value.replace(tzinfo=_UTC)
    if kind is dict:
        return {k: v if type(v) in _PLAIN else make_datetime_timezone_aware_in_document(v) for k, v in value.items()}
    if kind is list:
        if set(map(type, value)) <= _PLAIN:
            return list(value)
        return [item if type(item) in _PLAIN else make_datetime_timezone_aware_in_document(item) for item in value]
    return _make_datetime_timezone_aware(value)


def copy_field(obj: Any, container: Any) -> Any:
    """mongomock's `_copy_field` (a find's copy of a stored value): lists and dicts rebuilt, the rest `copy.copy`."""
    kind = type(obj)
    if kind in _PLAIN:
        return obj  # what copy.copy returns for these
    if kind is datetime:
        # copy.copy makes an equal datetime; an immutable one serves as well (and our clients are tz_aware, so a
        # read replaces it with a new one right after: `make_datetime_timezone_aware_in_document`)
        return obj
    if kind is dict and container is dict:
        return {k: v if type(v) in _PLAIN else copy_field(v, dict) for k, v in obj.items()}
    if kind is list:
        if set(map(type, obj)) <= _PLAIN:
            return list(obj)
        return [item if type(item) in _PLAIN else copy_field(item, container) for item in obj]
    return _copy_field(obj, container)


# Sort keys whose order is Python's own: mongomock's `bson_compare` of two values of one of these types is `a < b`.
_NATIVE_ORDER = (frozenset({str}), frozenset({datetime}), frozenset({int}), frozenset({float}), frozenset({int, float}))
_ABSENT = object()


def get_dataset(self: Any, spec: Any, sort: Any, fields: Any, as_class: Any) -> Iterator[Any]:
    """mongomock's `Collection._get_dataset` (a find's matching, sorting and copying), sorting natively by a key
    that every document holds as a string, a datetime or a number (bool aside).

    mongomock sorts with a Python `__lt__` per comparison (`BsonComparable`, `bson_compare`); when every key has one
    of those types its `<` is the values' own, so `sorted` makes the same comparisons and keeps the same order,
    ties included. A dotted or `$` key, a missing field, a list or any other type: mongomock's own sort."""
    keys = list(sort.items() if isinstance(sort, dict) else sort or ())
    if not keys or any(not isinstance(k, str) or k.startswith("$") or "." in k for k, _ in keys):
        yield from _get_dataset(self, spec, sort, fields, as_class)
        return
    dataset = list(self._iter_documents(spec))
    for key, direction in reversed(keys):
        values = [document.get(key, _ABSENT) for document in dataset]
        if frozenset(map(type, values)) in _NATIVE_ORDER:
            order = sorted(range(len(dataset)), key=values.__getitem__, reverse=direction < 0)
            dataset = [dataset[i] for i in order]
        else:
            dataset = sorted(dataset, key=lambda x, key=key: mongomock.filtering.resolve_sort_key(key, x),
                             reverse=direction < 0)
    for document in dataset:
        yield self._copy_only_fields(document, fields, as_class)


# A projected find recombines its projection once per document it returns; the nested form depends on the
# projection alone, and mongomock only reads it (`_project_by_spec`), so one is kept per projection.
_COMBINED: dict[tuple[Any, ...], Any] = {}
_COMBINED_LIMIT = 512


def combine_projection_spec(projection: Any) -> Any:
    """mongomock's `_combine_projection_spec` ({"a.b": 1} -> {"a": {"b": 1}}), remembered per projection."""
    try:
        key = tuple((field, type(value), value) for field, value in projection.items())
        found = _COMBINED.get(key)
    except TypeError:  # an unhashable value (a projection operator): not remembered
        return _combine_projection_spec(projection)
    if found is None:
        found = _combine_projection_spec(projection)  # raises for a path collision, as before: nothing kept
        if len(_COMBINED) >= _COMBINED_LIMIT:
            _COMBINED.clear()
        _COMBINED[key] = found
    return found


def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """`copy.deepcopy` for the values mongomock copies: stored documents and update values.

    Plain dicts and lists are rebuilt without the memo. The memo also makes a container that appears twice in `value`
    come out as one shared copy; mongomock's values never share one — every container of a stored document and of an
    update was rebuilt on its way in (`patch_datetime_awareness_in_document`) — so that cannot differ."""
    if memo is not None:
        return _deepcopy(value, memo)
    kind = type(value)
    if kind in _PLAIN or kind is datetime:  # a datetime is immutable: deepcopy's equal new one serves no better
        return value
    if kind is dict:
        return {k: v if type(v) in _PLAIN else deepcopy(v) for k, v in value.items()}
    if kind is list:
        if set(map(type, value)) <= _PLAIN:
            return list(value)
        return [item if type(item) in _PLAIN else deepcopy(item) for item in value]
    return _deepcopy(value)


def _copy_module() -> types.ModuleType:
    """What `mongomock.collection` sees as `copy`: the standard module with `deepcopy` replaced."""
    module = types.ModuleType("copy", "the copy module, with a deepcopy for mongomock's documents")
    module.__dict__.update({name: getattr(copy, name) for name in ("copy", "Error", "error")})
    module.deepcopy = deepcopy  # type: ignore[attr-defined]
    module.__wrapped__ = copy  # type: ignore[attr-defined]
    return module


def install() -> None:
    """Put the drop-ins in mongomock's modules; idempotent. mongomock calls each through its module attribute."""
    helpers, collection = mongomock.helpers, mongomock.collection
    if getattr(collection.copy, "__wrapped__", None) is copy:
        return
    for module, name, replacement, original in (
            (helpers, "patch_datetime_awareness_in_document", patch_datetime_awareness_in_document,
             _patch_datetime_awareness),
            (helpers, "make_datetime_timezone_aware_in_document", make_datetime_timezone_aware_in_document,
             _make_datetime_timezone_aware),
            (collection, "_copy_field", copy_field, _copy_field),
            (collection, "_combine_projection_spec", combine_projection_spec, _combine_projection_spec)):
        replacement.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(module, name, replacement)
    get_dataset.__wrapped__ = _get_dataset  # type: ignore[attr-defined]
    collection.Collection._get_dataset = get_dataset
    collection.copy = _copy_module()
