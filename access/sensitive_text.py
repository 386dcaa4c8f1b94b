"""Free text cannot carry what the policy protects (issue 11 item 5): redact and seal at ingest, reveal by the policy.

A valid PESEL (checksum and birth date, consumers/pesel.py; digits may be split by single spaces or dashes and may
touch letters) or a phone number (E.164 `+48 601 200 300`, `0048…`, or nine Polish digits in any grouping) inside
free text is replaced where it is written by `[PESEL]` / `[PHONE]`. The originals, in the order of the placeholders,
are sealed with the field cipher (stores/protection.py) next to the text, under `sealedText`: a list of
`{"path": [...], "of": <digest of the redacted text>, "v": <sealed JSON list of [kind, original]>}`, bound by its
associated data to the record and field. So the stored document, its staged messages, the audit's `changes` and
`case-updates` carry the placeholder only.

Reading (`shown_text`, `shown_tree`): each placeholder is restored to its original only for a caller who sees that
kind in full under the field policy (PESEL as `Customer.pesel`, phone as `Participant.phone`, role and channel, as
access/policy.py decides); everyone else reads the placeholder. Reading a text that carries sealed values records
the field in the request's audit record (`HistoryEntry.summary:full` or `:masked`), as a PESEL read does.

A literal `[PESEL]` / `[PHONE]` already in the text counts as a value of its own (its original is itself), so the
placeholders and the originals always line up. A text whose digest is that of its sealed entry was redacted before:
it is left as it is, so protecting a whole document after every event is idempotent.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from access.policy import Access, field_access
from consumers.pesel import pesel_problem
from stores.protection import FieldCipher, aad_for

SEALED_TEXT = "sealedText"
PESEL, PHONE = "PESEL", "PHONE"
PLACEHOLDERS = {PESEL: "[PESEL]", PHONE: "[PHONE]"}
# The policy row whose full access restores each kind.
POLICY_KEYS = {PESEL: "Customer.pesel", PHONE: "Participant.phone"}

_SEPARATED = r"(?:[ \-]?[0-9])"
_CANDIDATES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (PESEL, re.compile(rf"(?<![0-9])[0-9]{_SEPARATED}{{10}}(?![0-9])")),
    # E.164, with or without the `00` international prefix instead of `+`.
    (PHONE, re.compile(rf"(?:\+|(?<![0-9])00)[1-9]{_SEPARATED}{{6,14}}(?![0-9])")),
    # A Polish national number: nine digits, grouped any way (601 200 300, 601-200-300, 12 345 67 89).
    (PHONE, re.compile(rf"(?<![0-9+])[0-9]{_SEPARATED}{{8}}(?![0-9])")),
    (PESEL, re.compile(re.escape(PLACEHOLDERS[PESEL]))),
    (PHONE, re.compile(re.escape(PLACEHOLDERS[PHONE]))),
)
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))
# Keys under a free-form JSON (an action's details) that hold references, not prose: never rewritten.
_REFERENCE_KEY = re.compile(r"^(id|.*Id|.*Ids)$")


@dataclass(frozen=True)
class Redaction:
    text: str
    # (kind, original) for each placeholder in `text`, in order; empty when the text carried nothing to protect.
    originals: tuple[tuple[str, str], ...]


def _is_value(kind: str, found: str) -> bool:
    if found in PLACEHOLDERS.values():
        return True
    if kind == PESEL:
        return pesel_problem(re.sub(r"[ \-]", "", found)) is None
    return True


# Every value above has at least seven digits: a text without such a run (most texts) needs no closer look.
_WORTH_A_LOOK = re.compile(r"[0-9](?:[ \-]?[0-9]){6}")


def redact(text: str) -> Redaction:
    """`text` with every PESEL and phone number replaced by its placeholder, and the originals in order."""
    if _WORTH_A_LOOK.search(text) is None:
        return Redaction(text, ())  # literal placeholders alone are left alone too
    spans: list[tuple[int, int, str]] = []
    for kind, pattern in _CANDIDATES:
        position = 0
        while (match := pattern.search(text, position)) is not None:
            start, end = match.span()
            # An invalid candidate must not hide a valid one that starts inside it: search again one further on.
            if _is_value(kind, match.group()) and not any(s < end and start < e for s, e, _ in spans):
                spans.append((start, end, kind))
                position = end
            else:
                position = start + 1
    if not any(text[s:e] not in PLACEHOLDERS.values() for s, e, _ in spans):
        return Redaction(text, ())  # nothing but literal placeholders (or nothing at all): leave the text alone
    pieces, originals, last = [], [], 0
    for start, end, kind in sorted(spans):
        pieces += [text[last:start], PLACEHOLDERS[kind]]
        originals.append((kind, text[start:end]))
        last = end
    pieces.append(text[last:])
    return Redaction("".join(pieces), tuple(originals))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def text_aad(collection: str, record_id: str, *where: str) -> str:
    """The associated data prefix of a record's texts, e.g. ("cases", "CASE-1", "incidents", "INC-1")."""
    return aad_for(collection, record_id, "/".join(["text", *where]))


def _path_aad(prefix: str, path: list[Any]) -> str:
    return prefix + "/" + "/".join(str(p).replace("/", "%2F") for p in path)


def _entry(container: dict[str, Any], path: list[Any]) -> dict[str, Any] | None:
    entries = container.get(SEALED_TEXT)
    if not entries:
        return None  # most texts hold nothing sealed: asked for every text a read shows
    return next((e for e in entries if e.get("path") == path), None)


def protect_value(container: dict[str, Any], path: list[Any], value: str, cipher: FieldCipher,
                  aad: str | Callable[[], str]) -> str:
    """The text to store at `path` of `container` for `value`; its originals sealed in `container["sealedText"]`."""
    known = _entry(container, path)
    if known is None and _WORTH_A_LOOK.search(value) is None:
        return value  # nothing to protect, nothing protected before: the common case, kept cheap
    if known is not None and known["of"] == _digest(value):
        return value  # redacted before
    entries = [e for e in container.get(SEALED_TEXT) or () if e.get("path") != path]
    redaction = redact(value)
    if redaction.originals:
        prefix = aad() if callable(aad) else aad
        sealed = cipher.seal(orjson.dumps(redaction.originals).decode(), aad=_path_aad(prefix, path))
        entries.append({"path": path, "of": _digest(redaction.text), "v": sealed})
    if entries:
        container[SEALED_TEXT] = entries
    else:
        container.pop(SEALED_TEXT, None)
    return redaction.text


def protect_fields(container: dict[str, Any], names: Iterable[str], cipher: FieldCipher,
                   aad: str | Callable[[], str]) -> None:
    """Redact and seal the text fields `names` of `container` in place (`aad` may be computed only when needed)."""
    if SEALED_TEXT not in container and not any(
            isinstance(v := container.get(name), str) and _WORTH_A_LOOK.search(v) for name in names):
        return  # after every event each item of the case passes here: the common case costs no more than this
    for name in names:
        value = container.get(name)
        if isinstance(value, str):
            container[name] = protect_value(container, [name], value, cipher, aad)


def protect_tree(container: dict[str, Any], name: str, cipher: FieldCipher, aad: str | Callable[[], str]) -> None:
    """Redact and seal every text inside the free-form JSON `container[name]` (references excepted), in place."""

    def walk(value: Any, path: list[Any]) -> Any:
        if isinstance(value, str):
            return protect_value(container, path, value, cipher, aad)
        if isinstance(value, dict):
            return {k: v if _REFERENCE_KEY.match(str(k)) else walk(v, [*path, k]) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, [*path, i]) for i, v in enumerate(value)]
        return value

    if name in container:
        container[name] = walk(container[name], [name])


# --- The records that carry free text --------------------------------------------------------------------------

# Per list of a case document: the item fields that are free text.
CASE_ITEM_TEXT = {"participants": ("name",), "documents": ("name",), "tasks": ("name",), "incidents": ("message",),
                  "consents": ("text",), "offers": ("name",), "forms": ("name",)}


def protect_case(case: dict[str, Any], cipher: FieldCipher) -> None:
    """Every free text of a case document (title, names, incident messages, consent texts), in place."""
    case_id = case["_id"]
    protect_fields(case, ("title",), cipher, lambda: text_aad("cases", case_id))
    for part in ("customer", "product"):
        if isinstance(case.get(part), dict):
            protect_fields(case[part], ("name",), cipher, lambda part=part: text_aad("cases", case_id, part))
    for list_name, names in CASE_ITEM_TEXT.items():
        for item in case.get(list_name) or ():
            protect_fields(item, names, cipher,
                           lambda item=item, list_name=list_name: text_aad("cases", case_id, list_name,
                                                                           str(item.get("id"))))


def protect_entry(entry: dict[str, Any], cipher: FieldCipher) -> dict[str, Any]:
    """A history entry's summary, details and actor name, in place (sealed under its event id); returns it."""
    def aad() -> str:
        return entry_aad(entry)

    protect_fields(entry, ("summary",), cipher, aad)
    if entry.get("details") is not None:
        protect_tree(entry, "details", cipher, aad)
    if isinstance(entry.get("actor"), dict):
        protect_fields(entry["actor"], ("name",), cipher, lambda: aad() + "/actor")
    return entry


def entry_aad(entry: dict[str, Any]) -> str:
    return text_aad("history", str(entry.get("eventId") or entry.get("id")))


def protect_applied(case: dict[str, Any], entry: dict[str, Any], cipher: FieldCipher) -> dict[str, Any]:
    """After an event was applied: the case's and the new history entry's free text protected; returns the entry."""
    protect_case(case, cipher)
    return protect_entry(entry, cipher)


def protect_replayed(case: dict[str, Any], cipher: FieldCipher) -> dict[str, Any]:
    """A case rebuilt in memory from its journal (asOf) protected like a stored one, so reads treat both alike."""
    protect_case(case, cipher)
    for entry in case.get("history") or ():
        protect_entry(entry, cipher)
    return case


def original_text(container: dict[str, Any], path: list[Any], value: str, cipher: FieldCipher, aad: str) -> str:
    """The text as written, every placeholder restored (for the writer's own comparisons, never for display)."""
    originals = _originals(container, path, value, cipher, aad)
    return value if originals is None else _restored(value, originals, {PESEL, PHONE})


# --- Reading -----------------------------------------------------------------------------------------------------

class Reader(Protocol):
    """What `shown_text` needs of a request context."""

    principal: Any
    services: Any
    audit: Any


def _originals(container: dict[str, Any], path: list[Any], value: str, cipher: FieldCipher,
               aad: str | Callable[[], str]) -> list[list[str]] | None:
    known = _entry(container, path)
    if known is None or known["of"] != _digest(value):
        return None
    prefix = aad() if callable(aad) else aad  # worked out only for a text that has sealed values: most have none
    return orjson.loads(cipher.open(known["v"], aad=_path_aad(prefix, path)))


def _restored(value: str, originals: list[list[str]], kinds: set[str]) -> str:
    found = iter(originals)

    def put_back(match: re.Match[str]) -> str:
        kind, original = next(found, (None, match.group()))
        return original if kind in kinds else match.group()

    return _PLACEHOLDER.sub(put_back, value)


def full_kinds(context: Reader) -> set[str]:
    """The kinds of value the caller sees in full (by role and the token's channel claim, as the field guards do)."""
    principal = context.principal
    if principal is None:
        return set()
    return {kind for kind, key in POLICY_KEYS.items()
            if field_access(key, principal.roles, principal.channel) is Access.FULL}


def shown_text(context: Reader, key: str, container: dict[str, Any], path: list[Any], value: str | None,
               aad: str | Callable[[], str]) -> str | None:
    """`value` as the caller may read it; a text carrying sealed values is noted in the audit under `key`."""
    if not isinstance(value, str):
        return value
    originals = _originals(container, path, value, context.services.cipher, aad)
    if originals is None:
        return value
    kinds = full_kinds(context)
    shown = _restored(value, originals, kinds)
    context.audit.revealed(key, Access.FULL.value if shown != value else Access.MASKED.value)
    return shown


def shown_tree(context: Reader, key: str, container: dict[str, Any], name: str, aad: str | Callable[[], str]) -> Any:
    """The free-form JSON `container[name]` with each text as the caller may read it."""

    def walk(value: Any, path: list[Any]) -> Any:
        if isinstance(value, str):
            return shown_text(context, key, container, path, value, aad)
        if isinstance(value, dict):
            return {k: walk(v, [*path, k]) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, [*path, i]) for i, v in enumerate(value)]
        return value

    value = container.get(name)
    return walk(value, [name]) if container.get(SEALED_TEXT) else value
