"""The monthly installment of an annuity loan: a pure function of amount, annual rate and term (no store access).

A = P·r / (1 − (1 + r)^−n), with r = annualRate / 100 / 12 (the annual rate is a *percentage*: 6.85 means
6.85 % a year, as advisors quote it), P the amount and n the number of monthly installments; a rate of 0 gives
P / n. Computed in Python `decimal` with 40 significant digits, then rounded once to 0.01 with ROUND_HALF_UP.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from errors import BadInput

CENT = Decimal("0.01")
PRECISION = 40
MAX_AMOUNT = Decimal("1000000000000")  # 10^12: above any loan the bank grants, below any precision trouble
MAX_ANNUAL_RATE = Decimal("100")  # percent a year
MAX_TERM_MONTHS = 600  # 50 years


def check_loan(amount: Decimal, annual_rate: Decimal, term_months: int) -> None:
    """BadInput (BAD_USER_INPUT) naming the argument outside its sane range."""
    if not amount.is_finite() or not Decimal(0) < amount <= MAX_AMOUNT:
        raise BadInput(f"amount: more than 0 and at most {MAX_AMOUNT}")
    if not annual_rate.is_finite() or not Decimal(0) <= annual_rate <= MAX_ANNUAL_RATE:
        raise BadInput(f"annualRate: a percentage from 0 to {MAX_ANNUAL_RATE} (6.85 = 6.85 % a year)")
    if not 1 <= term_months <= MAX_TERM_MONTHS:
        raise BadInput(f"termMonths: from 1 to {MAX_TERM_MONTHS}")


def monthly_installment(amount: Decimal, annual_rate: Decimal, term_months: int) -> Decimal:
    """The annuity's monthly installment, rounded to 0.01 with ROUND_HALF_UP; BadInput outside sane ranges."""
    check_loan(amount, annual_rate, term_months)
    with localcontext() as context:
        context.prec = PRECISION
        monthly_rate = annual_rate / Decimal(1200)
        if monthly_rate == 0:
            exact = amount / term_months
        else:
            exact = amount * monthly_rate / (1 - (1 + monthly_rate) ** -term_months)
        return exact.quantize(CENT, rounding=ROUND_HALF_UP)
