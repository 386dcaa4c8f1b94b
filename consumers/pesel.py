"""PESEL (Polish national identification number) validation: format, encoded birth date, checksum."""
from __future__ import annotations

import re
from datetime import date

_ELEVEN_DIGITS = re.compile(r"[0-9]{11}")  # ASCII only: str.isdigit() would accept e.g. Arabic-Indic digits
_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
# The month field carries the century: encoded month = month + offset.
_CENTURY_BY_OFFSET = {80: 1800, 0: 1900, 20: 2000, 40: 2100, 60: 2200}


def pesel_problem(value: str) -> str | None:
    """None when `value` is a valid PESEL, else a short reason starting with "PESEL:"."""
    if not isinstance(value, str) or not _ELEVEN_DIGITS.fullmatch(value):
        return "PESEL: must be exactly 11 digits"
    # The date first: a mistyped month or day says more to the person fixing it than a bad checksum.
    encoded_month = int(value[2:4])
    century, month = _CENTURY_BY_OFFSET[encoded_month - encoded_month % 20], encoded_month % 20
    if not 1 <= month <= 12:
        return f"PESEL: month {encoded_month:02d} is not a valid date"
    year, day = century + int(value[0:2]), int(value[4:6])
    try:
        date(year, month, day)
    except ValueError:
        return f"PESEL: {year:04d}-{month:02d}-{day:02d} is not a valid date"
    if check_digit(value[:10]) != int(value[10]):
        return "PESEL: checksum does not match"
    return None


def check_digit(first_ten: str) -> int:
    """The 11th digit that the first ten digits of a PESEL require."""
    total = sum(int(digit) * weight for digit, weight in zip(first_ten, _WEIGHTS, strict=True))
    return (10 - total % 10) % 10
