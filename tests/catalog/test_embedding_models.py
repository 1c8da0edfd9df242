"""Embedding models in the catalog: ``modalities: [embedding]`` is what ``can_embed``
reads; every other catalog model is a chat model."""

from __future__ import annotations

from decimal import Decimal

import pytest

from laneway.catalog import default_catalog


@pytest.mark.parametrize(
    ("model", "provider", "price"),
    [
        ("text-embedding-3-small", "openai", Decimal("0.02")),
        ("text-embedding-3-large", "openai", Decimal("0.13")),
        ("gemini-embedding-001", "gemini", None),
    ],
)
def test_embedding_models_can_embed_with_their_input_price(
    model: str, provider: str, price: Decimal | None
) -> None:
    info = default_catalog().require(model)
    assert info.can_embed and "text" not in info.modalities
    found = info.price_for(provider)
    assert (found.input_per_mtok if found else None) == price


def test_chat_models_cannot_embed() -> None:
    catalog = default_catalog()
    assert not catalog.require("gpt-4o").can_embed
    assert not catalog.require("claude-sonnet-4-6").can_embed
    assert sum(m.can_embed for m in catalog.models) == 3
