"""Cache-write prices: Anthropic's rows carry the 5-minute (1.25x input) and 1-hour (2x
input) cache-write prices beside the cache-read price (0.1x input); a price row may leave
them out (unknown) and nothing else changes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from laneway.catalog import default_catalog, load_catalog
from laneway.errors import ConfigError
from tests.catalog.test_validation import _model, _write

ANTHROPIC_MODELS = ("claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-7", "claude-opus-4-8")


@pytest.mark.parametrize("model", ANTHROPIC_MODELS)
def test_anthropic_prices_carry_cache_writes_at_the_published_multipliers(model: str) -> None:
    price = default_catalog().require(model).price_for("anthropic")
    assert price is not None
    assert (price.source, price.date) == ("https://www.anthropic.com/pricing", "2026-12-07")
    base = price.input_per_mtok
    assert base is not None
    assert price.cache_write_input_per_mtok == base * Decimal("1.25")
    assert price.cache_write_1h_input_per_mtok == base * 2
    assert price.cached_input_per_mtok == base / 10


def test_sonnet_figures_exactly() -> None:
    price = default_catalog().require("claude-sonnet-4-6").price_for("anthropic")
    assert price is not None
    figures = (
        price.input_per_mtok,
        price.cache_write_input_per_mtok,
        price.cache_write_1h_input_per_mtok,
    )
    assert figures == (Decimal("3"), Decimal("3.75"), Decimal("6"))


def test_other_providers_have_no_cache_write_price() -> None:
    gpt = default_catalog().require("gpt-5.4").price_for("openai")
    assert gpt is not None
    assert (gpt.cache_write_input_per_mtok, gpt.cache_write_1h_input_per_mtok) == (None, None)


def test_a_negative_cache_write_price_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _model(note=', cache_write_input: "-1"'))
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    assert "cache_write_input" in str(caught.value)


def test_a_price_may_give_cache_write_prices_or_not(tmp_path: Path) -> None:
    path = _write(tmp_path, _model(note=', cache_write_1h_input: "2"'))
    price = load_catalog(path).require("test-model").price_for("together")
    assert price is not None
    assert price.cache_write_input_per_mtok is None
    assert price.cache_write_1h_input_per_mtok == Decimal("2")
