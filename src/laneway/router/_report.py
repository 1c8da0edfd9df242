"""``laneway router report``: the tier split and the cost saved against all-frontier.

The counterfactual prices every request's tokens (prompt, cached, completion, as the
ledger recorded them) at the baseline tier's deployment price: what the same traffic
would have cost had every request gone to that tier. It assumes the baseline model
would have produced as many tokens, which is the usual first-order estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from laneway.errors import ConfigError

__all__ = ["BaselinePrice", "SavingsReport", "TierSpend", "baseline_price", "savings_report"]


@dataclass(frozen=True, slots=True)
class BaselinePrice:
    """USD per million tokens of the deployment every request is priced at."""

    tier: str
    deployment: str
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cached_input_per_mtok: Decimal | None
    source: str


@dataclass(frozen=True, slots=True)
class TierSpend:
    tier: str
    requests: int
    share: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal | None
    baseline_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class SavingsReport:
    baseline: BaselinePrice
    tiers: tuple[TierSpend, ...]
    requests: int
    actual_usd: Decimal | None
    all_baseline_usd: Decimal | None

    @property
    def saved_usd(self) -> Decimal | None:
        if self.actual_usd is None or self.all_baseline_usd is None:
            return None
        return self.all_baseline_usd - self.actual_usd

    @property
    def saved_fraction(self) -> float | None:
        saved = self.saved_usd
        if saved is None or self.all_baseline_usd is None or self.all_baseline_usd == 0:
            return None
        return float(saved / self.all_baseline_usd)


def _strongest(tiers: Sequence[str], order: Sequence[str]) -> str:
    known = [t for t in order if t in tiers]
    return known[-1] if known else tiers[-1]


def _runs_free(deployment: Any, vendor: Any) -> bool:
    """Self-hosted or embedded with an hourly cost of 0: the gateway bills it $0."""
    hosting = deployment.hosting
    if hosting is None:
        if deployment.provider == "local":
            hosting = "embedded"
        else:
            hosting = vendor.hosting if vendor is not None else "self_hosted"
    return hosting in ("self_hosted", "embedded") and deployment.hourly_cost_usd == 0


def baseline_price(
    settings: Any, catalog: Any, tier: str | None, order: Sequence[str]
) -> BaselinePrice:
    """Price of the first priced deployment of ``tier`` (default: the strongest tier
    by ``order``, else the last configured one); prices as the gateway takes them:
    the deployment's ``price`` override, else the catalog's newest provider price,
    else $0 for a self-hosted or embedded deployment with ``hourly_cost_usd: 0`` (the
    built-in embedded model: a known cost of 0, as the ledger records it)."""
    from laneway.providers import vendor_for

    tiers: Mapping[str, Sequence[str]] = settings.tiers
    if not tiers:
        raise ConfigError("the config has no tiers to compare against")
    chosen = tier or _strongest(list(tiers), order)
    if chosen not in tiers:
        raise ConfigError(f"unknown tier {chosen!r}; configured: {', '.join(tiers)}")
    for name in tiers[chosen]:
        d = settings.deployment(name)
        if d is None:
            continue
        if d.price is not None and d.price.input_per_mtok is not None:
            p = d.price
            return BaselinePrice(
                chosen,
                name,
                p.input_per_mtok,
                p.output_per_mtok,
                p.cached_input_per_mtok,
                "config",
            )
        info = catalog.get(d.model)
        vendor = vendor_for(d)
        price = None if info is None else info.price_for(vendor.id if vendor else d.provider)
        if price is not None:
            return BaselinePrice(
                chosen,
                name,
                price.input_per_mtok,
                price.output_per_mtok,
                price.cached_input_per_mtok,
                f"catalog:{price.source}@{price.date}",
            )
    for name in tiers[chosen]:
        d = settings.deployment(name)
        if d is not None and d.price is None and _runs_free(d, vendor_for(d)):
            zero = Decimal(0)
            return BaselinePrice(chosen, name, zero, zero, zero, "local: hourly cost 0")
    raise ConfigError(f"no deployment of tier {chosen!r} has a known price")


def savings_report(groups: Sequence[Any], baseline: BaselinePrice) -> SavingsReport:
    """``groups``: ``laneway.ledger.usage_summary(..., by="tier")``."""
    from laneway.ledger import token_cost

    total = sum(g.requests for g in groups)
    rows: list[TierSpend] = []
    actual: Decimal | None = Decimal(0)
    counter: Decimal | None = Decimal(0)
    for g in groups:
        base = token_cost(
            g.prompt_tokens,
            g.completion_tokens,
            g.cached_tokens,
            input_per_mtok=baseline.input_per_mtok,
            output_per_mtok=baseline.output_per_mtok,
            cached_input_per_mtok=baseline.cached_input_per_mtok,
        )
        rows.append(
            TierSpend(
                g.key if g.key is not None else "-",
                g.requests,
                g.requests / total if total else 0.0,
                g.prompt_tokens,
                g.completion_tokens,
                g.cost_usd,
                base,
            )
        )
        actual = None if actual is None or g.cost_usd is None else actual + g.cost_usd
        counter = None if counter is None or base is None else counter + base
    return SavingsReport(baseline, tuple(rows), total, actual, counter)
