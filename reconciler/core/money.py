"""Money on invoices: exact decimals, one formatter (DESIGN 12.2).

A unit price is shown with all its decimals (at least 2): `4.125` is shown, stored and sent
as 4.125, never `4.12` beside a revenue figure computed from 4.125. Every surface (plan
text, Markdown, JSON, run records, e-mails) formats money through this module.
"""

from __future__ import annotations

import functools
from decimal import Decimal

MAX_PRICE = Decimal(1_000_000)
PRICE_PLACES = 4  # at most 4 decimal places in unit_price / unit_cost


def plain(value: Decimal) -> str:
    """The exact decimal, all its digits and at least 2 decimals: 4 -> '4.00',
    6.5 -> '6.50', 4.125 -> '4.125', -266 -> '-266.00'. No exponent, no grouping."""
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    # Cached by value (equal decimals format alike): a 10,000-customer plan formats the
    # same few prices and deltas tens of thousands of times.
    return _plain(value)


def optional(value: Decimal | None) -> str | None:
    """`plain`, or None for a missing amount (JSON and CSV fields that may be empty)."""
    return None if value is None else plain(value)


@functools.lru_cache(maxsize=4096)
def _plain(value: Decimal) -> str:
    value = value.normalize()  # 30.0150 -> 30.015: trailing zeros are not decimals
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent > -2:
        value = value.quantize(Decimal("0.01"))
    text = f"{value:f}"
    return "0.00" if text in ("-0.00", "-0") else text


def display(value: Decimal, *, signed: bool = False, currency: str | None = None) -> str:
    """For people: thousands grouped, exact decimals; `signed` puts + on a positive delta."""
    text = plain(abs(value))
    whole, _, fraction = text.partition(".")
    grouped = f"{int(whole):,}.{fraction}"
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    suffix = f" {currency}" if currency else ""
    return f"{sign}{grouped}{suffix}"


def delta(value: Decimal) -> str:
    """A change in a column of changes: always signed, so "+0.00" reads as "no change"
    beside "+8.00" and "-14.00"."""
    text = display(value, signed=True)
    return text if text[0] in "+-" else f"+{text}"


def json_number(value: Decimal) -> float:
    """A price as the JSON number ConnectWise receives. JSON carries it as a double; for
    every price we can hold (<= 1,000,000 with <= 4 places, or a price ConnectWise itself
    sent us as a double) the double's shortest text is the exact decimal — checked here so
    a price that could not travel exactly is refused rather than rounded on an invoice."""
    number = float(value)
    if Decimal(repr(number)) != value:
        raise ValueError(f"{plain(value)} cannot be sent exactly as a JSON number")
    return number


def places(value: Decimal) -> int:
    """Decimal places written (4.1250 -> 4: trailing zeros count as written)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)
