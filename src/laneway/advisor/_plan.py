"""Per-tier deployment paths: which catalog models a tier admits, why the others are out,
and what each path costs for that tier alone.

The chain, in order (constraints before evidence before price):

1. constraints: licence class or id, denied origins, the tier's required capabilities (the
   source articles' model lists per capability, ``roles.yaml``), the task's own model list, models
   past their deprecation date;
2. quality evidence: a model that failed the bar on any of the tier's tasks is out on every
   path; among the rest, models that passed are preferred to models that need an eval;
3. data rules per API path: on-prem data admits no API; residency admits a provider only
   with inference in that region; regulated data admits closed vendors with formal
   compliance documentation, and open-weight vendor APIs only when the workload says
   compliance documentation covers them (Digital Applied);
4. price: the cheapest admissible provider of the preferred models. Free-tier and preview
   prices ($0 in and out) are never used for costing.

Self-hosting for one tier alone is costed here for display; the recommendation costs one
fleet for all self-hosted tiers (``_fleet``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

from laneway.advisor._assumptions import Assumptions
from laneway.advisor._evidence import Verdict, verdict
from laneway.advisor._reference import in_region, provider_info, roles
from laneway.advisor._sources import cite
from laneway.advisor._tco import (
    Load,
    ModelSize,
    SelfHostedCost,
    api_cost_per_day,
    self_hosted_monthly,
)
from laneway.advisor._workload import Task, Workload
from laneway.catalog import Catalog, ModelInfo, Price
from laneway.errors import InvalidRequest

__all__ = [
    "PATHS",
    "PathCost",
    "PathName",
    "TierPlan",
    "excluded_summary",
    "model_size",
    "plan_tier",
    "tier_needs",
]

PathName = Literal["closed_api", "serverless_open", "self_hosted"]
PATHS: tuple[PathName, ...] = ("closed_api", "serverless_open", "self_hosted")
_MODALITY = {"video": "video", "computer_use": "computer-use"}
_RANK: dict[Verdict, int] = {"passes": 0, "needs eval": 1, "fails": 2}


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
    candidates: tuple[str, ...] = ()
    evidence: Verdict | None = None
    evidence_detail: str = ""


@dataclass(frozen=True, slots=True)
class TierPlan:
    tier: str
    tasks: tuple[Task, ...]
    load: Load
    paths: tuple[PathCost, ...]
    size: ModelSize | None
    needs: tuple[str, ...]
    excluded: tuple[tuple[str, str], ...]  # (model id, why it is out)
    notes: tuple[str, ...] = ()

    def path(self, name: PathName) -> PathCost:
        return next(p for p in self.paths if p.path == name)

    @property
    def self_host_model(self) -> ModelInfo | None:
        return self.path("self_hosted").model


def tier_needs(tasks: tuple[Task, ...]) -> tuple[str, ...]:
    needs = {need for task in tasks for need in task.needs}
    if any(task.coding for task in tasks):
        needs.add("coding")
    return tuple(sorted(needs))


def _constraint_problem(model: ModelInfo, workload: Workload, explicit: set[str]) -> str | None:
    cons = workload.constraints
    if cons.allowed_licenses and not (
        model.license_class in cons.allowed_licenses
        or model.license_id.lower() in cons.allowed_licenses
    ):
        return f"licence {model.license_id} ({model.license_class}) is not allowed"
    if cons.denied_origins and (model.origin is None or model.origin in cons.denied_origins):
        return f"origin {model.origin or 'unknown'} is denied"
    if explicit and model.id not in explicit:
        return "not in the task's model list"
    if model.can_embed:
        return "an embedding model, not a chat model"
    if model.deprecation_date is not None and model.deprecation_date <= datetime.date.today():
        return f"deprecated since {model.deprecation_date.isoformat()}"
    return None


def _capable(model: ModelInfo, needs: tuple[str, ...], pool: list[ModelInfo]) -> bool:
    """Whether ``model`` has every capability in ``needs``: the source articles' model list for it,
    or, for video and computer use when no listed model is in ``pool``, the modality."""
    r = roles()
    for need in needs:
        listed = [m for m in pool if r.has(need, m)]
        if listed:
            if not r.has(need, model):
                return False
        elif need in _MODALITY:
            if _MODALITY[need] not in model.modalities:
                return False
        else:
            return False
    return True


def admissible(
    catalog: Catalog, workload: Workload, tasks: tuple[Task, ...], *, relax_needs: bool = False
) -> tuple[list[tuple[ModelInfo, Verdict, str]], list[tuple[str, str]]]:
    """Models a tier admits, each with its evidence, and the excluded ones with why."""
    explicit = {name for task in tasks for name in task.models}
    needs = () if relax_needs else tier_needs(tasks)
    kept: list[tuple[ModelInfo, Verdict, str]] = []
    out: list[tuple[str, str]] = []
    allowed = []
    for model in catalog.models:
        problem = _constraint_problem(model, workload, explicit)
        if problem:
            out.append((model.id, problem))
        else:
            allowed.append(model)
    for model in allowed:
        if needs and not _capable(model, needs, allowed):
            out.append((model.id, f"not named by the source articles for {', '.join(needs)}"))
            continue
        status, detail = verdict(model, tasks, workload)
        if status == "fails":
            out.append((model.id, f"failed the team's eval ({detail})"))
            continue
        kept.append((model, status, detail))
    return kept, out


def api_problem(
    provider: str, model: ModelInfo, workload: Workload, tasks: tuple[Task, ...] = ()
) -> str | None:
    """Why ``provider``'s API may not carry this workload's data (``None``: it may)."""
    if any(t.sensitive for t in tasks):
        return (
            "sensitive data (sensitive: true, or marked by the gateway's audit): it never "
            "leaves our infrastructure"
        )
    if workload.data_sensitivity == "on_prem":
        return "data cannot leave our infrastructure: no per-token API is admissible"
    info = provider_info(provider)
    documented = workload.compliance_documented
    outside = info is None or not in_region(info.regions, workload.residency)
    if workload.residency and not documented and outside:
        return f"{provider} offers no inference in {', '.join(workload.residency)}"
    if workload.data_sensitivity == "regulated" and not documented:
        if model.open_weights:
            return (
                "regulated data: an open-weight vendor API needs compliance documentation in "
                f"scope ({cite('000')}); set compliance_documented: true if it is"
            )
        if info is None or not info.compliance_docs:
            return f"regulated data: {provider} publishes no formal compliance documentation"
    return None


def _priced(
    model: ModelInfo, load: Load, workload: Workload, tasks: tuple[Task, ...]
) -> tuple[Price, Decimal] | str:
    best: tuple[Price, Decimal] | None = None
    problems = []
    for provider in dict.fromkeys(p.provider for p in model.prices):
        price = model.price_for(provider)
        if price is None or (price.input_per_mtok == 0 and price.output_per_mtok == 0):
            continue
        problem = api_problem(provider, model, workload, tasks)
        if problem:
            problems.append(problem)
            continue
        cost = api_cost_per_day(load, price)
        if cost is not None and (best is None or cost < best[1]):
            best = (price, cost)
    if best is not None:
        return best
    return problems[0] if problems else "no price in the catalog"


def _api_path(
    name: PathName,
    tier: str,
    models: list[tuple[ModelInfo, Verdict, str]],
    load: Load,
    workload: Workload,
    a: Assumptions,
    tasks: tuple[Task, ...] = (),
) -> PathCost:
    options = []
    reasons = []
    for model, status, detail in models:
        priced = _priced(model, load, workload, tasks)
        if isinstance(priced, str):
            reasons.append(priced)
            continue
        options.append((_RANK[status], priced[1], model, status, detail, priced[0]))
    if not options:
        if not models:
            why = "no admissible catalog model"
        elif any(
            r.startswith(("data cannot", "regulated", "sensitive")) or " offers no " in r
            for r in reasons
        ):
            why = next(r for r in reasons if not r.startswith("no price"))
        else:
            why = next((r for r in reasons if r != "no price in the catalog"), "")
            why = why or "no admissible model has a price"
        return PathCost(name, tier, False, why)
    options.sort(key=lambda o: (o[0], o[1]))
    _, per_day, model, status, detail, price = options[0]
    monthly = per_day * a.number("days_per_month")
    lead = "passed the team's eval" if status == "passes" else "cheapest admissible"
    return PathCost(
        name,
        tier,
        True,
        f"{lead}: {model.id} on {price.provider}",
        model=model,
        price=price,
        monthly_usd=monthly,
        breakdown={"tokens": monthly},
        candidates=tuple(o[2].id for o in options),
        evidence=status,
        evidence_detail=detail,
    )


def model_size(model: ModelInfo) -> ModelSize | str:
    """Parameters for sizing GPUs, or why the model cannot be sized. A model whose active
    parameters are unknown is never sized as dense (a mixture of experts would come out
    several times too expensive)."""
    if model.params_total_b is None:
        return (
            f"{model.id}: the catalog has no parameter count (params_total_b) and no active "
            "parameters (params_active_b)"
        )
    if model.params_active_b is None:
        return (
            f"{model.id}: the catalog has no active-parameter figure (params_active_b), so it "
            "cannot be sized (a dense estimate of a mixture of experts is several times too high)"
        )
    kv = model.kv_cache
    return ModelSize(
        Decimal(str(model.params_total_b)),
        Decimal(str(model.params_active_b)),
        None if kv is None else Decimal(kv.bytes_per_token()),
    )


def _self_host_pick(
    models: list[tuple[ModelInfo, Verdict, str]], serverless: PathCost
) -> tuple[ModelInfo, Verdict, str] | list[str]:
    """The open-weight model to size: models that passed the team's eval first; among
    equals the self-hosting defaults (Digital Applied's question 6: "Nemotron 3 Super 120B,
    Gemma 4, or DeepSeek V3.2 on hardware you control"), then the serverless pick (like for
    like), then the catalog's order. A list of reasons when none can be sized."""
    sized = []
    unsized = []
    for m, s, d in models:
        if not m.open_weights:
            continue
        size = model_size(m)
        if isinstance(size, str):
            unsized.append(size)
        else:
            sized.append((m, s, d))
    if not sized:
        return unsized or ["no admissible open-weight model"]
    defaults = roles().models.get("self_hosting_defaults", ())

    def rank(item: tuple[ModelInfo, Verdict, str]) -> tuple[int, int, int]:
        m, s, _ = item
        like = 0 if serverless.model is not None and m.id == serverless.model.id else 1
        default = defaults.index(m.id) if m.id in defaults else len(defaults)
        return (_RANK[s], default, like)

    return min(sized, key=rank)


def self_hosted_path(
    tier: str,
    pick: tuple[ModelInfo, Verdict, str] | list[str],
    load: Load,
    a: Assumptions,
    note: str = "",
) -> tuple[PathCost, ModelSize | None]:
    if isinstance(pick, list):
        return PathCost("self_hosted", tier, False, "; ".join(pick)), None
    model, status, detail = pick
    size = model_size(model)
    assert not isinstance(size, str)
    cost = self_hosted_monthly(load, size, a)
    if cost is None or cost.sizing is None:
        return PathCost(
            "self_hosted", tier, True, "GPU hourly price unknown: set gpu_hourly_usd", model=model
        ), size
    s = cost.sizing
    reason = (
        f"{model.id}: {s.gpus} × {a.text('gpu')} ({s.replicas} replica(s) of "
        f"{s.gpus_per_replica}), utilisation {s.utilisation:.0%} (this tier alone){note}"
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
        evidence=status,
        evidence_detail=detail,
    ), size


def plan_tier(
    catalog: Catalog, workload: Workload, tier: str, tasks: tuple[Task, ...], a: Assumptions
) -> TierPlan:
    """Cost every path for one tier (self-hosting as if this tier were alone)."""
    slo = workload.latency_slo_ms
    time_in_system = slo / 1000 if slo is not None else a.number("time_in_system_s")
    load = Load.of(tasks, workload.traffic.peak_to_mean, time_in_system)
    models, excluded = admissible(catalog, workload, tasks)
    closed = _api_path(
        "closed_api", tier, [x for x in models if not x[0].open_weights], load, workload, a, tasks
    )
    serverless = _api_path(
        "serverless_open", tier, [x for x in models if x[0].open_weights], load, workload, a, tasks
    )
    like_for_like = serverless
    if not serverless.admissible:  # the open model a serverless API would have served
        plain = replace(workload, data_sensitivity="none", residency=())
        like_for_like = _api_path(
            "serverless_open", tier, [x for x in models if x[0].open_weights], load, plain, a
        )
    notes = []
    pick = _self_host_pick(models, like_for_like)
    must_stay = workload.data_sensitivity == "on_prem" or any(t.sensitive for t in tasks)
    if isinstance(pick, list) and must_stay:
        relaxed, _ = admissible(catalog, workload, tasks, relax_needs=True)
        again = _self_host_pick(relaxed, like_for_like)
        if not isinstance(again, list):
            pick = again
            notes.append(
                f"tier {tier}: capability needs ({', '.join(tier_needs(tasks))}) relaxed: no "
                "model inside the perimeter meets them, so quality must be checked by an eval"
            )
    explicit = {name for task in tasks for name in task.models}
    if isinstance(pick, list) and explicit and workload.data_sensitivity == "on_prem":
        raise InvalidRequest(f"tier {tier}: cannot self-host: {'; '.join(pick)}")
    hosted, size = self_hosted_path(tier, pick, load, a)
    if size is not None and size.kv_bytes_per_token is None and hosted.model is not None:
        notes.append(
            f"{hosted.model.id}: KV-cache geometry not in the catalog; "
            "kv_cache_bytes_per_token (Llama 3 70B geometry) assumed"
        )
    return TierPlan(
        tier,
        tasks,
        load,
        (closed, serverless, hosted),
        size,
        tier_needs(tasks),
        tuple(excluded),
        tuple(notes),
    )


def excluded_summary(plan: TierPlan) -> str:
    """Which constraints emptied a tier's catalog: ``; models excluded: licence not allowed
    (33), origin US is denied (20)`` (embedding models left out as noise)."""
    counts: dict[str, int] = {}
    for _, why in plan.excluded:
        if why.startswith("an embedding model"):
            continue
        key = (
            "licence not allowed"
            if why.startswith("licence ")
            else "failed the team's eval"
            if why.startswith("failed the team's eval")
            else "deprecated"
            if why.startswith("deprecated")
            else why
        )
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return ""
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return "; models excluded: " + ", ".join(f"{k} ({n})" for k, n in ranked)
