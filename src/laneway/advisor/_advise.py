"""``advise``: workload + catalog + assumptions → paths, gates, choices, recommendation,
and ``advice_to_json``, the stable ``--json`` schema (``laneway.advice/1``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from laneway.advisor._assumptions import Assumptions, default_assumptions
from laneway.advisor._decision import (
    FineTune,
    Gate,
    Question,
    TierChoice,
    choose,
    evaluate_gates,
    fine_tune_checks,
    six_questions,
)
from laneway.advisor._plan import PATHS, TierPlan, plan_tier
from laneway.advisor._tco import crossover_tokens_per_day, self_hosted_monthly
from laneway.advisor._workload import Workload
from laneway.catalog import Catalog, default_catalog
from laneway.errors import InvalidRequest

__all__ = ["SCHEMA", "Advice", "advice_to_json", "advise"]

SCHEMA = "laneway.advice/1"
UTILISATIONS = (Decimal("0.1"), Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal(1))


@dataclass(frozen=True, slots=True)
class Advice:
    workload: Workload
    assumptions: Assumptions
    plans: tuple[TierPlan, ...]
    questions: tuple[Question, ...]
    gates: tuple[Gate, ...]
    choices: tuple[TierChoice, ...]
    fine_tune: tuple[FineTune, ...]
    summary: str

    def hybrid_monthly(self) -> Decimal | None:
        costs = [c.path.monthly_usd if c.path else None for c in self.choices]
        known = [c for c in costs if c is not None]
        return None if len(known) < len(costs) else sum(known, Decimal(0))

    def path_total(self, name: str) -> Decimal | None:
        """One path for every tier; ``None`` if any tier cannot use it or is unpriced."""
        total = Decimal(0)
        for plan in self.plans:
            cost = next(p for p in plan.paths if p.path == name)
            if not cost.admissible or cost.monthly_usd is None:
                return None
            total += cost.monthly_usd
        return total

    def crossover(self, name: str) -> tuple[str | None, Decimal | None]:
        """The tier that crosses first against path ``name`` and at what tokens/day."""
        best: tuple[str | None, Decimal | None] = (None, None)
        for plan in self.plans:
            value = next(p for p in plan.paths if p.path == name).crossover_tokens_per_day
            if value is not None and (best[1] is None or value < best[1]):
                best = (plan.tier, value)
        return best


def _summary(choices: list[TierChoice], advice_gates: list[Gate], plans: list[TierPlan]) -> str:
    lanes: dict[str, list[str]] = {}
    for choice in choices:
        key = choice.path.path if choice.path else "none"
        lanes.setdefault(key, []).append(choice.tier)
    words = {
        "closed_api": "closed API",
        "serverless_open": "serverless open-weight",
        "self_hosted": "self-hosted open-weight",
        "none": "no admissible path",
    }
    parts = [f"{words[k]} for {', '.join(v)}" for k, v in lanes.items()]
    lead = {1: "one lane", 2: "two-lane", 3: "three-lane"}.get(len(lanes), "multi-lane")
    if not next(g for g in advice_gates if g.name == "data_and_compliance").passed:
        return (
            "self-hosted only: data cannot leave our infrastructure, so compliance "
            "decides, not cost; " + "; ".join(parts)
        )
    crosses = [
        p.crossover_tokens_per_day
        for plan in plans
        for p in plan.paths[:2]
        if p.crossover_tokens_per_day is not None
    ]
    tail = (
        f"; revisit self-hosting above {min(crosses):,.0f} tokens/day in one tier"
        if crosses and "self_hosted" not in lanes
        else ""
    )
    return f"{lead}: " + "; ".join(parts) + tail


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
    Raises ``InvalidRequest`` for a workload with no volume or an invalid override."""
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
    gates = evaluate_gates(plans, workload)
    choices = choose(plans, gates)
    return Advice(
        workload=workload,
        assumptions=a,
        plans=tuple(plans),
        questions=tuple(six_questions(workload, a)),
        gates=tuple(gates),
        choices=tuple(choices),
        fine_tune=tuple(fine_tune_checks(workload, plans, a)),
        summary=_summary(choices, gates, plans),
    )


def _s(value: Decimal | None, places: int = 2) -> str | None:
    if value is None:
        return None
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def _model_row(advice: Advice, model_id: str) -> dict[str, Any] | None:
    for plan in advice.plans:
        for path in plan.paths:
            m = path.model
            if m is not None and m.id == model_id:
                return {
                    "id": m.id,
                    "maker": m.maker,
                    "origin": m.origin,
                    "license_id": m.license_id,
                    "license_tier": m.license_tier,
                    "open_weights": m.open_weights,
                    "params_total_b": m.params_total_b,
                    "params_active_b": m.params_active_b,
                    "prices": [
                        {
                            "provider": p.provider,
                            "input_per_mtok": _s(p.input_per_mtok, 4),
                            "output_per_mtok": _s(p.output_per_mtok, 4),
                            "cached_input_per_mtok": _s(p.cached_input_per_mtok, 4),
                            "date": p.date,
                            "source": p.source,
                        }
                        for p in m.prices
                    ],
                }
    return None


def _by_utilisation(advice: Advice) -> list[dict[str, Any]]:
    plan = max(advice.plans, key=lambda p: p.load.tokens_per_day)
    rows = []
    for util in UTILISATIONS:
        row: dict[str, Any] = {"tier": plan.tier, "utilisation": _s(util)}
        for path in plan.paths[:2]:
            value = None
            if path.monthly_usd is not None and plan.size is not None:
                per_day = path.monthly_usd / advice.assumptions.number("days_per_month")
                value = crossover_tokens_per_day(
                    plan.load, per_day, plan.size, advice.assumptions, utilisation=util
                )
            row[path.path] = _s(value, 0)
        rows.append(row)
    return rows


def _sensitivity(advice: Advice) -> list[dict[str, Any]]:
    plan = max(advice.plans, key=lambda p: p.load.tokens_per_day)
    a = advice.assumptions
    if plan.size is None or a.maybe_number("gpu_hourly_usd") is None:
        return []
    hourly = a.number("gpu_hourly_usd")
    from laneway.advisor._tco import output_tps_per_gpu

    tps = output_tps_per_gpu(plan.size, a)
    cases = [
        ("gpu_hourly_usd", hourly * Decimal("0.8"), hourly * Decimal("1.2")),
        ("throughput_tps_per_gpu", tps / 2, tps * 2),
        ("ops_fte_share", Decimal(1) / 2, Decimal(3)),
        ("infra_overhead_multiplier", Decimal(1), Decimal("1.5")),
        ("precision_bytes", Decimal(1), Decimal(2)),
    ]
    rows = []
    for name, low, high in cases:
        out: dict[str, Any] = {
            "tier": plan.tier,
            "parameter": name,
            "low": _s(low),
            "high": _s(high),
        }
        for label, value in (("low", low), ("high", high)):
            varied = a.override({name: value}, source="sensitivity", check_range=False)
            cost = self_hosted_monthly(plan.load, plan.size, varied)
            out[f"self_hosted_monthly_usd_{label}"] = _s(cost.total if cost else None)
        rows.append(out)
    return rows


def _path_json(path: Any) -> dict[str, Any]:
    return {
        "name": path.path,
        "tier": path.tier,
        "admissible": path.admissible,
        "model": path.model.id if path.model else None,
        "provider": path.price.provider if path.price else None,
        "monthly_usd": _s(path.monthly_usd),
        "breakdown": {k: _s(v) for k, v in path.breakdown.items()},
        "crossover_tokens_per_day": _s(path.crossover_tokens_per_day, 0),
        "reason": path.reason,
        "candidates": list(path.candidates),
    }


def advice_to_json(advice: Advice) -> dict[str, Any]:
    """The documented ``--json`` object (docs/advisor.md). Money: decimal strings, ``null``
    when unknown."""
    w = advice.workload
    paths = [_path_json(p) for plan in advice.plans for p in plan.paths]
    totals = [
        {"name": name, "tier": None, "monthly_usd": _s(advice.path_total(name))} for name in PATHS
    ]
    totals.append({"name": "hybrid", "tier": None, "monthly_usd": _s(advice.hybrid_monthly())})
    models = {c.path.model.id for c in advice.choices if c.path and c.path.model}
    return {
        "schema": SCHEMA,
        "workload": {
            "name": w.name,
            "tokens_per_day": _s(w.tokens_per_day, 0),
            "peak_to_mean": _s(w.traffic.peak_to_mean),
            "data_sensitivity": w.data_sensitivity,
            "ops_capacity": w.ops_capacity,
            "observed": dict(w.observed),
        },
        "recommendation": {
            "summary": advice.summary,
            "tiers": [
                {
                    "tier": c.tier,
                    "path": c.path.path if c.path else None,
                    "model": c.path.model.id if c.path and c.path.model else None,
                    "admissible_models": list(c.path.candidates) if c.path else [],
                    "monthly_usd": _s(c.path.monthly_usd) if c.path else None,
                    "reason": c.reason,
                }
                for c in advice.choices
            ],
        },
        "questions": [
            {"number": q.number, "question": q.question, "answer": q.answer, "effect": q.effect}
            for q in advice.questions
        ],
        "gates": [{"name": g.name, "passed": g.passed, "reason": g.reason} for g in advice.gates],
        "paths": paths,
        "totals": totals,
        "crossover_tokens_per_day": {
            name: {"tier": tier, "tokens_per_day": _s(value, 0)}
            for name in ("closed_api", "serverless_open")
            for tier, value in [advice.crossover(name)]
        },
        "crossover_by_utilisation": _by_utilisation(advice),
        "sensitivity": _sensitivity(advice),
        "fine_tune": [
            {
                "task": f.task,
                "closed_monthly_usd": _s(f.closed_monthly_usd),
                "open_monthly_usd": _s(f.open_monthly_usd),
                "fine_tune_monthly_usd": _s(f.fine_tune_monthly_usd),
                "winner": f.winner,
                "reason": f.reason,
            }
            for f in advice.fine_tune
        ],
        "assumptions": [
            {"name": x.name, "value": str(x.value), "unit": x.unit, "source": x.source}
            for x in advice.assumptions
        ],
        "catalog_rows": [row for m in sorted(models) if (row := _model_row(advice, m))],
    }
