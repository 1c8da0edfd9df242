"""``advise``: workload + catalog + assumptions → per-tier paths, one fleet, gates, choices,
whole-workload totals, crossovers, warnings; ``advice_to_json`` is the ``--json`` schema
(``laneway.advice/3``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from laneway.advisor._assumptions import Assumptions, default_assumptions
from laneway.advisor._decision import (
    Choice,
    Gate,
    Question,
    choose,
    eligible_tiers,
    evaluate_gates,
    six_questions,
)
from laneway.advisor._finetune import FineTune, apply_fine_tunes
from laneway.advisor._fleet import Fleet, best_api, fleet_for, volume_crossover
from laneway.advisor._format import human_tokens, usd
from laneway.advisor._plan import PathCost, TierPlan, excluded_summary, plan_tier
from laneway.advisor._sources import cite
from laneway.advisor._workload import Workload
from laneway.catalog import Catalog, default_catalog
from laneway.errors import InvalidRequest

__all__ = ["SCHEMA", "Advice", "Crossover", "Total", "advise"]

SCHEMA = "laneway.advice/3"


@dataclass(frozen=True, slots=True)
class Total:
    """One way to run the whole workload: ``monthly_usd`` ``None`` when impossible."""

    name: str
    monthly_usd: Decimal | None
    detail: str


@dataclass(frozen=True, slots=True)
class Crossover:
    """Where path ``a`` and path ``b`` cost the same for the whole workload (every tier
    scaled alike): ``tokens_per_day`` ``None`` when they never cross."""

    a: str
    b: str
    tokens_per_day: Decimal | None
    message: str


@dataclass(frozen=True, slots=True)
class Advice:
    workload: Workload
    assumptions: Assumptions
    plans: tuple[TierPlan, ...]
    questions: tuple[Question, ...]
    gates: tuple[Gate, ...]
    choice: Choice
    fine_tune: tuple[FineTune, ...]
    totals: tuple[Total, ...]
    crossovers: tuple[Crossover, ...]
    warnings: tuple[str, ...]
    summary: str

    @property
    def fleet(self) -> Fleet | None:
        return self.choice.fleet

    def total(self, name: str) -> Decimal | None:
        return next((t.monthly_usd for t in self.totals if t.name == name), None)


def _sum(values: list[Decimal | None]) -> Decimal | None:
    if not values or any(v is None for v in values):
        return None
    return sum((v for v in values if v is not None), Decimal(0))


def _totals(plans: list[TierPlan], choice: Choice, a: Assumptions) -> list[Total]:
    closed = _sum(
        [
            p.path("closed_api").monthly_usd if p.path("closed_api").admissible else None
            for p in plans
        ]
    )
    api = [best_api(p) for p in plans]
    hybrid = _sum([x.monthly_usd if x else None for x in api])
    eligible = [p for p in plans if p.tier in eligible_tiers(plans)]
    fleet = fleet_for(eligible, a) if eligible else None
    rest = [best_api(p) for p in plans if p not in eligible]
    rest_cost = _sum([x.monthly_usd if x else None for x in rest]) if rest else Decimal(0)
    hosted = None if fleet is None or rest_cost is None else fleet.total + rest_cost
    others = ", ".join(p.tier for p in plans if p not in eligible)
    detail = (
        f"one fleet for {', '.join(p.tier for p in eligible)} ({fleet.gpus} GPUs, ops staff and "
        "update cycles once)" + (f"; {others} on its cheapest API" if others else "")
        if fleet
        else "no tier can be self-hosted"
    )
    return [
        Total("all_closed", closed, "every tier on its closed API"),
        Total(
            "hybrid_api",
            hybrid,
            "each tier on its cheapest admissible API (closed or serverless open-weight)",
        ),
        Total("all_self_hosted", hosted, detail),
        Total("recommended", choice.total, f"the recommendation ({choice.basis})"),
    ]


def _crossovers(
    plans: list[TierPlan], totals: list[Total], choice: Choice, a: Assumptions, today: Decimal
) -> list[Crossover]:
    """One figure per pair of paths for the whole workload (every tier scaled alike)."""
    by = {t.name: t.monthly_usd for t in totals}
    out = []
    closed, hybrid = by["all_closed"], by["hybrid_api"]
    if closed is not None and hybrid is not None and hybrid != closed:
        ratio = closed / hybrid if hybrid else None
        out.append(
            Crossover(
                "all_closed",
                "hybrid_api",
                None,
                "never cross: both are priced per token, so their ratio "
                + (f"({ratio:,.1f}×) " if ratio else "")
                + "is the same at every volume",
            )
        )
    hostable = [p for p in plans if p.tier in eligible_tiers(plans)]
    if not hostable:
        return out
    chosen = {t.tier: t.cost for t in choice.tiers}

    def closed_api(p: TierPlan) -> PathCost | None:
        return p.path("closed_api") if p.path("closed_api").admissible else None

    def recommended(p: TierPlan) -> PathCost | None:
        return chosen.get(p.tier)

    api_of: dict[str, Callable[[TierPlan], PathCost | None]] = {
        "all_closed": closed_api,
        "hybrid_api": best_api,
    }
    if choice.fleet is None and any(
        t.cost is not best_api(p) for t, p in zip(choice.tiers, plans, strict=True)
    ):
        api_of["recommended"] = recommended
    tiers = ", ".join(p.tier for p in hostable)
    for name, pick in api_of.items():
        costs = [pick(p) for p in hostable]
        api = _sum([c.monthly_usd if c is not None else None for c in costs])
        if api is None:
            continue
        cross = volume_crossover(hostable, a, api)
        against = _AGAINST[name]
        if cross is None:
            msg = (
                f"one fleet for {tiers} never costs less than {against} (not below 10T tokens/day)"
            )
        elif cross <= today:
            msg = (
                f"one fleet for {tiers} already costs less than {against} at today's "
                f"{human_tokens(today)} tokens/day (equal at {human_tokens(cross)}); a gate or a "
                "constraint keeps it out of the recommendation"
            )
        else:
            msg = (
                f"revisit self-hosting {tiers} above {human_tokens(cross)} tokens/day "
                f"({cross / today:,.1f}× today), where one fleet costs less than {against}"
            )
        out.append(Crossover("all_self_hosted", name, cross, msg))
    return out


_AGAINST = {
    "all_closed": "the closed APIs",
    "hybrid_api": "the cheapest API paths",
    "recommended": "the recommended API paths",
}


def _warnings(
    advice_plans: list[TierPlan], choice: Choice, workload: Workload, a: Assumptions
) -> list[str]:
    out: list[str] = []
    for plan in advice_plans:
        out += list(plan.notes)
    for t in choice.tiers:
        cost = t.cost
        if cost is None:
            out.append(f"tier {t.tier}: no admissible path with a known price")
            continue
        if cost.evidence == "needs eval" and cost.model is not None:
            out.append(
                f"tier {t.tier}: {cost.model.id} needs eval: run your own eval before rollout "
                f"({cite('002')}: 'evaluate on your own traffic, not on a leaderboard')"
            )
        if cost.evidence == "passes" and "names no model" in cost.evidence_detail:
            out.append(f"tier {t.tier}: the eval that passed names no model; add quality.model")
    if choice.fleet is not None and workload.ops_capacity != "full":
        out.append(
            f"self-hosting with {workload.ops_capacity} MLOps capacity: 'self-hosting without "
            f"MLOps is a liability, not an asset' ({cite('003')}); budget for 1–3 FTE "
            f"({cite('004')})"
        )
    serverless = [t.tier for t in choice.tiers if t.path == "serverless_open"]
    if serverless and workload.ops_capacity == "none":
        out.append(
            f"{', '.join(serverless)} on serverless open-weight with no MLOps capacity: "
            f"{cite('003')} says 'No MLOps capability: closed API only' and puts managed "
            "open-weight hosting at partial capacity; the vendor runs the servers, but someone "
            "must re-run your eval when the vendor updates the model and watch for drift "
            "(laneway drift); the monthly costs' all_closed is the closed-only price"
        )
    slo = workload.latency_slo_ms
    if (
        slo is not None
        and slo < a.number("vpc_latency_saving_ms_high")
        and workload.api_latency_p95_ms is None
    ):
        out.append(
            f"latency SLO {slo:,.0f} ms: an API round trip alone can take 50–200 ms "
            f"({cite('004')}); "
            "measure the API p95 (api_latency_p95_ms) before choosing"
        )
    out += _slo_warnings(choice, workload, a)
    fleet = choice.fleet
    if fleet is not None and fleet.utilisation < _UTILISATION_FLOOR:
        why = {
            "compliance": "the price of keeping the data inside",
            "latency": "the price of the latency SLO",
        }.get(choice.basis, "check the volume and the traffic shape")
        used = f"{fleet.utilisation:.0%}" if fleet.utilisation >= Decimal("0.01") else "under 1%"
        out.append(
            f"the fleet runs at {used} average utilisation, below the 50% "
            f"under which self-hosting stops paying ({cite('003')}: 'only if GPU utilisation "
            f"stays above 50%. Below that floor, per-token costs increase tenfold'): {why}"
        )
    src = a.get("gpu_hourly_usd").source
    if "on-demand" in src.lower():
        out.append(f"GPU price for {a.text('gpu')} is an on-demand rate; a reserved one is lower")
    return list(dict.fromkeys(out))


_UTILISATION_FLOOR = Decimal("0.5")  # RTSN, Jun 2026


def _slo_warnings(choice: Choice, workload: Workload, a: Assumptions) -> list[str]:
    """A measured API p95 over the SLO on a tier the advice still sends to an API: say so,
    and whether self-hosting (novaaiops.com's 50–200 ms saving) could close the gap."""
    slo, p95 = workload.latency_slo_ms, workload.api_latency_p95_ms
    on_api = [t.tier for t in choice.tiers if t.path in ("closed_api", "serverless_open")]
    if slo is None or p95 is None or p95 <= slo or not on_api:
        return []
    low, high = a.number("vpc_latency_saving_ms_low"), a.number("vpc_latency_saving_ms_high")
    miss = f"the API p95 {p95:,.0f} ms misses the {slo:,.0f} ms SLO by {p95 - slo:,.0f} ms"
    tiers = ", ".join(on_api)
    if p95 - high > slo:
        return [
            f"{miss}, more than self-hosting in your VPC saves ({low:,.0f}–{high:,.0f} ms, "
            f"{cite('004')}): no path is known to meet it for {tiers}; measure a self-hosted "
            "p95 or relax the SLO"
        ]
    return [
        f"{miss}; self-hosting in your VPC could close it ({low:,.0f}–{high:,.0f} ms, "
        f"{cite('004')}), but {tiers} stay on an API: see the failed gates"
    ]


def _lane(path: str | None) -> str:
    return {
        "closed_api": "closed API",
        "serverless_open": "serverless open-weight",
        "self_hosted": "self-hosted open-weight",
    }.get(path or "", "no admissible path")


def _summary(choice: Choice, crossovers: list[Crossover]) -> str:
    lanes: dict[str, list[str]] = {}
    for t in choice.tiers:
        model = t.cost.model.id if t.cost and t.cost.model else "-"
        lanes.setdefault(_lane(t.path), []).append(f"{t.tier} ({model})")
    parts = [f"{k} for {', '.join(v)}" for k, v in lanes.items()]
    lead = {1: "one lane", 2: "two lanes", 3: "three lanes"}.get(len(lanes), "several lanes")
    text = f"{lead}: " + "; ".join(parts)
    if choice.basis == "compliance":
        text = "self-hosted only (data cannot leave our infrastructure): " + "; ".join(parts)
    total = choice.total
    if total is not None:
        text += f" — {usd(total)}/month"
    if choice.fleet is None:
        ref = next((c for c in crossovers if c.b == "recommended"), None) or next(
            (c for c in crossovers if c.b == "hybrid_api"), None
        )
        if ref is not None and ref.message.startswith("revisit"):
            text += f"; {ref.message}"
    return text


def _require_a_path(choice: Choice, plans: list[TierPlan]) -> None:
    """A tier nothing can serve is an error that says why for each path, never a silent
    'no admissible path' with exit 0."""
    for t in choice.tiers:
        if t.path is None:
            plan = next(p for p in plans if p.tier == t.tier)
            why = "; ".join(f"{p.path}: {p.reason}" for p in plan.paths)
            raise InvalidRequest(
                f"tier {t.tier}: no admissible path ({why}){excluded_summary(plan)}"
            )


def advise(
    workload: Workload,
    catalog: Catalog | None = None,
    assumptions: Assumptions | None = None,
    *,
    overrides: Mapping[str, object] | None = None,
) -> Advice:
    """The whole analysis. Assumptions, lowest precedence first: ``assumptions`` (default:
    the built-in defaults), then the workload file's ``assumptions:`` block (source "workload
    file"), then ``overrides`` (the command line's ``--set``, source "command line").
    Raises ``InvalidRequest`` for a workload with no volume, an invalid override, or on-prem
    data that no admissible open-weight model can serve."""
    if workload.tokens_per_day <= 0:
        raise InvalidRequest(
            f"workload {workload.name!r} has no volume (0 tokens/day): nothing to advise on"
        )
    catalog = catalog or default_catalog()
    a = assumptions or default_assumptions()
    if workload.assumptions:
        a = a.override(workload.assumptions, source="workload file", where="assumptions.")
    if overrides:
        a = a.override(overrides, source="command line", where="--set ")
    plans = [
        plan_tier(catalog, workload, tier, tasks, a) for tier, tasks in workload.tiers().items()
    ]
    gates = evaluate_gates(plans, workload, a)
    choice = choose(plans, gates, workload, a)
    _require_a_path(choice, plans)
    choice, fine = apply_fine_tunes(choice, plans, workload, catalog, a)
    totals = _totals(plans, choice, a)
    crossovers = _crossovers(plans, totals, choice, a, workload.tokens_per_day)
    return Advice(
        workload=workload,
        assumptions=a,
        plans=tuple(plans),
        questions=tuple(six_questions(workload, a, plans)),
        gates=tuple(gates),
        choice=choice,
        fine_tune=tuple(fine),
        totals=tuple(totals),
        crossovers=tuple(crossovers),
        warnings=tuple(_warnings(plans, choice, workload, a)),
        summary=_summary(choice, crossovers),
    )
