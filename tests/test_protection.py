"""Sensitive fields at rest: sealing, key rotation, blind indexes, the case document, parked events, masks."""
from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from consumers.apply import apply_event, new_case
from settings import DEV_ENCRYPTION_KEY
from stores.database import Database
from stores.protection import (
    FieldCipher, KeyRing, SealedValueError, aad_for, is_sealed, mask_pesel, mask_phone, open_customer_pesel,
    open_envelope, open_participant_field, reveal_case, seal_case, seal_envelope,
)
from tests.factories import envelope, full_story

OLD_KEY = base64.b64encode(b"o" * 32).decode()
NEW_KEY = base64.b64encode(b"n" * 32).decode()
ANNA_PESEL, ANNA_PHONE = "85031207819", "+48601200300"
PIOTR_PESEL, PIOTR_PHONE = "90072412344", "+48602300400"
CUSTOMER_PESEL = aad_for("cases", "CASE-1", "customer.pesel")


def cipher_for(setting: str) -> FieldCipher:
    return FieldCipher(KeyRing.from_setting(setting))


@pytest.fixture
def cipher() -> FieldCipher:
    return cipher_for(DEV_ENCRYPTION_KEY)


def stored_case() -> dict[str, Any]:
    """CASE-1 as the reducer builds it: customer Anna, participants P-1 (Anna) and P-2 (Piotr)."""
    case = new_case("CASE-1")
    for event in full_story("CASE-1").events:
        apply_event(case, event)
    return case


# --- Keys -------------------------------------------------------------------------------------------------

def test_a_single_key_is_key_id_k1() -> None:
    keyring = KeyRing.from_setting(DEV_ENCRYPTION_KEY)

    assert (keyring.active_kid, list(keyring.keys)) == ("k1", ["k1"])


def test_in_a_key_list_the_first_key_encrypts_and_every_key_is_kept() -> None:
    keyring = KeyRing.from_setting(f"k2:{NEW_KEY}, k1:{OLD_KEY}")

    assert keyring.active_kid == "k2"
    assert keyring.keys == {"k2": b"n" * 32, "k1": b"o" * 32}


@pytest.mark.parametrize(("setting", "problem"), [
    ("", "DATA_ENCRYPTION_KEY: empty"),
    ("not base64!", "DATA_ENCRYPTION_KEY: the key is not valid base64"),
    (base64.b64encode(b"short").decode(), "DATA_ENCRYPTION_KEY: the key must decode to 32 bytes, got 5"),
    (f"k2:{NEW_KEY},{OLD_KEY}", "DATA_ENCRYPTION_KEY: entry 2 must be 'kid:base64'"),
    (f"k2:{NEW_KEY},k 1:{OLD_KEY}", "DATA_ENCRYPTION_KEY: entry 2 must be 'kid:base64'"),
    (f"k2:{NEW_KEY},k1:{OLD_KEY}x", "DATA_ENCRYPTION_KEY: entry 2 (k1) is not valid base64"),
    (f"k1:{NEW_KEY},k1:{OLD_KEY}", "DATA_ENCRYPTION_KEY: key id 'k1' appears twice"),
    (f"index:{OLD_KEY}", "DATA_ENCRYPTION_KEY: no encryption key, only the 'index' entry"),
])
def test_a_bad_key_setting_is_refused_with_a_reason_that_never_shows_the_key(setting: str, problem: str) -> None:
    with pytest.raises(ValueError) as refused:
        KeyRing.from_setting(setting)

    assert str(refused.value).startswith(problem)
    assert OLD_KEY not in str(refused.value) and NEW_KEY not in str(refused.value)


def test_a_keyring_never_prints_its_keys() -> None:
    keyring = KeyRing.from_setting(f"k2:{NEW_KEY},k1:{OLD_KEY}")

    assert repr(keyring) == "KeyRing(kids=['k2', 'k1'], active_kid='k2')"


# --- Sealing one value ------------------------------------------------------------------------------------

def test_a_sealed_value_opens_to_the_same_text(cipher: FieldCipher) -> None:
    sealed = cipher.seal("Zażółć 85031207819", aad=CUSTOMER_PESEL)

    assert cipher.open(sealed, aad=CUSTOMER_PESEL) == "Zażółć 85031207819"
    assert (sealed["kid"], len(sealed["n"]), is_sealed(sealed)) == ("k1", 12, True)
    assert b"85031207819" not in sealed["c"]


def test_sealing_the_same_text_twice_gives_different_ciphertexts(cipher: FieldCipher) -> None:
    first, second = cipher.seal(ANNA_PESEL, aad=CUSTOMER_PESEL), cipher.seal(ANNA_PESEL, aad=CUSTOMER_PESEL)

    assert first["n"] != second["n"] and first["c"] != second["c"]


@pytest.mark.parametrize("part", ["c", "n"])
def test_a_flipped_byte_makes_a_sealed_value_unreadable(cipher: FieldCipher, part: str) -> None:
    sealed = cipher.seal(ANNA_PESEL, aad=CUSTOMER_PESEL)
    altered = bytearray(sealed[part])
    altered[len(altered) // 2] ^= 0x01
    tampered = {**sealed, part: bytes(altered)}

    with pytest.raises(SealedValueError, match="does not authenticate"):
        cipher.open(tampered, aad=CUSTOMER_PESEL)


def test_a_cut_nonce_or_a_mangled_field_is_refused_as_unreadable(cipher: FieldCipher) -> None:
    sealed = cipher.seal(ANNA_PESEL, aad=CUSTOMER_PESEL)
    case = {"_id": "CASE-1", "customer": {"pesel": {"kid": "k1", "n": "not bytes", "c": b""}}}

    with pytest.raises(SealedValueError, match="does not authenticate"):
        cipher.open({**sealed, "n": sealed["n"][:4]}, aad=CUSTOMER_PESEL)
    with pytest.raises(SealedValueError, match="neither text nor a sealed value"):
        open_customer_pesel(case, cipher)


@pytest.mark.parametrize("moved_to", [
    aad_for("cases", "CASE-2", "customer.pesel"),
    aad_for("cases", "CASE-1", "participants/P-1/pesel"),
])
def test_a_value_moved_to_another_case_or_field_does_not_open(cipher: FieldCipher, moved_to: str) -> None:
    sealed = cipher.seal(ANNA_PESEL, aad=CUSTOMER_PESEL)

    with pytest.raises(SealedValueError, match="does not authenticate"):
        cipher.open(sealed, aad=moved_to)


def test_associated_data_names_collection_document_and_field() -> None:
    assert aad_for("cases", "CASE-1", "customer.pesel") == "cases/CASE-1/customer.pesel"
    # An id containing "/" cannot pose as another document's field.
    assert aad_for("cases", "CASE-1/customer.pesel", "x") == "cases/CASE-1%2Fcustomer.pesel/x"


def test_after_rotation_old_values_still_open_and_new_values_use_the_new_key() -> None:
    before = cipher_for(OLD_KEY)
    sealed_before = before.seal(ANNA_PESEL, aad=CUSTOMER_PESEL)

    after = cipher_for(f"k2:{NEW_KEY},k1:{OLD_KEY}")
    sealed_after = after.seal(PIOTR_PESEL, aad=CUSTOMER_PESEL)

    assert after.open(sealed_before, aad=CUSTOMER_PESEL) == ANNA_PESEL
    assert (sealed_before["kid"], sealed_after["kid"]) == ("k1", "k2")
    assert after.open(sealed_after, aad=CUSTOMER_PESEL) == PIOTR_PESEL


def test_a_value_sealed_with_a_retired_key_does_not_open() -> None:
    sealed = cipher_for(f"k2:{NEW_KEY},k1:{OLD_KEY}").seal(ANNA_PESEL, aad=CUSTOMER_PESEL)

    with pytest.raises(SealedValueError, match="unknown key id 'k2'"):
        cipher_for(OLD_KEY).open(sealed, aad=CUSTOMER_PESEL)


def test_the_same_kid_with_different_key_material_does_not_open() -> None:
    sealed = cipher_for(f"k1:{OLD_KEY}").seal(ANNA_PESEL, aad=CUSTOMER_PESEL)

    with pytest.raises(SealedValueError):
        cipher_for(f"k1:{NEW_KEY}").open(sealed, aad=CUSTOMER_PESEL)


def test_only_sealed_values_count_as_sealed(cipher: FieldCipher) -> None:
    assert [is_sealed(v) for v in (ANNA_PESEL, None, {"kid": "k1"}, {"kid": "k1", "n": "x", "c": "y"})] == [
        False, False, False, False]
    assert FieldCipher.is_sealed(cipher.seal("x", aad="a")) is True


# --- Blind index ------------------------------------------------------------------------------------------

def test_a_blind_index_is_deterministic_and_ignores_spaces(cipher: FieldCipher) -> None:
    index = cipher.blind_index(ANNA_PESEL, purpose="pesel")

    assert index == cipher.blind_index(" 850 312 078 19 ", purpose="pesel")
    assert len(index) == 64 and int(index, 16) >= 0


def test_a_blind_index_is_not_a_plain_hash_and_depends_on_purpose_and_key(cipher: FieldCipher) -> None:
    index = cipher.blind_index(ANNA_PESEL, purpose="pesel")

    assert index != hashlib.sha256(ANNA_PESEL.encode()).hexdigest()
    assert index != cipher.blind_index(ANNA_PESEL, purpose="phone")
    assert index != cipher_for(OLD_KEY).blind_index(ANNA_PESEL, purpose="pesel")
    assert index != cipher.blind_index(PIOTR_PESEL, purpose="pesel")


def test_the_blind_index_follows_the_first_key_unless_an_index_key_is_pinned() -> None:
    original = cipher_for(OLD_KEY).blind_index(ANNA_PESEL, purpose="pesel")

    rotated = cipher_for(f"k2:{NEW_KEY},k1:{OLD_KEY}").blind_index(ANNA_PESEL, purpose="pesel")
    pinned = cipher_for(f"k2:{NEW_KEY},k1:{OLD_KEY},index:{OLD_KEY}").blind_index(ANNA_PESEL, purpose="pesel")

    assert rotated != original  # a rotation of the first key without a pinned index key needs a reindex
    assert pinned == original


# --- The case document ------------------------------------------------------------------------------------

def test_a_sealed_case_holds_no_pesel_or_phone_in_clear(cipher: FieldCipher) -> None:
    case = stored_case()

    seal_case(case, cipher)

    text = repr(case)
    for secret in (ANNA_PESEL, PIOTR_PESEL, ANNA_PHONE, PIOTR_PHONE, "601200300", "602300400"):
        assert secret not in text
    assert case["customer"]["peselIndex"] == cipher.blind_index(ANNA_PESEL, purpose="pesel")
    assert all(is_sealed(p[name]) for p in case["participants"] for name in ("pesel", "phone"))
    assert case["participants"][0]["name"] == "Anna Kowalska"  # other fields stay readable


def test_sealed_fields_open_in_their_own_place(cipher: FieldCipher) -> None:
    case = seal_case(stored_case(), cipher)

    assert open_customer_pesel(case, cipher) == ANNA_PESEL
    assert [open_participant_field(case, pid, name, cipher) for pid in ("P-1", "P-2") for name in ("pesel", "phone")
            ] == [ANNA_PESEL, ANNA_PHONE, PIOTR_PESEL, PIOTR_PHONE]
    assert open_participant_field(case, "P-9", "phone", cipher) is None


def test_revealing_a_case_gives_a_clear_copy_and_leaves_the_document_sealed(cipher: FieldCipher) -> None:
    case = seal_case(stored_case(), cipher)

    revealed = reveal_case(case, cipher)

    assert revealed["customer"]["pesel"] == ANNA_PESEL
    assert [(p["id"], p["pesel"], p["phone"]) for p in revealed["participants"]] == [
        ("P-1", ANNA_PESEL, ANNA_PHONE), ("P-2", PIOTR_PESEL, PIOTR_PHONE)]
    assert is_sealed(case["customer"]["pesel"])


def test_sealing_a_case_again_leaves_sealed_values_alone_and_seals_new_ones(cipher: FieldCipher) -> None:
    case = seal_case(stored_case(), cipher)
    first_seals = [dict(p["phone"]) for p in case["participants"]]
    customer_seal = dict(case["customer"]["pesel"])
    case["participants"].append({"id": "P-3", "role": "GUARANTOR", "name": "Zofia", "phone": "+48603400500",
                                 "pesel": "78010156787", "stamps": {}})

    seal_case(case, cipher)

    assert [p["phone"] for p in case["participants"][:2]] == first_seals
    assert case["customer"]["pesel"] == customer_seal
    assert "78010156787" not in repr(case) and open_participant_field(case, "P-3", "pesel", cipher) == "78010156787"


def test_a_phone_copied_to_another_participant_does_not_open(cipher: FieldCipher) -> None:
    case = seal_case(stored_case(), cipher)
    case["participants"][1]["phone"] = case["participants"][0]["phone"]

    with pytest.raises(SealedValueError):
        open_participant_field(case, "P-2", "phone", cipher)


def test_a_case_without_pesels_seals_what_it_has_and_has_no_index(cipher: FieldCipher) -> None:
    case = {"_id": "CASE-9", "customer": {"id": "CUST-9", "name": "No Pesel", "pesel": None, "peselIndex": "old"},
            "participants": [{"id": "P-1", "name": "No Pesel", "phone": ANNA_PHONE, "pesel": None}]}

    seal_case(case, cipher)

    assert "peselIndex" not in case["customer"]
    assert case["participants"][0]["pesel"] is None and is_sealed(case["participants"][0]["phone"])
    assert open_customer_pesel(case, cipher) is None


def test_a_plain_value_written_before_encryption_still_reads(cipher: FieldCipher) -> None:
    case = stored_case()

    assert open_customer_pesel(case, cipher) == ANNA_PESEL
    assert open_participant_field(case, "P-2", "phone", cipher) == PIOTR_PHONE


async def test_a_sealed_case_survives_a_round_trip_through_the_store(cipher: FieldCipher, database: Database) -> None:
    cases = database.collection("cases_protection_test")
    await cases.insert_one(seal_case(stored_case(), cipher))

    read_back = await cases.find_one({"customer.peselIndex": cipher.blind_index(ANNA_PESEL, purpose="pesel")})

    assert read_back is not None
    assert open_customer_pesel(read_back, cipher) == ANNA_PESEL
    assert open_participant_field(read_back, "P-2", "phone", cipher) == PIOTR_PHONE


# --- Parked events ----------------------------------------------------------------------------------------

def test_a_parked_event_is_sealed_whole_and_opens_to_the_same_envelope(cipher: FieldCipher) -> None:
    raw = envelope("case.participant_added", "CASE-7", {"participant": {
        "id": "P-2", "role": "CO_BORROWER", "name": "Piotr Nowak", "phone": PIOTR_PHONE, "pesel": PIOTR_PESEL}},
        event_id="evt-parked-1")

    stored = seal_envelope(raw, cipher)

    assert stored["eventId"] == "evt-parked-1" and is_sealed(stored["sealed"])
    assert PIOTR_PESEL not in repr(stored) and "Piotr" not in repr(stored)
    assert open_envelope(stored, cipher) == raw


def test_a_sealed_envelope_under_another_event_id_does_not_open(cipher: FieldCipher) -> None:
    stored = seal_envelope(envelope("case.updated", "CASE-7", {"title": "x"}, event_id="evt-a"), cipher)

    with pytest.raises(SealedValueError):
        open_envelope({**stored, "eventId": "evt-b"}, cipher)


def test_an_envelope_parked_before_encryption_reads_as_is(cipher: FieldCipher) -> None:
    raw = envelope("case.updated", "CASE-7", {"title": "x"}, event_id="evt-old")

    assert open_envelope(raw, cipher) == raw


# --- Masking ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "masked"), [
    ("85031207819", "*******7819"),
    ("1234", "****"),
    ("", ""),
])
def test_a_masked_pesel_shows_only_its_last_four_digits(value: str, masked: str) -> None:
    assert mask_pesel(value) == masked


@pytest.mark.parametrize(("value", "masked"), [
    ("+48601200300", "*********300"),
    ("+48 601 200 300", "************300"),
    ("601-200-3 00", "********3 00"),
    ("300", "***"),
])
def test_a_masked_phone_shows_only_its_last_three_digits(value: str, masked: str) -> None:
    assert mask_phone(value) == masked
