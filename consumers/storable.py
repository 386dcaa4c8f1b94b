"""Whether a decoded event can be stored as BSON exactly as received: checked before an event is accepted, so no
event reaches a write the store would refuse (or, in mongomock, half-perform, leaving a case as `{_id}`)."""
from __future__ import annotations

from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Far below BSON's 100 levels and MongoDB's 16 MiB document: an event never needs more.
MAX_DEPTH = 32
MAX_STRING_BYTES = 64 * 1024
MAX_KEY_BYTES = 256


def storage_problem(value: Any, path: str = "event", depth: int = 0) -> str | None:
    """The first reason `value` cannot be stored as received, named by its path; None when it can."""
    if depth > MAX_DEPTH:
        return f"{path}: nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else f"{path}: integer outside the 64-bit range"
    if isinstance(value, str):
        return _text_problem(value, path, MAX_STRING_BYTES)
    if isinstance(value, list):
        for index, item in enumerate(value):
            if (problem := storage_problem(item, f"{path}[{index}]", depth + 1)) is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}: a key that is not text"
            if (problem := _key_problem(key, path)) is not None:
                return problem
            if (problem := storage_problem(item, f"{path}.{key}", depth + 1)) is not None:
                return problem
        return None
    return f"{path}: a value of type {type(value).__name__} cannot be stored"


def _text_problem(text: str, path: str, limit: int) -> str | None:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{path}: not valid UTF-8 (a lone surrogate)"
    if size > limit:
        return f"{path}: longer than {limit} bytes"
    return None


def _key_problem(key: str, path: str) -> str | None:
    shown = key[:40].encode("unicode_escape").decode("ascii")
    if not key:
        return f"{path}: an empty key"
    if "\x00" in key:
        return f"{path}: key {shown!r} holds a NUL character"
    if key.startswith("$") or "." in key:
        return f"{path}: key {shown!r} starts with $ or holds a dot, which a document key may not"
    return _text_problem(key, f"{path}: key", MAX_KEY_BYTES)
