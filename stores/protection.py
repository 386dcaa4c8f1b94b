"""Sensitive fields at rest: AES-256-GCM per value, blind indexes for lookups, and masking.

Keys come from DATA_ENCRYPTION_KEY: one base64 key of 32 bytes (key id "k1"), or a comma list
"kid:base64,kid2:base64" whose FIRST entry encrypts and every entry decrypts. To rotate, put the new key
first and keep the old ones until every stored value has been re-sealed with the new key.

Every sealed value is bound (AES-GCM associated data) to its collection, document and field, e.g.
"cases/CASE-1/customer.pesel", so a value copied into another case or field does not open.

Blind index: HMAC-SHA256 with a key derived (HKDF, per purpose) from the index key material, which is
the FIRST key unless the list has a dedicated entry "index:base64". The index is deterministic by design,
so changing its key material changes every index value: that needs a reindex of the stored documents
(open each PESEL and recompute customer.peselIndex). To rotate the encryption key WITHOUT a reindex, pin
the old material as the index key: "k2:NEW,k1:OLD,index:OLD" gives the same indexes as "OLD" alone.
"""
from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from errors import DomainError

SETTING = "DATA_ENCRYPTION_KEY"
DEFAULT_KID = "k1"
INDEX_KID = "index"  # reserved: the dedicated blind-index key material, never used to encrypt
KEY_BYTES = 32
NONCE_BYTES = 12
_KID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_SEALED_KEYS = frozenset({"kid", "n", "c"})
PARTICIPANT_SEALED_FIELDS = ("pesel", "phone")


class SealedValueError(DomainError):
    """A sealed value does not open: tampered, moved to another document or field, or its key is gone."""

    code = "INTERNAL"


@dataclass(frozen=True)
class KeyRing:
    """Named 32-byte keys: `active_kid` encrypts, every key decrypts; `index_material` feeds blind indexes."""

    keys: dict[str, bytes]
    active_kid: str
    index_material: bytes = field(repr=False)

    def __repr__(self) -> str:  # never print key material, e.g. in a traceback or a log line
        return f"KeyRing(kids={list(self.keys)}, active_kid={self.active_kid!r})"

    @classmethod
    def from_setting(cls, value: str) -> KeyRing:
        """Parse DATA_ENCRYPTION_KEY; a ValueError names the setting and the entry, never the key."""
        text = (value or "").strip()
        if not text:
            raise ValueError(f"{SETTING}: empty; expected base64 of {KEY_BYTES} bytes or 'kid:base64,...'")
        if ":" not in text and "," not in text:  # base64 uses neither character
            key = _decode_key(text, "the key")
            return cls(keys={DEFAULT_KID: key}, active_kid=DEFAULT_KID, index_material=key)
        keys: dict[str, bytes] = {}
        index_material: bytes | None = None
        for position, entry in enumerate(text.split(","), start=1):
            kid, colon, encoded = entry.strip().partition(":")
            kid = kid.strip()
            if not colon or not _KID.fullmatch(kid):
                raise ValueError(f"{SETTING}: entry {position} must be 'kid:base64' with a kid of letters, "
                                 "digits, '_', '.' or '-'")
            key = _decode_key(encoded.strip(), f"entry {position} ({kid})")
            if kid == INDEX_KID:
                if index_material is not None:
                    raise ValueError(f"{SETTING}: key id {INDEX_KID!r} appears twice")
                index_material = key
                continue
            if kid in keys:
                raise ValueError(f"{SETTING}: key id {kid!r} appears twice")
            keys[kid] = key
        if not keys:
            raise ValueError(f"{SETTING}: no encryption key, only the {INDEX_KID!r} entry")
        active_kid = next(iter(keys))
        return cls(keys=keys, active_kid=active_kid, index_material=index_material or keys[active_kid])


def _decode_key(encoded: str, what: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{SETTING}: {what} is not valid base64") from error
    if len(key) != KEY_BYTES:
        raise ValueError(f"{SETTING}: {what} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def aad_for(collection: str, document_id: str, field_path: str) -> str:
    """Associated data binding a value to one field of one document, e.g. "cases/CASE-1/customer.pesel"."""
    # Quoting keeps the three parts unambiguous even when an id contains "/".
    return f"{quote(collection, safe='')}/{quote(str(document_id), safe='')}/{field_path}"


def is_sealed(value: Any) -> bool:
    """True for a value produced by FieldCipher.seal (as stored, or as read back from MongoDB)."""
    return (isinstance(value, dict) and value.keys() == _SEALED_KEYS and isinstance(value["kid"], str)
            and isinstance(value["n"], bytes) and isinstance(value["c"], bytes))


class FieldCipher:
    """Seals and opens single string values, and computes blind indexes, with one KeyRing."""

    is_sealed = staticmethod(is_sealed)

    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring
        self._aeads = {kid: AESGCM(key) for kid, key in keyring.keys.items()}
        self._index_keys: dict[str, bytes] = {}

    def seal(self, plaintext: str, *, aad: str) -> dict[str, Any]:
        """{"kid", "n": 12-byte random nonce, "c": ciphertext + tag}, bound to `aad`."""
        if not isinstance(plaintext, str):
            raise TypeError(f"{aad}: only text can be sealed, got {type(plaintext).__name__}")
        return self.seal_bytes(plaintext.encode(), aad=aad)

    def seal_bytes(self, plaintext: bytes, *, aad: str) -> dict[str, Any]:
        """The same sealed shape for binary content (a chunk of an uploaded document)."""
        kid = self._keyring.active_kid
        nonce = os.urandom(NONCE_BYTES)
        return {"kid": kid, "n": nonce, "c": self._aeads[kid].encrypt(nonce, bytes(plaintext), aad.encode())}

    def open(self, sealed: dict[str, Any], *, aad: str) -> str:
        """The plaintext of `sealed`; SealedValueError when it was altered, moved, or its key is unknown."""
        return self.open_bytes(sealed, aad=aad).decode()

    def open_bytes(self, sealed: dict[str, Any], *, aad: str) -> bytes:
        """The binary plaintext of `sealed`; SealedValueError as `open`."""
        if not is_sealed(sealed):
            raise SealedValueError(f"{aad}: not a sealed value")
        aead = self._aeads.get(sealed["kid"])
        if aead is None:
            raise SealedValueError(f"{aad}: sealed with unknown key id {sealed['kid']!r}")
        try:
            return aead.decrypt(sealed["n"], sealed["c"], aad.encode())
        except (InvalidTag, ValueError) as error:  # ValueError: a nonce cut to a length AES-GCM refuses
            raise SealedValueError(f"{aad}: sealed value does not authenticate (altered or moved)") from error

    def blind_index(self, value: str, *, purpose: str) -> str:
        """Hex HMAC-SHA256 of `value` without whitespace, under a key derived for `purpose`."""
        if not purpose:
            raise ValueError("blind_index: purpose must not be empty")
        key = self._index_keys.get(purpose)
        if key is None:
            # A per-purpose key: an index of PESELs cannot be joined with an index of anything else.
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"case-repository/blind-index/v1/" + purpose.encode()).derive(
                self._keyring.index_material)
            self._index_keys[purpose] = key
        normalised = "".join(value.split())
        return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


# --- The case document: customer.pesel, participants[].pesel and participants[].phone -----------------

def _customer_aad(case_id: str) -> str:
    return aad_for("cases", case_id, "customer.pesel")


def _participant_aad(case_id: str, participant_id: str, name: str) -> str:
    return aad_for("cases", case_id, f"participants/{quote(str(participant_id), safe='')}/{name}")


def seal_case(doc: dict[str, Any], cipher: FieldCipher) -> dict[str, Any]:
    """Seal every plaintext PESEL and phone of the case in place; refresh the blind indexes of the PESELs."""
    case_id = doc["_id"]
    customer = doc.get("customer")
    if isinstance(customer, dict):
        pesel = customer.get("pesel")
        if isinstance(pesel, str):
            customer["peselIndex"] = cipher.blind_index(pesel, purpose="pesel")
            customer["pesel"] = cipher.seal(pesel, aad=_customer_aad(case_id))
        elif pesel is None:
            customer.pop("peselIndex", None)  # no PESEL, nothing to find the customer by
    for participant in doc.get("participants") or ():
        pesel = participant.get("pesel")
        if isinstance(pesel, str):
            # How a co-applicant's cases reach their own customer 360 (stores/case_criteria.Person).
            participant["peselIndex"] = cipher.blind_index(pesel, purpose="pesel")
        for name in PARTICIPANT_SEALED_FIELDS:
            value = participant.get(name)
            if isinstance(value, str):
                participant[name] = cipher.seal(value, aad=_participant_aad(case_id, participant["id"], name))
    return doc


def _reveal(value: Any, cipher: FieldCipher, aad: str) -> str | None:
    if is_sealed(value):
        return cipher.open(value, aad=aad)
    if value is None or isinstance(value, str):
        # Plain text is returned as is: documents written before encryption was switched on still read.
        return value
    raise SealedValueError(f"{aad}: neither text nor a sealed value")


def open_customer_pesel(doc: dict[str, Any], cipher: FieldCipher) -> str | None:
    """The customer's PESEL in clear, or None when the case has none."""
    return _reveal((doc.get("customer") or {}).get("pesel"), cipher, _customer_aad(doc["_id"]))


def open_participant_field(doc: dict[str, Any], participant_id: str, name: str, cipher: FieldCipher) -> str | None:
    """A participant's "pesel" or "phone" in clear; None when the participant or the value is absent."""
    if name not in PARTICIPANT_SEALED_FIELDS:
        raise ValueError(f"participants.{name} is not a sealed field")
    participant = next((p for p in doc.get("participants") or () if p.get("id") == participant_id), None)
    if participant is None:
        return None
    return _reveal(participant.get(name), cipher, _participant_aad(doc["_id"], participant_id, name))


def reveal_case(doc: dict[str, Any], cipher: FieldCipher) -> dict[str, Any]:
    """A copy of the case with every sealed field in clear (the stored document is left sealed)."""
    revealed = copy.deepcopy(doc)
    if isinstance(revealed.get("customer"), dict) and "pesel" in revealed["customer"]:
        revealed["customer"]["pesel"] = open_customer_pesel(doc, cipher)
    for participant in revealed.get("participants") or ():
        for name in PARTICIPANT_SEALED_FIELDS:
            if name in participant:
                participant[name] = open_participant_field(doc, participant["id"], name, cipher)
    return revealed


# --- Parked events: the whole CloudEvent as one sealed value ------------------------------------------

def seal_envelope(envelope: dict[str, Any], cipher: FieldCipher) -> dict[str, Any]:
    """{"eventId", "sealed"}: the CloudEvent JSON sealed with AAD "events/<event id>/envelope"."""
    event_id = envelope.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("seal_envelope: the event has no id")
    text = orjson.dumps(envelope).decode()
    return {"eventId": event_id, "sealed": cipher.seal(text, aad=aad_for("events", event_id, "envelope"))}


def open_envelope(stored: dict[str, Any], cipher: FieldCipher) -> dict[str, Any]:
    """The CloudEvent sealed by seal_envelope; an envelope parked before encryption is returned as is."""
    if "sealed" not in stored:
        return dict(stored)
    aad = aad_for("events", str(stored.get("eventId")), "envelope")
    return orjson.loads(cipher.open(stored["sealed"], aad=aad))


# --- Masking --------------------------------------------------------------------------------------------

def mask_pesel(value: str) -> str:
    """All but the last 4 digits as "*": "85031207819" -> "*******7819"."""
    return _mask_keeping_last_digits(value, 4)


def mask_phone(value: str) -> str:
    """All but the last 3 digits as "*": "+48601200300" -> "*********300"."""
    return _mask_keeping_last_digits(value, 3)


def _mask_keeping_last_digits(value: str, keep: int) -> str:
    digit_positions = [i for i, char in enumerate(value) if char.isdigit()]
    if len(digit_positions) <= keep:
        return "*" * len(value)  # too short to show anything without showing all of it
    shown_from = digit_positions[-keep]
    return "*" * shown_from + value[shown_from:]
