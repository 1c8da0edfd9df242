"""Reference data the advisor checks inputs against and decides with: ISO 3166-1 country
codes (``countries.yaml``), where each price provider runs inference (``providers.yaml``)
and which models the source articles name per capability (``roles.yaml``). Read once, on first use.

The ``check_*`` functions turn a user's value into the canonical one or raise
``InvalidRequest`` with a suggestion ("'China' is not an ISO 3166-1 code; did you mean 'CN'?").
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from laneway.advisor._sources import expand
from laneway.catalog import LICENSE_CLASSES, Catalog, ModelInfo
from laneway.errors import InvalidRequest

__all__ = [
    "ProviderInfo",
    "Roles",
    "check_country",
    "check_license",
    "check_model",
    "in_region",
    "provider_info",
    "roles",
]


def _read(name: str) -> Any:
    text = importlib.resources.files("laneway.advisor").joinpath(name).read_text("utf-8")
    return yaml.safe_load(text)


@functools.cache
def _countries() -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    data = _read("countries.yaml")
    codes = {str(k): tuple(str(n) for n in v) for k, v in data["countries"].items()}
    return codes, frozenset(str(c) for c in data["eu_members"])


def check_country(value: str, where: str) -> str:
    """``value`` as an upper-case ISO 3166-1 alpha-2 code (``EU`` included), or
    ``InvalidRequest`` suggesting the code for a country name or a near miss."""
    codes, _ = _countries()
    code = value.strip().upper()
    if code in codes:
        return code
    wanted = value.strip().lower()
    by_name = {name.lower(): c for c, names in codes.items() for name in names}
    guess = by_name.get(wanted)
    if guess is None:
        close = difflib.get_close_matches(wanted, list(by_name), n=1, cutoff=0.75)
        guess = by_name[close[0]] if close else None
    if guess is None:
        close = difflib.get_close_matches(code, list(codes), n=1, cutoff=0.5)
        guess = close[0] if close and len(code) == 2 else None
    hint = f"; did you mean {guess!r} ({codes[guess][0]})?" if guess else ""
    raise InvalidRequest(
        f"{where}: {value!r} is not an ISO 3166-1 alpha-2 country code such as 'US' or 'CN'{hint}"
    )


def in_region(regions: Iterable[str], wanted: Iterable[str]) -> bool:
    """Whether any of ``regions`` (codes, ``EU`` = the EU27) covers every code of
    ``wanted``; an empty ``wanted`` is always covered."""
    _, eu = _countries()
    have = set(regions)
    for code in wanted:
        if code in have or (code in eu and "EU" in have):
            continue
        if code == "EU" and "EU" in have:
            continue
        return False
    return True


def check_license(value: str, catalog: Catalog, where: str) -> str:
    """A licence class or a licence id the catalog knows (lower-case), else an error with
    the closest known name."""
    wanted = value.strip().lower()
    known = {c.lower() for c in LICENSE_CLASSES} | {m.license_id.lower() for m in catalog.models}
    if wanted in known:
        return wanted
    close = difflib.get_close_matches(wanted, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InvalidRequest(
        f"{where}: unknown licence {value!r}: use a licence class "
        f"({', '.join(LICENSE_CLASSES)}) or a licence id from the catalog{hint}"
    )


def check_model(value: str, catalog: Catalog, where: str) -> ModelInfo:
    """The catalog model named ``value`` (id or alias), else an error with close ids."""
    model = catalog.get(value)
    if model is not None:
        return model
    close = catalog.close_matches(value)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise InvalidRequest(f"{where}: model {value!r} is not in the catalog{hint}")


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    key: str
    country: str
    regions: tuple[str, ...]
    compliance_docs: bool
    kind: str
    source: str
    date: str


@functools.cache
def _providers() -> Mapping[str, ProviderInfo]:
    data = _read("providers.yaml")["providers"]
    return {
        key: ProviderInfo(
            key=key,
            country=str(row["country"]),
            regions=tuple(str(r) for r in row["regions"]),
            compliance_docs=bool(row["compliance_docs"]),
            kind=str(row["kind"]),
            source=" ".join(str(row["source"]).split()),
            date=str(row["date"]),
        )
        for key, row in data.items()
    }


def provider_info(key: str) -> ProviderInfo | None:
    """What the advisor knows about a price provider (``None``: nothing, so no region and
    no compliance documentation can be assumed)."""
    return _providers().get(key)


@dataclass(frozen=True, slots=True)
class Roles:
    """Models per capability, with the article's sentence behind each list."""

    models: Mapping[str, tuple[str, ...]]
    sources: Mapping[str, str]

    def has(self, role: str, model: ModelInfo) -> bool:
        return model.id in self.models.get(role, ())


@functools.cache
def roles() -> Roles:
    data = _read("roles.yaml")["roles"]
    return Roles(
        models={k: tuple(v["models"]) for k, v in data.items()},
        sources={k: expand(" ".join(str(v["source"]).split()), url=True) for k, v in data.items()},
    )
