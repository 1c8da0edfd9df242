"""Per-tier deployment paths: which catalog models are admissible and what each path costs.

Paths: ``closed_api`` (closed weights, the maker's API), ``serverless_open`` (open weights
on a per-token API) and ``self_hosted`` (open weights on rented GPUs). A model is admissible
when its license tier or id is allowed, its origin is not denied and it has what the tier's
tasks need (frontier reasoning: the seeds' frontier list; video / computer use: modality).
Free-tier and preview prices ($0 in and out) are never used for costing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

from laneway.advisor._assumptions import Assumptions, gpu_table
from laneway.advisor._tco import (
    Load,
    ModelSize,
    SelfHostedCost,
    api_cost_per_day,
    crossover_tokens_per_day,
    self_hosted_monthly,
)
from laneway.advisor._workload import Task, Workload
from laneway.catalog import Catalog, ModelInfo, Price

__all__ = ["PATHS", "PathCost", "PathName", "TierPlan", "admissible_models", "plan_tier"]

PathName = Literal["closed_api", "serverless_open", "self_hosted"]
PATHS: tuple[PathName, ...] = ("closed_api", "serverless_open", "self_hosted")
_MODALITY = {"video": "video", "computer_use": "computer-use"}


@dataclass(frozen=True, slots=True)
class PathCost:
    """One path for one tier. ``monthly_usd`` is ``None`` when unknown or impossible."""

    path: PathName
    tier: str
    admissible: bool
    reason: str
    model: ModelInfo | None = None
    price: Price | None = None
    monthly_usd: Decimal | None = None
    breakdown: dict[str, Decimal | None] = field(default_factory=dict)
    self_hosted: SelfHostedCost | None = None
    crossover_tokens_per_day: Decimal | None = None  # API paths: where self-hosting wins
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TierPlan:
    tier: str
    tasks: tuple[Task, ...]
    load: Load
    paths: tuple[PathCost, ...]
    size: ModelSize | None

    def path(self, name: PathName) -> PathCost:
        return next(p for p in self.paths if p.path == name)


def _needs(tasks: tuple[Task, ...]) -> set[str]:
    return {need for task in tasks for need in task.needs}


def admissible_models(
    catalog: Catalog,
    workload: Workload,
    tasks: tuple[Task, ...],
    *,
    open_weights: bool,
    ignore_needs: bool = False,
) -> list[ModelInfo]:
    """Catalog models on one side (open or closed weights) that pass every constraint."""
    cons = workload.constraints
    frontier = set(gpu_table().frontier_models)
    explicit = {name.lower() for task in tasks for name in task.models}
    found = []
    for model in catalog.models:
        if model.open_weights != open_weights:
            continue
        if cons.allowed_licenses and not (
            model.license_tier in cons.allowed_licenses
            or model.license_id.lower() in cons.allowed_licenses
        ):
            continue
        if model.origin is not None and model.origin in cons.denied_origins:
            continue
        if explicit and model.id not in explicit and not explicit & set(model.aliases):
            continue
        needs = set() if ignore_needs else _needs(tasks)
        if "frontier_reasoning" in needs and model.id not in frontier:
            continue
        if any(_MODALITY[n] not in model.modalities for n in needs if n in _MODALITY):
            continue
        found.append(model)
    return found


def _priced(model: ModelInfo, load: Load) -> tuple[Price, Decimal] | None:
    best: tuple[Price, Decimal] | None = None
    for provider in dict.fromkeys(p.provider for p in model.prices):
        price = model.price_for(provider)
        if price is None or (price.input_per_mtok == 0 and price.output_per_mtok == 0):
            continue
        cost = api_cost_per_day(load, price)
        if cost is not None and (best is None or cost < best[1]):
            best = (price, cost)
    return best


def _api_path(
    name: PathName,
    tier: str,
    models: list[ModelInfo],
    load: Load,
    a: Assumptions,
    blocked: str | None,
) -> PathCost:
    if blocked:
        return PathCost(name, tier, False, blocked)
    options = [(m, *priced) for m in models if (priced := _priced(m, load)) is not None]
    ids = tuple(o[0].id for o in options)
    if not options:
        why = "no admissible catalog model" if not models else "no admissible model has a price"
        return PathCost(name, tier, False, why)
    model, price, per_day = min(options, key=lambda o: o[2])
    monthly = per_day * a.number("days_per_month")
    return PathCost(
        name,
        tier,
        True,
        f"cheapest admissible: {model.id} on {price.provider}",
        model=model,
        price=price,
        monthly_usd=monthly,
        breakdown={"tokens": monthly},
        candidates=ids,
    )


def _size_of(model: ModelInfo) -> ModelSize | None:
    if model.params_total_b is None:
        return None
    total = Decimal(str(model.params_total_b))
    active = model.params_active_b
    return ModelSize(total, Decimal(str(active)) if active is not None else total)


def _self_host_pick(
    catalog: Catalog, workload: Workload, tasks: tuple[Task, ...], serverless: PathCost
) -> tuple[ModelInfo | None, bool]:
    """The open-weight model to size: the serverless pick, the seeds' self-hosting
    defaults, any admissible one; relaxing capability needs only when data must stay in."""
    relaxed = False
    models = admissible_models(catalog, workload, tasks, open_weights=True)
    if not models and workload.data_sensitivity == "on_prem":
        models = admissible_models(catalog, workload, tasks, open_weights=True, ignore_needs=True)
        relaxed = True
    sized = [m for m in models if _size_of(m) is not None]
    if serverless.model is not None and serverless.model in sized:
        return serverless.model, relaxed
    for wanted in gpu_table().self_hosting_models:
        for model in sized:
            if model.id == wanted:
                return model, relaxed
    return (sized[0] if sized else None), relaxed


def _self_hosted_path(
    tier: str, model: ModelInfo | None, relaxed: bool, load: Load, a: Assumptions
) -> tuple[PathCost, ModelSize | None]:
    if model is None:
        return PathCost(
            "self_hosted",
            tier,
            False,
            "no admissible open-weight model with a known parameter count",
        ), None
    size = _size_of(model)
    assert size is not None
    cost = self_hosted_monthly(load, size, a)
    if cost is None:
        return PathCost(
            "self_hosted", tier, True, "GPU hourly price unknown: set gpu_hourly_usd", model=model
        ), size
    sizing = cost.sizing
    assert sizing is not None
    note = " (capability needs relaxed: nothing inside the perimeter meets them)" if relaxed else ""
    reason = (
        f"{model.id}: {sizing.gpus} × {a.text('gpu')} ({sizing.replicas} replica(s) of "
        f"{sizing.gpus_per_replica}), utilisation {sizing.utilisation:.0%}{note}"
    )
    breakdown: dict[str, Decimal | None] = {
        "gpu_rent": cost.gpu_rent,
        "infra_overhead": cost.infra_overhead,
        "ops_staff": cost.ops_staff,
        "model_updates": cost.model_updates,
    }
    return PathCost(
        "self_hosted",
        tier,
        True,
        reason,
        model=model,
        monthly_usd=cost.total,
        breakdown=breakdown,
        self_hosted=cost,
    ), size


def plan_tier(
    catalog: Catalog, workload: Workload, tier: str, tasks: tuple[Task, ...], a: Assumptions
) -> TierPlan:
    """Cost every path for one tier."""
    slo = workload.latency_slo_ms
    time_in_system = slo / 1000 if slo is not None else a.number("time_in_system_s")
    load = Load.of(tasks, workload.traffic.peak_to_mean, time_in_system)
    blocked = (
        "data cannot leave our infrastructure: no per-token API is admissible"
        if workload.data_sensitivity == "on_prem"
        else None
    )
    closed = _api_path(
        "closed_api",
        tier,
        admissible_models(catalog, workload, tasks, open_weights=False),
        load,
        a,
        blocked,
    )
    serverless = _api_path(
        "serverless_open",
        tier,
        admissible_models(catalog, workload, tasks, open_weights=True),
        load,
        a,
        blocked,
    )
    pick, relaxed = _self_host_pick(catalog, workload, tasks, serverless)
    hosted, size = _self_hosted_path(tier, pick, relaxed, load, a)
    paths = []
    for api in (closed, serverless):
        if api.monthly_usd is not None and size is not None:
            per_day = api.monthly_usd / a.number("days_per_month")
            cross = crossover_tokens_per_day(load, per_day, size, a)
            api = replace(api, crossover_tokens_per_day=cross)
        paths.append(api)
    paths.append(hosted)
    return TierPlan(tier, tasks, load, tuple(paths), size)
