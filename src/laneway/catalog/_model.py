"""The catalog's value types: prices, benchmark figures, capabilities, one model."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

__all__ = [
    "LICENSE_CLASSES",
    "LICENSE_TIERS",
    "Benchmark",
    "Capabilities",
    "KvGeometry",
    "LicenseClass",
    "LicenseTier",
    "ModelInfo",
    "Price",
    "date_key",
]

#: How permissive a model's licence is. Called "licence class" (not "tier") so that it
#: cannot be confused with the router's tiers (simple / standard / complex / frontier).
LicenseClass = Literal["permissive", "bespoke", "community", "closed"]
LICENSE_CLASSES: tuple[LicenseClass, ...] = ("permissive", "bespoke", "community", "closed")
#: Deprecated names of ``LicenseClass`` / ``LICENSE_CLASSES`` (kept for user code).
LicenseTier = LicenseClass
LICENSE_TIERS = LICENSE_CLASSES


def date_key(date: str) -> str:
    """Sort key for ``YYYY-MM-DD`` or ``YYYY-MM`` dates; a month sorts as its first day."""
    return date if len(date) == 10 else f"{date}-01"


@dataclass(frozen=True, slots=True)
class Price:
    """One provider's price for a model, USD per million tokens; ``None`` is unknown.

    ``cached_input_per_mtok`` is the cache-read price; ``cache_write_input_per_mtok`` the price of
    prompt tokens written to the cache (Anthropic: 5-minute TTL) and
    ``cache_write_1h_input_per_mtok`` that of 1-hour cache writes."""

    provider: str
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cached_input_per_mtok: Decimal | None
    date: str
    source: str
    note: str | None = None
    cache_write_input_per_mtok: Decimal | None = None
    cache_write_1h_input_per_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One published benchmark figure, as reported by ``source`` on ``date``."""

    name: str
    value: float
    unit: str
    source: str
    date: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a model can be asked to do; ``None`` is unknown."""

    tools: bool | None
    json_schema: bool | None
    images: bool | None
    context_window: int | None
    max_output_tokens: int | None


@dataclass(frozen=True, slots=True)
class KvGeometry:
    """What one token's KV cache holds: ``layers`` x ``kv_heads`` x ``head_dim`` values, for
    K and V separately (two tensors) or, for a compressed latent cache (DeepSeek's MLA), one
    shared latent of ``head_dim`` values per layer."""

    layers: int
    kv_heads: int
    head_dim: int
    latent: bool
    source: str

    def bytes_per_token(self, bytes_per_value: int = 2) -> int:
        tensors = 1 if self.latent else 2
        return tensors * self.layers * self.kv_heads * self.head_dim * bytes_per_value


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One catalog entry. ``origin`` is an ISO 3166-1 alpha-2 code."""

    id: str
    name: str
    aliases: tuple[str, ...]
    maker: str
    origin: str | None
    license_id: str
    license_class: LicenseClass
    open_weights: bool
    params_total_b: float | None
    params_active_b: float | None
    modalities: tuple[str, ...]
    capabilities: Capabilities
    prices: tuple[Price, ...]
    benchmarks: tuple[Benchmark, ...]
    release_date: str | None
    deprecation_date: datetime.date | None
    sources: tuple[str, ...]
    notes: str | None
    kv_cache: KvGeometry | None = None

    @property
    def license_tier(self) -> LicenseClass:
        """Deprecated name of ``license_class``."""
        return self.license_class

    def prices_for(self, provider: str) -> tuple[Price, ...]:
        """Every recorded price of ``provider``, disagreeing sources included, file order."""
        wanted = provider.lower()
        return tuple(p for p in self.prices if p.provider == wanted)

    @property
    def can_embed(self) -> bool:
        """An embedding model (``embedding`` among its modalities); any other catalog model
        is a chat model, which ``/v1/embeddings`` never sends to."""
        return "embedding" in self.modalities

    def price_for(self, provider: str) -> Price | None:
        """The newest-dated price of ``provider`` (the first one listed on a tie)."""
        best: Price | None = None
        for price in self.prices_for(provider):
            if best is None or date_key(price.date) > date_key(best.date):
                best = price
        return best
