"""``advice_to_json``: the documented ``--json`` object (docs/advisor.md), plus the
utilisation curve and the sensitivity table the report draws from it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from laneway.advisor._advise import SCHEMA, Advice
from laneway.advisor._claims import crossover_claims
from laneway.advisor._fleet import Fleet, best_api, fleet_for
from laneway.advisor._plan import PathCost
from laneway.advisor._sources import SOURCES, cite

__all__ = ["advice_to_json", "by_utilisation", "sensitivity"]

UTILISATIONS = tuple(Decimal(u) / 100 for u in (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100))


def _s(value: Decimal | None, places: int = 2) -> str | None:
    if value is None:
        return None
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def _fleet_at_utilisation(fleet: Fleet, util: Decimal, advice: Advice) -> Decimal | None:
    """Monthly fleet cost if its GPUs ran at ``util`` average utilisation (fractional
    GPUs, never below one replica per deployment); fixed ops unchanged."""
    a = advice.assumptions
    hourly = a.maybe_number("gpu_hourly_usd")
    if hourly is None or util <= 0:
        return None
    gpus = Decimal(0)
    for d in fleet.deployments:
        need = d.sizing.mean_load_tps / (d.sizing.output_tps_per_gpu * util)
        gpus += max(Decimal(d.sizing.gpus_per_replica), need)
    rent = gpus * hourly * 24 * a.number("days_per_month")
    return rent * a.number("infra_overhead_multiplier") + fleet.ops_staff + fleet.model_updates


def _the_fleet(advice: Advice) -> Fleet | None:
    if advice.fleet is not None:
        return advice.fleet
    hostable = [p for p in advice.plans if p.path("self_hosted").monthly_usd is not None]
    return fleet_for(hostable, advice.assumptions) if hostable else None


def by_utilisation(advice: Advice) -> list[dict[str, Any]]:
    """Fleet cost per month by average GPU utilisation, against the API paths for the same
    tiers; ``current`` marks the fleet's utilisation at today's volume."""
    fleet = _the_fleet(advice)
    if fleet is None:
        return []
    tiers = set(fleet.tiers)
    api = [best_api(p) for p in advice.plans if p.tier in tiers]
    api_total = (
        None
        if any(x is None for x in api)
        else sum((x.monthly_usd or Decimal(0) for x in api if x), Decimal(0))
    )
    rows: list[dict[str, Any]] = []
    for util in UTILISATIONS:
        cost = _fleet_at_utilisation(fleet, util, advice)
        rows.append(
            {
                "utilisation": _s(util),
                "fleet_monthly_usd": _s(cost),
                "api_monthly_usd": _s(api_total),
            }
        )
    rows.append(
        {
            "utilisation": _s(fleet.utilisation, 4),
            "fleet_monthly_usd": _s(fleet.total),
            "api_monthly_usd": _s(api_total),
            "current": True,
        }
    )
    return rows


def sensitivity(advice: Advice) -> list[dict[str, Any]]:
    """The fleet's monthly cost when one assumption moves to the low or high end of its
    plausible range (the source articles' ranges where they give one)."""
    fleet = _the_fleet(advice)
    a = advice.assumptions
    if fleet is None or a.maybe_number("gpu_hourly_usd") is None:
        return []
    plans = [p for p in advice.plans if p.tier in set(fleet.tiers)]
    hourly = a.number("gpu_hourly_usd")
    tps = fleet.deployments[0].sizing.output_tps_per_gpu
    cases = [
        ("gpu_hourly_usd", hourly * Decimal("0.8"), hourly * Decimal("1.2"), "±20%"),
        ("throughput_tps_per_gpu", tps / 2, tps * 2, "half / double the table (measure yours)"),
        ("ops_fte_share", Decimal(1), Decimal(3), f"{cite('004')}: 1–3 FTE"),
        (
            "update_cycles_per_year",
            Decimal(52) / 8,
            Decimal(52) / 6,
            f"{cite('003')}: every 6–8 weeks",
        ),
        ("infra_overhead_multiplier", Decimal(1), Decimal("1.5"), "none to +50%"),
        ("precision_bytes", Decimal(1), Decimal(2), "FP8 / BF16 weights"),
    ]
    rows = []
    for name, low, high, why in cases:
        out: dict[str, Any] = {"parameter": name, "low": _s(low), "high": _s(high), "range": why}
        for label, value in (("low", low), ("high", high)):
            varied = a.override({name: value}, source="sensitivity", check_range=False)
            cost = fleet_for(plans, varied)
            out[f"fleet_monthly_usd_{label}"] = _s(cost.total if cost else None)
        rows.append(out)
    return rows


def _path_json(path: PathCost) -> dict[str, Any]:
    return {
        "name": path.path,
        "tier": path.tier,
        "admissible": path.admissible,
        "model": path.model.id if path.model else None,
        "provider": path.price.provider
        if path.price
        else ("self-hosted" if path.path == "self_hosted" and path.model else None),
        "monthly_usd": _s(path.monthly_usd),
        "breakdown": {k: _s(v) for k, v in path.breakdown.items()},
        "evidence": path.evidence,
        "evidence_detail": path.evidence_detail,
        "reason": path.reason,
        "candidates": list(path.candidates),
    }


def _fleet_json(fleet: Fleet | None, gpu: str) -> dict[str, Any] | None:
    if fleet is None:
        return None
    return {
        "tiers": list(fleet.tiers),
        "gpus": fleet.gpus,
        "gpu": gpu,
        "utilisation": _s(fleet.utilisation, 4),
        "monthly_usd": {
            "gpu_rent": _s(fleet.gpu_rent),
            "infra_overhead": _s(fleet.infra_overhead),
            "ops_staff": _s(fleet.ops_staff),
            "model_updates": _s(fleet.model_updates),
            "total": _s(fleet.total),
        },
        "deployments": [
            {
                "model": d.model,
                "tiers": list(d.tiers),
                "gpus": d.sizing.gpus,
                "gpus_per_replica": d.sizing.gpus_per_replica,
                "replicas": d.sizing.replicas,
                "utilisation": _s(d.sizing.utilisation, 4),
                "gpu_rent_monthly_usd": _s(d.gpu_rent),
            }
            for d in fleet.deployments
        ],
        "description": fleet.describe(gpu),
    }


def _model_rows(advice: Advice) -> list[dict[str, Any]]:
    seen: dict[str, Any] = {}
    for t in advice.choice.tiers:
        m = t.cost.model if t.cost else None
        if m is None or m.id in seen:
            continue
        seen[m.id] = {
            "id": m.id,
            "maker": m.maker,
            "origin": m.origin,
            "license_id": m.license_id,
            "license_class": m.license_class,
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
    return list(seen.values())


def _recommendation_json(advice: Advice, gpu: str) -> dict[str, Any]:
    return {
        "summary": advice.summary,
        "basis": advice.choice.basis,
        "monthly_usd": _s(advice.choice.total),
        "tiers": [
            {
                "tier": c.tier,
                "path": c.path,
                "model": c.cost.model.id if c.cost and c.cost.model else None,
                "provider": (
                    c.cost.price.provider
                    if c.cost and c.cost.price
                    else ("self-hosted" if c.path == "self_hosted" else None)
                ),
                "evidence": c.cost.evidence if c.cost else None,
                "evidence_detail": c.cost.evidence_detail if c.cost else "",
                "admissible_models": list(c.cost.candidates) if c.cost else [],
                "monthly_usd": _s(c.monthly_usd),
                "fine_tune_monthly_usd": _s(c.fine_tune_usd),
                "reason": c.reason,
            }
            for c in advice.choice.tiers
        ],
        "fleet": _fleet_json(advice.fleet, gpu),
    }


def advice_to_json(advice: Advice) -> dict[str, Any]:
    """The documented ``--json`` object. Money: decimal strings, ``null`` when unknown."""
    w = advice.workload
    gpu = advice.assumptions.text("gpu")
    return {
        "schema": SCHEMA,
        "workload": {
            "name": w.name,
            "tokens_per_day": _s(w.tokens_per_day, 0),
            "peak_to_mean": _s(w.traffic.peak_to_mean),
            "data_sensitivity": w.data_sensitivity,
            "residency": list(w.residency),
            "compliance_documented": w.compliance_documented,
            "ops_capacity": w.ops_capacity,
            "latency_slo_ms": _s(w.latency_slo_ms, 0),
            "api_latency_p95_ms": _s(w.api_latency_p95_ms, 0),
            "observed": dict(w.observed),
        },
        "recommendation": _recommendation_json(advice, gpu),
        "warnings": list(advice.warnings),
        "questions": [
            {"number": q.number, "question": q.question, "answer": q.answer, "effect": q.effect}
            for q in advice.questions
        ],
        "gates": [{"name": g.name, "passed": g.passed, "reason": g.reason} for g in advice.gates],
        "constraints": [
            {
                "tier": p.tier,
                "needs": list(p.needs),
                "excluded": [{"model": m, "why": why} for m, why in p.excluded],
            }
            for p in advice.plans
        ],
        "paths": [_path_json(p) for plan in advice.plans for p in plan.paths],
        "totals": [
            {"name": t.name, "monthly_usd": _s(t.monthly_usd), "detail": t.detail}
            for t in advice.totals
        ],
        "crossovers": [
            {"a": c.a, "b": c.b, "tokens_per_day": _s(c.tokens_per_day, 0), "message": c.message}
            for c in advice.crossovers
        ],
        "crossover_claims": crossover_claims(advice.assumptions),
        "by_utilisation": by_utilisation(advice),
        "sensitivity": sensitivity(advice),
        "fine_tune": [
            {
                "task": f.task,
                "model": f.model,
                "current_monthly_usd": _s(f.current_monthly_usd),
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
        "catalog_rows": _model_rows(advice),
        "sources": [
            {
                "id": s.id,
                "cite": s.short,
                "name": s.name,
                "date": s.date,
                "title": s.title,
                "url": s.url,
            }
            for s in SOURCES.values()
        ],
    }
