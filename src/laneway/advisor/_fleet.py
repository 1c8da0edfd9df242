"""One self-hosted fleet for every tier it serves.

Tiers that self-host the same model share one deployment, sized on their combined load;
GPU rent and infrastructure overhead add up over deployments, while the ops staff and the
model update cycles are charged once for the fleet (RTSN prices them per team and per
cycle, not per tier). So relabelling the same traffic across tiers never changes the cost.

``best_assignment`` tries every set of self-hostable tiers (at most 2^4) and returns the
cheapest mix of one fleet plus per-tier API paths.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from laneway.advisor._assumptions import Assumptions
from laneway.advisor._plan import PathCost, TierPlan
from laneway.advisor._tco import Load, Sizing, fixed_ops_monthly, size_gpus

__all__ = [
    "Assignment",
    "Deployment",
    "Fleet",
    "best_api",
    "best_assignment",
    "fleet_for",
    "volume_crossover",
]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Deployment:
    model: str
    tiers: tuple[str, ...]
    sizing: Sizing
    gpu_rent: Decimal


@dataclass(frozen=True, slots=True)
class Fleet:
    """Monthly USD for one fleet: rent and overhead per deployment, ops and updates once."""

    tiers: tuple[str, ...]
    deployments: tuple[Deployment, ...]
    gpu_rent: Decimal
    infra_overhead: Decimal
    ops_staff: Decimal
    model_updates: Decimal

    @property
    def total(self) -> Decimal:
        return self.gpu_rent + self.infra_overhead + self.ops_staff + self.model_updates

    @property
    def gpus(self) -> int:
        return sum(d.sizing.gpus for d in self.deployments)

    @property
    def utilisation(self) -> Decimal:
        capacity = sum(d.sizing.gpus * d.sizing.output_tps_per_gpu for d in self.deployments)
        load = sum(d.sizing.mean_load_tps for d in self.deployments)
        return load / capacity if capacity else _ZERO

    def describe(self, gpu: str) -> str:
        parts = [
            f"{d.model} for {', '.join(d.tiers)}: {d.sizing.gpus} × {gpu} "
            f"({d.sizing.replicas} replica(s) of {d.sizing.gpus_per_replica}, utilisation "
            f"{d.sizing.utilisation:.0%})"
            for d in self.deployments
        ]
        return "; ".join(parts)


def fleet_for(
    plans: Sequence[TierPlan], a: Assumptions, scale: Decimal = Decimal(1)
) -> Fleet | None:
    """One fleet serving ``plans`` (each tier's self-hosted model) at ``scale`` x today's
    volume; ``None`` if a tier has no self-hosted model or the GPU price is unknown."""
    hourly = a.maybe_number("gpu_hourly_usd")
    if hourly is None or not plans:
        return None
    groups: dict[str, tuple[list[str], Load, TierPlan]] = {}
    for plan in plans:
        model = plan.self_host_model
        if model is None or plan.size is None:
            return None
        load = plan.load.times(scale)
        if model.id in groups:
            tiers, old, first = groups[model.id]
            groups[model.id] = ([*tiers, plan.tier], old.plus(load), first)
        else:
            groups[model.id] = ([plan.tier], load, plan)
    days = a.number("days_per_month")
    deployments = []
    for model_id, (tiers, load, first) in groups.items():
        assert first.size is not None
        sizing = size_gpus(load, first.size, a)
        deployments.append(
            Deployment(model_id, tuple(tiers), sizing, sizing.gpus * hourly * 24 * days)
        )
    rent = sum((d.gpu_rent for d in deployments), _ZERO)
    staff, updates = fixed_ops_monthly(a)
    return Fleet(
        tiers=tuple(p.tier for p in plans),
        deployments=tuple(deployments),
        gpu_rent=rent,
        infra_overhead=rent * (a.number("infra_overhead_multiplier") - 1),
        ops_staff=staff,
        model_updates=updates,
    )


def best_api(plan: TierPlan, closed_only: bool = False) -> PathCost | None:
    """The tier's cheapest admissible API path with a known price (evidence first)."""
    options = [
        p
        for p in plan.paths[: 1 if closed_only else 2]
        if p.admissible and p.monthly_usd is not None
    ]
    if not options:
        return None
    rank = {"passes": 0, "needs eval": 1, None: 1, "fails": 2}
    return min(options, key=lambda p: (rank[p.evidence], p.monthly_usd or _ZERO))


@dataclass(frozen=True, slots=True)
class Assignment:
    """Which tiers the fleet serves; the rest go to their API path."""

    fleet: Fleet | None
    api: dict[str, PathCost]

    @property
    def total(self) -> Decimal | None:
        costs = [p.monthly_usd for p in self.api.values()]
        if any(c is None for c in costs):
            return None
        fleet = self.fleet.total if self.fleet else _ZERO
        return fleet + sum((c for c in costs if c is not None), _ZERO)


def best_assignment(
    plans: Sequence[TierPlan],
    a: Assumptions,
    eligible: Iterable[str],
    *,
    forced: Iterable[str] = (),
    api_for: Callable[[TierPlan], PathCost | None] = best_api,
) -> Assignment | None:
    """The cheapest feasible assignment in which the fleet serves ``forced`` tiers plus any
    subset of ``eligible`` ones (``None``: no feasible assignment)."""
    forced_set, pool = set(forced), [t for t in eligible if t not in set(forced)]
    best: tuple[Decimal, Assignment] | None = None
    for k in range(len(pool) + 1):
        for chosen in itertools.combinations(pool, k):
            hosted = forced_set | set(chosen)
            fleet = fleet_for([p for p in plans if p.tier in hosted], a) if hosted else None
            if hosted and fleet is None:
                continue
            api = {}
            feasible = True
            for plan in plans:
                if plan.tier in hosted:
                    continue
                path = api_for(plan)
                if path is None:
                    feasible = False
                    break
                api[plan.tier] = path
            if not feasible:
                continue
            option = Assignment(fleet, api)
            total = option.total
            if total is not None and (best is None or total < best[0]):
                best = (total, option)
    return None if best is None else best[1]


def volume_crossover(
    plans: Sequence[TierPlan], a: Assumptions, api_monthly: Decimal
) -> Decimal | None:
    """Tokens/day (today's mix, every tier scaled alike) at which one fleet for ``plans``
    costs no more than API paths costing ``api_monthly`` today (API cost is linear in
    volume). ``None``: not below 10^13 tokens/day, or the fleet cannot be costed."""
    today = sum((p.load.tokens_per_day for p in plans), _ZERO)
    if today == 0 or api_monthly <= 0 or fleet_for(plans, a) is None:
        return None

    def wins(scale: Decimal) -> bool:
        fleet = fleet_for(plans, a, scale)
        return fleet is not None and fleet.total <= api_monthly * scale

    low, high = Decimal("1e-6"), Decimal(10) ** 13 / today
    if not wins(high):
        return None
    if wins(low):
        return (low * today).quantize(Decimal(1))
    for _ in range(80):
        mid = (low * high).sqrt() if high / low > 4 else (low + high) / 2
        if wins(mid):
            high = mid
        else:
            low = mid
        if high - low <= high * Decimal("0.0005"):
            break
    return (high * today).quantize(Decimal(1))
