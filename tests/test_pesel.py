"""PESEL validation: 11 digits, a real birth date in one of five centuries, and the checksum."""
from __future__ import annotations

import pytest

from consumers.pesel import pesel_problem

VALID = [
    ("85031207819", "1985-03-12, demo customer Anna"),
    ("90072412344", "1990-07-24, demo customer Piotr"),
    ("02221504567", "2002-02-15: month + 20"),
    ("85921212349", "1885-12-12: month + 80"),
    ("99421512342", "2199-02-15: month + 40"),
    ("99621512348", "2299-02-15: month + 60"),
    ("04022912341", "1904-02-29: leap year"),
    ("00222912349", "2000-02-29: divisible by 400, leap"),
    ("04822912345", "1804-02-29: leap year"),
    ("85043007814", "1985-04-30: last day of April"),
    ("44123199993", "1944-12-31"),
]

INVALID = [
    ("85031207818", "PESEL: checksum does not match"),
    ("90072412340", "PESEL: checksum does not match"),
    ("85131207812", "PESEL: month 13 is not a valid date"),
    ("85001207816", "PESEL: month 00 is not a valid date"),
    ("99930112341", "PESEL: month 93 is not a valid date"),
    ("85033207817", "PESEL: 1985-03-32 is not a valid date"),
    ("85030007816", "PESEL: 1985-03-00 is not a valid date"),
    ("85043107811", "PESEL: 1985-04-31 is not a valid date"),
    ("00022912343", "PESEL: 1900-02-29 is not a valid date"),  # 1900: divisible by 100, not by 400
    ("01022912340", "PESEL: 1901-02-29 is not a valid date"),
    ("01222912346", "PESEL: 2001-02-29 is not a valid date"),
    ("00422912345", "PESEL: 2100-02-29 is not a valid date"),
    ("00822912347", "PESEL: 1800-02-29 is not a valid date"),
    ("8503120781", "PESEL: must be exactly 11 digits"),
    ("850312078190", "PESEL: must be exactly 11 digits"),
    ("8503120781a", "PESEL: must be exactly 11 digits"),
    (" 85031207819", "PESEL: must be exactly 11 digits"),
    ("8503-120781", "PESEL: must be exactly 11 digits"),
    ("٨٥٠٣١٢٠٧٨١٩", "PESEL: must be exactly 11 digits"),  # Arabic-Indic digits are digits, not PESEL digits
    ("", "PESEL: must be exactly 11 digits"),
]


@pytest.mark.parametrize(("pesel", "why"), VALID)
def test_a_valid_pesel_has_no_problem(pesel: str, why: str) -> None:
    assert pesel_problem(pesel) is None, why


@pytest.mark.parametrize(("pesel", "problem"), INVALID)
def test_an_invalid_pesel_names_its_problem(pesel: str, problem: str) -> None:
    assert pesel_problem(pesel) == problem


def test_every_single_digit_typo_in_a_valid_pesel_is_caught() -> None:
    # The weights 1,3,7,9 make any one changed digit change the checksum: no typo passes as valid.
    valid = "85031207819"
    typos = [valid[:i] + d + valid[i + 1:] for i in range(11) for d in "0123456789" if d != valid[i]]

    passed = [typo for typo in typos if pesel_problem(typo) is None]

    assert passed == []
