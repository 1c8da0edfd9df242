"""Pricing: pure functions that never raise. An unknown price gives ``None``, never 0.

Prices are US dollars per million tokens. ``cached_tokens`` (cache reads) are part of
``prompt_tokens`` (OpenAI's convention): they are billed at the cached-input price when one
is known, else at the input price. Cache writes (Anthropic's ``cache_creation_input_tokens``)
are part of ``prompt_tokens`` too: ``cache_write_tokens`` of them at the cache-write price
(Anthropic: 1.25x input, 5-minute TTL), of which ``cache_write_1h_tokens`` at the 1-hour
cache-write price (2x input); a missing 1-hour price falls back to the 5-minute one, a
missing 5-minute price to the input price (what was billed before writes were priced).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["amortised_cost", "token_cost"]

_MILLION = Decimal(1_000_000)


def _count(value: int | None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _price(value: Decimal | None) -> Decimal | None:
    if value is None or not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        return None
    return value


def token_cost(
    prompt_tokens: int | None,
    completion_tokens: int | None,
    cached_tokens: int | None,
    *,
    input_per_mtok: Decimal | None,
    output_per_mtok: Decimal | None,
    cached_input_per_mtok: Decimal | None = None,
    cache_write_tokens: int | None = None,
    cache_write_1h_tokens: int | None = None,
    cache_write_input_per_mtok: Decimal | None = None,
    cache_write_1h_input_per_mtok: Decimal | None = None,
) -> Decimal | None:
    """The cost of one call in dollars, or ``None`` when a price it needs is unknown.

    Unknown prompt or completion counts (``None``) give ``None``; unknown ``cached_tokens``
    and cache-write counts count as zero. Reads and writes are taken out of the prompt in
    that order and never exceed it (nor 1-hour writes the writes). A price is only needed
    for the token kinds actually used (no output tokens → no output price needed).
    """
    try:
        prompt, completion = _count(prompt_tokens), _count(completion_tokens)
        cached = 0 if cached_tokens is None else _count(cached_tokens)
        writes = 0 if cache_write_tokens is None else _count(cache_write_tokens)
        writes_1h = 0 if cache_write_1h_tokens is None else _count(cache_write_1h_tokens)
        if prompt is None or completion is None or cached is None:
            return None
        if writes is None or writes_1h is None:
            return None
        cached = min(cached, prompt)
        writes = min(writes, prompt - cached)
        writes_1h = min(writes_1h, writes)
        uncached = prompt - cached - writes
        input_price = _price(input_per_mtok)
        cached_price = _price(cached_input_per_mtok)
        if cached_price is None:
            cached_price = input_price
        write_price = _price(cache_write_input_per_mtok)
        if write_price is None:
            write_price = input_price
        write_1h_price = _price(cache_write_1h_input_per_mtok)
        if write_1h_price is None:
            write_1h_price = write_price
        total = Decimal(0)
        parts = (
            (uncached, input_price),
            (cached, cached_price),
            (writes - writes_1h, write_price),
            (writes_1h, write_1h_price),
            (completion, _price(output_per_mtok)),
        )
        for tokens, price in parts:
            if tokens == 0:
                continue
            if price is None:
                return None
            total += Decimal(tokens) * price
        return total / _MILLION
    except (ArithmeticError, InvalidOperation, TypeError, ValueError):
        return None


def amortised_cost(
    hourly_cost_usd: Decimal | None, row_tokens: int | None, tokens_in_hour: int | None
) -> Decimal | None:
    """A self-hosted row's share of its deployment's hourly cost.

    ``hourly_cost × row_tokens ÷ tokens_in_hour`` where ``tokens_in_hour`` is everything
    the deployment served in that UTC hour. A row that served no tokens costs 0; ``None``
    when the hourly cost or the counts are unknown or inconsistent.
    """
    try:
        hourly = _price(hourly_cost_usd)
        if hourly is None or row_tokens is None or tokens_in_hour is None:
            return None
        if row_tokens < 0 or tokens_in_hour < row_tokens:
            return None
        if row_tokens == 0:
            return Decimal(0)
        return hourly * Decimal(row_tokens) / Decimal(tokens_in_hour)
    except (ArithmeticError, InvalidOperation, TypeError, ValueError):
        return None
