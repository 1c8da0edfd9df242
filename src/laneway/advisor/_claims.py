"""The source articles' conflicting crossover claims (~3M to 500M tokens/day), side by side
with Laneway's own crossover for one reference fleet against the API price each article
compares with, and the API price at which Laneway's crossover lands where the article says.
The spread comes mostly from the API price compared against (about $0.12/M to $6/M blended,
a 50× range), then from whether ops staff are counted and from utilisation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from laneway.advisor._assumptions import Assumptions
from laneway.advisor._sources import source
from laneway.advisor._tco import Load, ModelSize, crossover_tokens_per_day, self_hosted_monthly

__all__ = ["REFERENCE", "crossover_claims"]

M = Decimal(1_000_000)
#: The reference fleet: Llama 3.3 70B (dense, BF16) on the assumptions' GPU, 1,000-token
#: requests, 75% input, steady traffic (RTSN's own comparison model, ``_sources`` 003).
REFERENCE = ModelSize(Decimal(70), Decimal(70), Decimal(327_680))

_CLAIMS: tuple[tuple[str, str, Decimal, Decimal | None, str, str], ...] = (
    (
        "000",
        "Below roughly 100 million tokens per month, serverless open-weight APIs ... beat "
        "self-hosted H100 or B200 rigs",
        Decimal(100_000_000) / 30,
        Decimal("1.50"),
        "serverless open-weight (MiMo V2 Pro $1/$3 → $1.50/M blended)",
        "a lower bound ('below'), not a crossover: true at any price, since one fleet's fixed "
        "ops alone exceed the API bill there",
    ),
    (
        "000",
        "Self-hosting makes sense for ... truly high-volume workloads (500M+ tokens per month "
        "sustained)",
        Decimal(500_000_000) / 30,
        Decimal("1.50"),
        "serverless open-weight (MiMo V2 Pro's $3 output)",
        "counts GPU rent only ('$0.50 to $1.00 per million output tokens'), not ops staff or "
        "update cycles",
    ),
    (
        "004",
        "Crossover happens around 10M-100M tokens/day depending on use case",
        Decimal(10_000_000),
        None,
        "not stated ('API pricing assumes profit margin')",
        "no price or ops cost stated; reproducible only against frontier-priced APIs",
    ),
    (
        "002",
        "If you are processing tens of millions of tokens a day, steadily, the maths can swing "
        "hard towards self-hosting",
        Decimal(30_000_000),
        Decimal(6),
        "a frontier API (Claude Sonnet 4.6 $3/$15 → $6/M blended, as an example)",
        "compares with a frontier API, the most expensive path",
    ),
    (
        "003",
        "The crossover only begins to appear around 500 million tokens per day",
        Decimal(500_000_000),
        Decimal("0.12"),
        "DeepInfra Llama 3.3 70B, about $0.12/M blended",
        "compares with the cheapest serverless price; at that price even the article's own "
        "$43/day rig breaks even only near 358M tokens/day before ops staff",
    ),
)


def _load(tokens_per_day: Decimal) -> Load:
    return Load(
        tokens_per_day / 1000,
        tokens_per_day * 3 / 4,
        tokens_per_day / 4,
        Decimal(0),
        Decimal(1),
        Decimal(30),
    )


def _fmt(value: Decimal | None) -> str | None:
    return None if value is None else format(value.quantize(Decimal(1)), "f")


def crossover_claims(a: Assumptions) -> list[dict[str, Any]]:
    """One row per claim: the article (``source``, ``url``), its volume, the price it
    compares against, Laneway's crossover at that price, and the blended API price that would
    put Laneway's crossover at the article's volume."""
    rows = []
    days = a.number("days_per_month")
    for ref, claim, volume, price, against, why in _CLAIMS:
        cost = self_hosted_monthly(_load(volume), REFERENCE, a)
        implied = None if cost is None else cost.total / (volume * days) * M
        ours = None
        if price is not None:
            probe = _load(Decimal(1_000_000))
            ours = crossover_tokens_per_day(probe, price, REFERENCE, a)
        rows.append(
            {
                "source": source(ref).short,
                "url": source(ref).url,
                "claim": claim,
                "tokens_per_day": _fmt(volume),
                "compared_against": against,
                "api_usd_per_mtok": None if price is None else str(price),
                "laneway_crossover_tokens_per_day": _fmt(ours),
                "api_usd_per_mtok_for_claim": None if implied is None else f"{implied:.2f}",
                "why_it_differs": why,
            }
        )
    return rows
