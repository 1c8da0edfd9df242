from __future__ import annotations

import gzip
import json
import pathlib
import re
from decimal import Decimal

import pytest

import laneway.catalog
from laneway.catalog import Catalog, ModelInfo, default_catalog, load_catalog
from laneway.errors import ModelNotFound

SHARED = pathlib.Path("/work/shared/data")
DATA_MODELS = (
    "gpt-4o-2024-05-13",
    "gemini-1.5-pro-002",
    "gemini-1.5-flash-002",
    "llama-3.1-70b-instruct",
    "deepseek-coder-v2",
    "jamba-1.5-large",
    "qwen1.5-72b-chat",
    "llama-3.1-8b-instruct",
    "phi-3-mini-4k-instruct",
    "mixtral-8x7b-instruct-v0.1",
    "mistral-7b-instruct-v0.2",
)
DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_exports_are_sorted_and_complete() -> None:
    names = laneway.catalog.__all__
    # isort-style order, as ruff's RUF022 keeps it: CONSTANTS, Classes, functions
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in laneway.catalog.__all__:
        assert hasattr(laneway.catalog, name)


def test_packaged_file_loads_with_at_least_25_models(catalog: Catalog) -> None:
    assert len(catalog.models) >= 25
    assert catalog.updated is not None
    assert DATE.match(catalog.updated)
    assert default_catalog() is default_catalog()
    assert [m.id for m in default_catalog().models] == [m.id for m in catalog.models]


def test_every_model_of_the_shared_data_file_is_present(catalog: Catalog) -> None:
    for model_id in DATA_MODELS:
        model = catalog.get(model_id)
        assert model is not None
        assert model.id == model_id
        assert any(b.name.startswith("MMLU-Pro") for b in model.benchmarks)


@pytest.mark.skipif(not (SHARED / "mmlu-pro-outcomes.jsonl.gz").exists(), reason="no shared data")
def test_outcome_file_model_names_map_to_catalog_ids(catalog: Catalog) -> None:
    with gzip.open(SHARED / "mmlu-pro-outcomes.jsonl.gz", "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    names = set(first["outcomes"])
    assert names == set(DATA_MODELS)
    assert all(catalog.require(n).id == n for n in names)


def test_embedded_local_model_is_catalogued(catalog: Catalog) -> None:
    model = catalog.require("smollm2")
    assert model.id == "smollm2-135m-instruct"
    assert (model.license_id, model.license_class, model.open_weights) == (
        "Apache-2.0",
        "permissive",
        True,
    )
    assert model.params_total_b == 0.135


def test_every_price_and_benchmark_is_sourced_and_dated(catalog: Catalog) -> None:
    for model in catalog.models:
        assert model.sources, model.id
        for item in (*model.prices, *model.benchmarks):
            assert item.source.startswith("https://"), (model.id, item)
            assert DATE.match(item.date), (model.id, item)
        for price in model.prices:
            assert price.provider in laneway.catalog.PROVIDERS


def test_no_price_is_silently_zero_and_none_negative(catalog: Catalog) -> None:
    zeros = 0
    for model in catalog.models:
        for price in model.prices:
            amounts = (price.input_per_mtok, price.output_per_mtok, price.cached_input_per_mtok)
            assert all(a is None or isinstance(a, Decimal) for a in amounts)
            assert all(a is None or a >= 0 for a in amounts)
            if any(a == 0 for a in amounts if a is not None):
                zeros += 1
                assert price.note, (model.id, price)
            if all(a is None for a in amounts):
                assert price.note, (model.id, price)
    assert zeros >= 1  # the free preview / free tier entries exist and carry notes


def test_origins_are_alpha2_and_tiers_valid(catalog: Catalog) -> None:
    for model in catalog.models:
        assert model.origin is None or re.fullmatch(r"[A-Z]{2}", model.origin)
        assert model.license_class in laneway.catalog.LICENSE_CLASSES
        if not model.open_weights:
            assert model.license_class == "closed", model.id


def test_seed_facts_are_recorded_exactly(catalog: Catalog) -> None:
    mimo = catalog.require("mimo-v2-pro")
    assert mimo.params_active_b == 42
    price = mimo.price_for("xiaomi")
    assert price is not None
    assert (price.input_per_mtok, price.output_per_mtok) == (Decimal("1"), Decimal("3"))
    gpt = catalog.require("gpt-5.4").price_for("openai")
    assert gpt is not None
    assert gpt.input_per_mtok == Decimal("2.50")
    assert catalog.require("mistral-7b-instruct-v0.2").license_id == "Apache-2.0"
    assert catalog.require("llama-4-maverick").license_id == "llama-4-community"


def test_disagreeing_article_prices_are_both_kept(catalog: Catalog) -> None:
    opus = catalog.require("claude-opus-4.8")
    prices = opus.prices_for("anthropic")
    assert {(p.input_per_mtok, p.output_per_mtok, p.source) for p in prices} == {
        (
            Decimal("5"),
            Decimal("25"),
            "https://rtsnstudios.com/insights-knowledge-open-vs-closed-models",
        ),
        (
            Decimal("25"),
            Decimal("100"),
            "https://www.sabaoon.dev/blog/open-weight-vs-closed-source-ai-2026",
        ),
        (Decimal("5"), Decimal("25"), "https://platform.claude.com/docs/en/about-claude/pricing"),
        (Decimal("5"), Decimal("25"), "https://www.anthropic.com/pricing"),
    }
    newest = opus.price_for("anthropic")
    assert newest is not None
    assert newest.date == "2026-12-07" and newest.cached_input_per_mtok == Decimal("0.50")
    assert opus.price_for("openai") is None
    assert opus.prices_for("openai") == ()


def test_unknown_facts_are_none(catalog: Catalog) -> None:
    gpt4o = catalog.require("gpt-4o")
    assert gpt4o.params_total_b is None
    (price,) = gpt4o.prices
    assert price.cached_input_per_mtok is None  # not offered for that snapshot: unknown
    # the article's blended "~$0.30/1M" has no input/output split: kept, amounts unknown
    flash = catalog.require("deepseek-v4-flash").prices_for("deepseek")
    (blended,) = [p for p in flash if p.date == "2026-06-30"]
    assert blended.input_per_mtok is None
    assert blended.output_per_mtok is None


def test_lookup_by_alias_is_case_insensitive(catalog: Catalog) -> None:
    assert catalog.get("GPT-4o") is catalog.get("gpt-4o-2024-05-13")
    assert catalog.get("  Gemini-1.5-Pro ") is catalog.get("gemini-1.5-pro-002")
    assert catalog.get("qwen3") is catalog.get("qwen3-235b-a22b")
    assert catalog.get("no-such-model") is None


def test_ids_and_aliases_are_unique(catalog: Catalog) -> None:
    names = [n.lower() for m in catalog.models for n in (m.id, *m.aliases)]
    assert len(names) == len(set(names))


def test_require_names_close_matches(catalog: Catalog) -> None:
    with pytest.raises(ModelNotFound) as info:
        catalog.require("claude-opus-4-9")
    assert "claude-opus-4-9" in info.value.message
    assert "claude-opus-4-8" in info.value.message
    with pytest.raises(ModelNotFound, match=r"not in the catalog$"):
        catalog.require("zzzzzzzzzzzzzzzzzzzz")


def _ids(models: tuple[ModelInfo, ...]) -> set[str]:
    return {m.id for m in models}


def test_filters(catalog: Catalog) -> None:
    open_ = catalog.filter(open_weights=True)
    closed = catalog.filter(open_weights=False)
    assert _ids(open_) | _ids(closed) == _ids(catalog.models)
    assert not _ids(open_) & _ids(closed)
    assert "llama-3.1-8b-instruct" in _ids(open_)
    assert "gpt-5.4" in _ids(closed)

    permissive = catalog.filter(license="PERMISSIVE")
    assert permissive
    assert all(m.license_class == "permissive" for m in permissive)
    apache = catalog.filter(license="apache-2.0")
    assert "mistral-large-3" in _ids(apache)
    assert all(m.license_id == "Apache-2.0" for m in apache)

    cn = catalog.filter(origin="cn")
    assert cn
    assert all(m.origin == "CN" for m in cn)
    both = catalog.filter(open_weights=False, origin="CN")
    assert _ids(both) == {"qwen3.6-plus", "qwen3.5-omni"}
    assert catalog.filter(origin="ZZ") == ()
    assert catalog.filter() == catalog.models


def test_prices_added_for_the_issue_models_are_sourced_and_dated() -> None:
    catalog = laneway.catalog.default_catalog()
    for model_id, provider in (
        ("gpt-4o", "openai"),
        ("llama-3.1-8b", "groq"),
        ("llama-3.3-70b-instruct", "groq"),
        ("deepseek-v3.2", "deepseek"),
        ("claude-opus-4-6", "anthropic"),
        ("gpt-5.4", "openai"),
    ):
        price = catalog.require(model_id).price_for(provider)
        assert price is not None, model_id
        assert price.input_per_mtok and price.output_per_mtok, model_id
        assert price.source.startswith("https://"), price.source
    cached = catalog.require("deepseek-v3.2").price_for("deepseek")
    assert cached is not None and cached.cached_input_per_mtok == Decimal("0.028")
    for model in catalog.models:
        for price in model.prices:
            assert not price.source.startswith(("data/", "shared/")), (model.id, price.source)


def test_moe_models_the_seeds_self_host_have_active_parameters() -> None:
    catalog = laneway.catalog.default_catalog()
    v32 = catalog.require("deepseek-v3.2")
    assert v32.params_active_b == 37 and v32.kv_cache is not None and v32.kv_cache.latent
    # MLA: one 576-value latent per layer, 61 layers, BF16
    assert v32.kv_cache.bytes_per_token() == 61 * 576 * 2
