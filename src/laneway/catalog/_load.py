"""Loading and validating ``models.yaml`` (the packaged catalog or any file like it)."""

from __future__ import annotations

import functools
import importlib.resources
import pathlib
import re
import warnings
from typing import cast

import yaml

from laneway.catalog._catalog import Catalog
from laneway.catalog._fields import Fields
from laneway.catalog._model import (
    LICENSE_CLASSES,
    Benchmark,
    Capabilities,
    KvGeometry,
    LicenseClass,
    ModelInfo,
    Price,
)
from laneway.errors import ConfigError
from laneway.settings import read_user_text

__all__ = ["PROVIDERS", "default_catalog", "load_catalog"]

#: Provider keys a price may name: the gateway's vendor ids, plus makers whose own API a
#: source article prices (moonshot, minimax, alibaba, xiaomi, stepfun).
PROVIDERS = frozenset(
    {
        "openai",
        "anthropic",
        "gemini",
        "together",
        "deepinfra",
        "fireworks",
        "groq",
        "openrouter",
        "deepseek",
        "mistral",
        "moonshot",
        "minimax",
        "alibaba",
        "xiaomi",
        "stepfun",
    }
)

_ORIGIN = re.compile(r"^[A-Z]{2}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_MODEL_KEYS = frozenset(
    {
        "id",
        "name",
        "aliases",
        "maker",
        "origin",
        "license_id",
        "license_class",
        "license_tier",  # the deprecated name of license_class, still read
        "open_weights",
        "params_total_b",
        "params_active_b",
        "modalities",
        "capabilities",
        "prices",
        "benchmarks",
        "release_date",
        "deprecation_date",
        "sources",
        "notes",
        "kv_cache",
    }
)
_KV_KEYS = frozenset({"layers", "kv_heads", "head_dim", "latent", "source"})
_CAP_KEYS = frozenset({"tools", "json_schema", "images", "context_window", "max_output_tokens"})
_PRICE_KEYS = frozenset(
    {
        "provider",
        "input",
        "output",
        "cached_input",
        "cache_write_input",
        "cache_write_1h_input",
        "date",
        "source",
        "note",
    }
)
_BENCH_KEYS = frozenset({"name", "value", "unit", "source", "date", "note"})
_SOURCE_KEYS = frozenset({"ref", "date", "covers"})


def _price(data: object, where: str) -> Price:
    f = Fields(data, where)
    f.check_keys(_PRICE_KEYS)
    provider = f.text("provider").lower()
    if provider not in PROVIDERS:
        f.fail("provider", f"unknown provider {provider!r} (known: {', '.join(sorted(PROVIDERS))})")
    amounts = (
        f.money("input"),
        f.money("output"),
        f.money("cached_input"),
        f.money("cache_write_input", required=False),
        f.money("cache_write_1h_input", required=False),
    )
    note = f.opt_text("note")
    if note is None and any(a is not None and a == 0 for a in amounts):
        f.fail("input", "a zero price needs a note saying why (free tier, preview…)")
    if note is None and all(a is None for a in amounts):
        f.fail("input", "a price with no amount at all needs a note")
    return Price(
        provider=provider,
        input_per_mtok=amounts[0],
        output_per_mtok=amounts[1],
        cached_input_per_mtok=amounts[2],
        date=cast(str, f.date("date")),
        source=f.text("source"),
        note=note,
        cache_write_input_per_mtok=amounts[3],
        cache_write_1h_input_per_mtok=amounts[4],
    )


def _benchmark(data: object, where: str) -> Benchmark:
    f = Fields(data, where)
    f.check_keys(_BENCH_KEYS)
    return Benchmark(
        name=f.text("name"),
        value=f.number("value"),
        unit=f.text("unit"),
        source=f.text("source"),
        date=cast(str, f.date("date")),
        note=f.opt_text("note"),
    )


def _source(data: object, where: str) -> str:
    f = Fields(data, where)
    f.check_keys(_SOURCE_KEYS)
    ref, date, covers = f.text("ref"), f.date("date"), f.opt_text("covers")
    return f"{ref} ({date}): {covers}" if covers else f"{ref} ({date})"


def _capabilities(data: object, where: str) -> Capabilities:
    f = Fields(data, where)
    f.check_keys(_CAP_KEYS)
    return Capabilities(
        tools=f.opt_flag("tools"),
        json_schema=f.opt_flag("json_schema"),
        images=f.opt_flag("images"),
        context_window=f.opt_int("context_window"),
        max_output_tokens=f.opt_int("max_output_tokens"),
    )


def _model(data: object, where: str) -> ModelInfo:
    f = Fields(data, where)
    model_id = f.text("id")
    f = Fields(data, f"{where} (model {model_id!r})")
    f.check_keys(_MODEL_KEYS)
    if not _ID.match(model_id):
        f.fail("id", "must be lower-case letters, digits, '.', '_' or '-'")
    origin = f.opt_text("origin", required=True)
    if origin is not None and not _ORIGIN.match(origin):
        f.fail("origin", f"must be an ISO 3166-1 alpha-2 code like 'US' (got {origin!r})")
    license_class = _license_class(f)
    sources = tuple(_source(s, f"{f.where} sources[{i}]") for i, s in enumerate(f.items("sources")))
    if not sources:
        f.fail("sources", "every model needs at least one source (a URL) with a date")
    total, active = f.opt_float("params_total_b"), f.opt_float("params_active_b")
    if total is not None and active is not None and active > total:
        f.fail("params_active_b", f"{active} active exceeds {total} total")
    return ModelInfo(
        id=model_id,
        name=f.text("name"),
        aliases=f.names("aliases", required=False),
        maker=f.text("maker"),
        origin=origin,
        license_id=f.text("license_id"),
        license_class=license_class,
        open_weights=f.flag("open_weights"),
        params_total_b=total,
        params_active_b=active,
        modalities=f.names("modalities"),
        capabilities=_capabilities(f.raw("capabilities", required=True), f"{f.where} capabilities"),
        prices=tuple(_price(p, f"{f.where} prices[{i}]") for i, p in enumerate(f.items("prices"))),
        benchmarks=tuple(
            _benchmark(b, f"{f.where} benchmarks[{i}]") for i, b in enumerate(f.items("benchmarks"))
        ),
        release_date=f.date("release_date", required=False),
        deprecation_date=f.full_date("deprecation_date"),
        sources=sources,
        notes=f.opt_text("notes"),
        kv_cache=_kv_cache(f.raw("kv_cache", required=False), f"{f.where} kv_cache"),
    )


def _license_class(f: Fields) -> LicenseClass:
    """``license_class``, or the deprecated ``license_tier`` with a warning (not both)."""
    field = "license_class"
    if f.raw("license_tier", required=False) is not None:
        if f.raw("license_class", required=False) is not None:
            f.fail("license_tier", "give license_class only (license_tier is its old name)")
        warnings.warn(
            f"{f.where}: 'license_tier' is deprecated, rename it 'license_class'",
            DeprecationWarning,
            stacklevel=4,
        )
        field = "license_tier"
    value = f.text(field)
    if value not in LICENSE_CLASSES:
        f.fail(field, f"{value!r} is not one of {', '.join(LICENSE_CLASSES)}")
    return value


def _kv_cache(data: object, where: str) -> KvGeometry | None:
    if data is None:
        return None
    f = Fields(data, where)
    f.check_keys(_KV_KEYS)
    layers, heads, dim = f.opt_int("layers"), f.opt_int("kv_heads"), f.opt_int("head_dim")
    if layers is None or heads is None or dim is None:
        f.fail("layers", "layers, kv_heads and head_dim are all required (or leave kv_cache out)")
    latent = f.raw("latent", required=False)
    if latent is not None and not isinstance(latent, bool):
        f.fail("latent", "must be true or false")
    return KvGeometry(layers, heads, dim, bool(latent), f.text("source"))


def _check_unique(models: list[ModelInfo], where: str) -> None:
    owner: dict[str, str] = {}
    for model in models:
        names = [("id", model.id)] + [("aliases", a) for a in model.aliases]
        for field, name in names:
            key = name.lower()
            other = owner.get(key)
            if other is not None:
                raise ConfigError(
                    f"{where} (model {model.id!r}): field {field!r}: {name!r} is already "
                    f"the id or an alias of {other!r}",
                    param=field,
                )
            owner[key] = model.id


# A catalog file a user names: at most this many bytes (the packaged one is ~100 kB).
MAX_CATALOG_BYTES = 16 * 1024 * 1024


def _parse(text: str, where: str, *, packaged: bool = False) -> Catalog:
    # libyaml's loader is ~4x faster and used for the packaged file; on a user's file it
    # is not: it crashes the process (SIGSEGV) on deeply nested input, where the
    # pure-Python loader raises RecursionError.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if packaged else yaml.SafeLoader
    try:
        document = yaml.load(text, Loader=loader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML: nested too deeply") from None
    top = Fields(document, where)
    top.check_keys(frozenset({"version", "updated", "models"}))
    version = top.raw("version", required=True)
    if isinstance(version, bool) or not isinstance(version, int):
        top.fail("version", "must be an integer")
    updated = top.date("updated")
    entries = top.items("models")
    if not entries:
        top.fail("models", "must be a non-empty list")
    models = [_model(entry, f"{where}: models[{i}]") for i, entry in enumerate(entries)]
    _check_unique(models, where)
    return Catalog(models, version=version, updated=updated)


def load_catalog(path: pathlib.Path | None = None) -> Catalog:
    """Load and validate a catalog file; the packaged ``models.yaml`` by default.

    Raises ``ConfigError`` naming the file, the model id and the field on any problem.
    """
    if path is None:
        resource = importlib.resources.files("laneway.catalog").joinpath("models.yaml")
        text = resource.read_text(encoding="utf-8")
        return _parse(text, "laneway/catalog/models.yaml", packaged=True)
    try:
        text = read_user_text(path, "catalog file", MAX_CATALOG_BYTES)
    except ConfigError as exc:
        raise ConfigError(f"cannot read the catalog: {exc.message}") from None
    return _parse(text, str(path))


@functools.cache
def default_catalog() -> Catalog:
    """The packaged catalog, loaded once per process."""
    return load_catalog()
