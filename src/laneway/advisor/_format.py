"""How the advisor writes numbers for people: tokens as 1.2M / 3.4B, money with thousands
separators, never ``None`` or ``False``."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["human_tokens", "usd"]

_UNITS = (
    (Decimal(10) ** 12, "T"),
    (Decimal(10) ** 9, "B"),
    (Decimal(10) ** 6, "M"),
    (Decimal(1000), "k"),
)


def human_tokens(value: Decimal | int | None) -> str:
    """``288_350_000`` → ``288M``; ``1_500`` → ``1.5k``; ``None`` → ``unknown``."""
    if value is None:
        return "unknown"
    number = Decimal(value)
    for size, unit in _UNITS:
        if abs(number) >= size:
            scaled = number / size
            text = f"{scaled:,.0f}" if scaled >= 100 else f"{scaled:,.1f}".removesuffix(".0")
            return f"{text}{unit}"
    return f"{number:,.0f}"


def usd(value: Decimal | None, places: int | None = None) -> str:
    """``Decimal('25206')`` → ``$25,206``; ``Decimal('0.84')`` → ``$0.84`` (cents below
    $100 unless ``places`` says otherwise, so a small bill never reads ``$0``); ``None`` →
    ``unknown``."""
    if value is None:
        return "unknown"
    if places is None:
        places = 2 if abs(value) < 100 else 0
    return f"${value:,.{places}f}"
