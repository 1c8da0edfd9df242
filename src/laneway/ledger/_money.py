"""Money in the database: exact integer nano-dollars, converted to ``Decimal`` here only.

A cost of ``$0.000000123`` is stored as ``123``. ``None`` (SQL ``NULL``) means the price
is unknown, never zero. Amounts finer than a nano-dollar are rounded half-to-even.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["NANO", "format_usd", "nusd_to_usd", "usd_to_nusd"]

NANO = Decimal("1e-9")


def usd_to_nusd(usd: Decimal | None) -> int | None:
    """``Decimal`` dollars to integer nano-dollars (``None`` stays ``None``)."""
    if usd is None:
        return None
    return int(usd.quantize(NANO, rounding=ROUND_HALF_EVEN).scaleb(9))


def nusd_to_usd(nusd: int | None) -> Decimal | None:
    """Integer nano-dollars to ``Decimal`` dollars (``None`` stays ``None``)."""
    if nusd is None:
        return None
    return Decimal(int(nusd)).scaleb(-9)


def format_usd(usd: Decimal | None) -> str | None:
    """A plain decimal string (no exponent) for JSON, or ``None`` when unknown."""
    if usd is None:
        return None
    text = format(usd, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
