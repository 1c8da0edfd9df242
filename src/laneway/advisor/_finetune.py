"""The fine-tune question (sabaoon.dev, RTSN, novaaiops.com; ``_sources``): for a narrow task whose
open-weight model missed the bar, is a LoRA fine-tune of that model (training GPU hours,
data preparation, re-evaluation after every model update) plus serving it cheaper than the
recommended path? When it is, and the task is its tier's only task, the tier's
recommendation becomes the fine-tuned model, with the fine-tune's cost in its monthly figure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from laneway.advisor._assumptions import Assumptions
from laneway.advisor._decision import Choice, TierChoice
from laneway.advisor._evidence import applicable
from laneway.advisor._format import usd
from laneway.advisor._plan import TierPlan, api_problem
from laneway.advisor._sources import cite
from laneway.advisor._tco import api_cost_per_day
from laneway.advisor._workload import Workload
from laneway.catalog import Catalog, ModelInfo, Price

__all__ = ["FineTune", "apply_fine_tunes", "fine_tune_monthly"]


@dataclass(frozen=True, slots=True)
class FineTune:
    task: str
    model: str
    current_monthly_usd: Decimal | None
    open_monthly_usd: Decimal | None
    fine_tune_monthly_usd: Decimal
    winner: str  # "fine-tune" | "stay" | "unknown"
    reason: str


def fine_tune_monthly(a: Assumptions) -> Decimal | None:
    """LoRA cost per month over the first year: one-off training and data preparation,
    then retraining and re-evaluation each model update cycle."""
    hourly = a.maybe_number("gpu_hourly_usd")
    if hourly is None:
        return None
    rate = a.number("ml_engineer_usd_per_year") / a.number("work_hours_per_year")
    gpu = a.number("lora_gpu_hours") * hourly
    once = gpu + a.number("lora_data_prep_hours") * rate
    per_cycle = gpu + a.number("lora_reeval_hours") * rate
    return (once + per_cycle * a.number("update_cycles_per_year")) / 12


def _serve(model: ModelInfo, plan: TierPlan, workload: Workload) -> tuple[Price, Decimal] | None:
    best: tuple[Price, Decimal] | None = None
    for provider in dict.fromkeys(p.provider for p in model.prices):
        price = model.price_for(provider)
        if price is None or not (price.input_per_mtok or price.output_per_mtok):
            continue
        if api_problem(provider, model, workload, plan.tasks):
            continue
        cost = api_cost_per_day(plan.load, price)
        if cost is not None and (best is None or cost < best[1]):
            best = (price, cost)
    return best


def apply_fine_tunes(
    choice: Choice, plans: list[TierPlan], workload: Workload, catalog: Catalog, a: Assumptions
) -> tuple[Choice, list[FineTune]]:
    ft = fine_tune_monthly(a)
    results: list[FineTune] = []
    tiers = {t.tier: t for t in choice.tiers}
    if ft is None:
        return choice, results
    days = a.number("days_per_month")
    for plan in plans:
        for task in plan.tasks:
            if not task.narrow:
                continue
            failed = [
                (m, served)
                for m in catalog.models
                if m.open_weights
                and any(not e.passed for e in applicable(m, (task,), workload))
                and (served := _serve(m, plan, workload)) is not None
            ]
            current = tiers[plan.tier]
            # the cheapest failed model to serve is the one worth fine-tuning
            for model, served in sorted(failed, key=lambda x: x[1][1])[:1]:
                share = task.tokens_per_day / plan.load.tokens_per_day
                open_cost = served[1] * days * share
                now = current.monthly_usd * share if current.monthly_usd is not None else None
                if now is None:
                    winner, why = "unknown", "the current path's price is unknown"
                elif open_cost + ft < now:
                    winner = "fine-tune"
                    why = (
                        f"{model.id} + LoRA {usd(open_cost)} + fine-tune {usd(ft)} < "
                        f"{current.path} {usd(now)}/month"
                    )
                else:
                    winner = "stay"
                    why = (
                        f"{current.path} {usd(now)} ≤ {model.id} + LoRA {usd(open_cost)} + "
                        f"fine-tune {usd(ft)}/month"
                    )
                results.append(FineTune(task.name, model.id, now, open_cost, ft, winner, why))
                if winner == "fine-tune" and len(plan.tasks) == 1 and current.path != "self_hosted":
                    price, per_day = served
                    cost = next(p for p in plan.paths if p.path == "serverless_open")
                    cost = replace(
                        cost,
                        admissible=True,
                        model=model,
                        price=price,
                        monthly_usd=per_day * days,
                        evidence="needs eval",
                        evidence_detail="re-run the eval on the fine-tuned model before rollout",
                        reason=f"{model.id} + LoRA fine-tune on {price.provider}",
                    )
                    tiers[plan.tier] = TierChoice(
                        plan.tier,
                        "serverless_open",
                        cost,
                        open_cost + ft,
                        f"fine-tune wins: {why} ({cite('003')}: 'open-weight fine-tuned models "
                        "are strong candidates' for simple, repetitive tasks)",
                        fine_tune_usd=ft,
                    )
                    current = tiers[plan.tier]
    new = replace(choice, tiers=tuple(tiers[t.tier] for t in choice.tiers))
    return new, results
