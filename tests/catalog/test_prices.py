"""The packaged catalog's prices: every model the source articles name is priced, with an
https source and a date, or is on an explicit list of models left unpriced with a reason."""

from __future__ import annotations

import importlib.resources
import re

import pytest
import yaml

import laneway.catalog
from laneway.catalog import Catalog, ModelInfo, Price

#: The articles the catalog draws on (public pages; the project ships none of them).
ARTICLES = (
    "https://www.digitalapplied.com/blog/open-weight-vs-closed-source-ai-models-q2-2026",
    "https://www.sabaoon.dev/blog/open-weight-vs-closed-source-ai-2026",
    "https://aitechconnect-976.pages.dev/news/open-weight-models-closed-gap-kimi-k2-gpt-5-5",
    "https://rtsnstudios.com/insights-knowledge-open-vs-closed-models",
    "https://novaaiops.com/blog/open-vs-closed-weights-2026",
)

#: Catalog models the articles name, by id (read from the articles, not from the catalog).
ARTICLE_MODELS = (
    # Digital Applied, 2026-04-12
    "mimo-v2-pro",
    "minimax-m2.7",
    "step-3.5-flash",
    "nemotron-3-super-120b",
    "deepseek-v3.2",
    "kimi-k2.5",
    "gemma-4-31b",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "gpt-5.4",
    "gpt-5.4-pro",
    "gemini-3.1-pro",
    "qwen3.6-plus",
    "qwen3.5-omni",
    "claude-opus-4-7",
    "mimo-v2-omni",
    "phi-4-reasoning-vision-15b",
    "gpt-5.3-codex",
    # sabaoon.dev, 2026-06-30
    "deepseek-v4-pro",
    "deepseek-v4-flash",
    "deepseek-r1",
    "deepseek-v3",
    "llama-4-scout",
    "llama-4-maverick",
    "qwen3-235b-a22b",
    "qwq-32b",
    "mistral-large-3",
    "gemma-3-ultra",
    "gpt-5-pro",
    "claude-opus-4-8",
    "gemini-2.5-ultra",
    "gpt-5",
    "o1",
    # AI Tech Connect, May 2026
    "kimi-k2.6",
    "mimo-v2.5-pro",
    "gpt-5.5",
    "qwen3-coder-next",
    "qwen3.6-27b",
    "glm-5",
    "glm-5.1",
    "mistral-medium-3.5",
    "zaya1-8b",
    # RTSN, June 2026
    "minimax-m2.5",
    "llama-3.3-70b-instruct",
    "phi-4",
    "gemini-2.5-pro",
    "gpt-4o-2024-05-13",
)

#: Named by the articles but with no list price that could be sourced; each model's notes
#: say why ("Unpriced: ..."). A model that gains a price must leave this list.
UNPRICED = frozenset(
    {
        "gemma-4-31b",  # resellers only
        "qwen3.6-plus",  # free preview only
        "qwen3.5-omni",
        "mimo-v2-omni",
        "phi-4-reasoning-vision-15b",
        "gemma-3-ultra",  # no such published model
        "mimo-v2.5-pro",  # CNY only
        "qwen3-coder-next",
        "qwen3.6-27b",
        "zaya1-8b",  # free endpoint only
    }
)

DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return laneway.catalog.load_catalog()


def _usable(price: Price) -> bool:
    """A price a cost can be computed from: input and output known, not a $0/$0 free tier."""
    i, o = price.input_per_mtok, price.output_per_mtok
    return i is not None and o is not None and bool(i or o)


def _cites_an_article(model: ModelInfo) -> bool:
    refs = (*model.sources, *(p.source for p in model.prices))
    refs += tuple(b.source for b in model.benchmarks)
    return any(ref.startswith(ARTICLES) for ref in refs)


def test_the_article_models_are_in_the_catalog_and_cite_their_article(catalog: Catalog) -> None:
    for model_id in ARTICLE_MODELS:
        model = catalog.get(model_id)
        assert model is not None, model_id
        assert model.id == model_id
        assert _cites_an_article(model), model_id
    assert set(ARTICLE_MODELS) >= UNPRICED


def test_every_model_an_article_names_has_a_sourced_dated_price(catalog: Catalog) -> None:
    missing = []
    for model_id in ARTICLE_MODELS:
        if model_id in UNPRICED:
            continue
        model = catalog.require(model_id)
        usable = [p for p in model.prices if _usable(p)]
        if not usable:
            missing.append(model_id)
        for price in usable:
            assert price.source.startswith("https://"), (model_id, price.source)
            assert DATE.match(price.date), (model_id, price.date)
    assert missing == []


def test_models_left_unpriced_say_why_and_really_have_no_price(catalog: Catalog) -> None:
    for model_id in UNPRICED:
        model = catalog.require(model_id)
        assert not any(_usable(p) for p in model.prices), f"{model_id} is priced now: unlist it"
        assert model.notes is not None and "Unpriced: " in model.notes, model_id


def test_the_issue_models_have_list_prices_per_provider(catalog: Catalog) -> None:
    """gpt-4o and llama-3.1-8b (the issue's examples), and serverless hosts for open weights."""
    gpt4o = catalog.require("gpt-4o").price_for("openai")
    assert gpt4o is not None and _usable(gpt4o)
    llama8 = catalog.require("llama-3.1-8b")
    assert {p.provider for p in llama8.prices if _usable(p)} >= {"groq", "together"}
    kimi = catalog.require("kimi-k2.6").price_for("fireworks")
    assert kimi is not None and _usable(kimi) and kimi.cached_input_per_mtok is not None
    nemotron = catalog.require("nemotron-3-super-120b").price_for("deepinfra")
    assert nemotron is not None and _usable(nemotron)
    v4 = catalog.require("deepseek-v4-pro")
    assert {p.provider for p in v4.prices if _usable(p)} >= {"deepseek", "fireworks"}


def test_every_source_in_the_catalog_is_an_https_url(catalog: Catalog) -> None:
    for model in catalog.models:
        refs = [
            *model.sources,
            *(p.source for p in model.prices),
            *(b.source for b in model.benchmarks),
            *([model.kv_cache.source] if model.kv_cache is not None else []),
        ]
        for ref in refs:
            assert ref.startswith("https://"), (model.id, ref)
            assert "seeds/" not in ref, (model.id, ref)


def test_the_catalog_file_names_no_unshipped_file() -> None:
    files = importlib.resources.files("laneway.catalog")
    text = files.joinpath("models.yaml").read_text(encoding="utf-8")
    assert "seeds/" not in text and ".txt" not in text


def test_provider_reference_rows_cite_public_pages() -> None:
    files = importlib.resources.files("laneway.advisor")
    data = yaml.safe_load(files.joinpath("providers.yaml").read_text(encoding="utf-8"))
    assert set(data["providers"]) == set(laneway.catalog.PROVIDERS)
    for name, row in data["providers"].items():
        source = str(row["source"])
        assert "https://" in source and "seeds/" not in source, name
