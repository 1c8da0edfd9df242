"""The seeds' decision framework: six questions (seeds/000), four gates (seeds/002), the
four operational variables (seeds/003), a choice per tier and the fine-tune question.

Gates 1–3 (volume, task tolerance, operations capacity) must all pass before a tier is
self-hosted for cost. Gate 4 (data and compliance) passes when data may leave the
perimeter; when it fails, compliance wins: every tier is self-hosted whatever the price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from laneway.advisor._assumptions import Assumptions
from laneway.advisor._plan import PathCost, TierPlan
from laneway.advisor._workload import Workload

__all__ = [
    "FineTune",
    "Gate",
    "Question",
    "TierChoice",
    "choose",
    "evaluate_gates",
    "fine_tune_checks",
    "six_questions",
]

S000, S002, S003 = "seeds/000", "seeds/002", "seeds/003"
_CODING = {"coding", "code", "code_review", "autocomplete", "test_generation"}


@dataclass(frozen=True, slots=True)
class Gate:
    name: str
    passed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Question:
    number: int
    question: str
    answer: str
    effect: str


@dataclass(frozen=True, slots=True)
class TierChoice:
    tier: str
    path: PathCost | None
    reason: str


@dataclass(frozen=True, slots=True)
class FineTune:
    task: str
    closed_monthly_usd: Decimal | None
    open_monthly_usd: Decimal | None
    fine_tune_monthly_usd: Decimal
    winner: str
    reason: str


def _tok(value: Decimal) -> str:
    return f"{value:,.0f}"


def _cheapest_api(plan: TierPlan) -> PathCost | None:
    options = [p for p in plan.paths[:2] if p.admissible and p.monthly_usd is not None]
    return min(options, key=lambda p: p.monthly_usd or 0) if options else None


def _volume_gate(plans: list[TierPlan], workload: Workload) -> Gate:
    evidence = []
    wins = []
    for plan in plans:
        hosted, api = plan.path("self_hosted"), _cheapest_api(plan)
        if hosted.monthly_usd is None or api is None or api.monthly_usd is None:
            continue
        sizing = hosted.self_hosted.sizing if hosted.self_hosted else None
        util = f", utilisation {sizing.utilisation:.0%}" if sizing else ""
        cross = api.crossover_tokens_per_day
        at = f"crossover {_tok(cross)}" if cross is not None else "no crossover"
        line = (
            f"{plan.tier}: {_tok(plan.load.tokens_per_day)} tokens/day, self-hosted "
            f"${hosted.monthly_usd:,.0f}/month vs {api.path} ${api.monthly_usd:,.0f}/month "
            f"({at} tokens/day{util})"
        )
        evidence.append(line)
        if hosted.monthly_usd < api.monthly_usd:
            wins.append(plan.tier)
    ptm = workload.traffic.peak_to_mean
    shape = (
        f"; peak-to-mean {ptm:.2f} (provisioned for the peak, {S002}: "
        "'spiky traffic is the quiet killer')"
    )
    if not evidence:
        return Gate("volume", False, "no tier has both a self-hosted and an API cost to compare")
    if wins:
        return Gate(
            "volume",
            True,
            f"self-hosting is cheaper for {', '.join(wins)}: " + "; ".join(evidence) + shape,
        )
    return Gate(
        "volume",
        False,
        "volume is below the crossover for every tier: " + "; ".join(evidence) + shape,
    )


def _tolerance_gate(workload: Workload) -> Gate:
    failed, unmeasured, passed = [], [], []
    for task in workload.tasks:
        if "frontier_reasoning" in task.needs:
            continue
        quality = workload.quality_for(task)
        verdict = quality.meets_bar
        run = f" (eval run {quality.eval_run})" if quality.eval_run else ""
        if verdict is None:
            unmeasured.append(task.name + run)
        elif verdict:
            passed.append(f"{task.name} {quality.open_weight_score} ≥ {quality.required_score}")
        else:
            failed.append(f"{task.name} {quality.open_weight_score} < {quality.required_score}")
    if failed:
        return Gate(
            "task_tolerance",
            False,
            "the open-weight candidate misses the bar: "
            + "; ".join(failed)
            + " (see the fine-tune question)",
        )
    if unmeasured:
        return Gate(
            "task_tolerance",
            False,
            "not measured for "
            + ", ".join(unmeasured)
            + f": run an eval on your own traffic first ({S002}: 'the eval is a day "
            "of work and it replaces a guess with a measurement')",
        )
    if not passed:
        return Gate("task_tolerance", False, "every task needs frontier reasoning: closed only")
    return Gate(
        "task_tolerance", True, "the open-weight candidate meets the bar: " + "; ".join(passed)
    )


def _ops_gate(workload: Workload) -> Gate:
    ops = workload.ops_capacity
    if ops == "full":
        return Gate(
            "operations_capacity",
            True,
            f"full MLOps capacity: self-hosting is viable ({S003}: 'budget 3–5x the GPU cost')",
        )
    if ops == "partial":
        return Gate(
            "operations_capacity",
            False,
            f"partial MLOps capacity: managed open-weight hosting as the compromise ({S003})",
        )
    return Gate(
        "operations_capacity",
        False,
        f"no MLOps capacity: 'self-hosting without MLOps is a liability, not an asset' ({S003})",
    )


def _data_gate(workload: Workload) -> Gate:
    s = workload.data_sensitivity
    if s == "on_prem":
        return Gate(
            "data_and_compliance",
            False,
            "data cannot leave our infrastructure: "
            f"self-hosted only, whatever the price ({S003}: 'no managed API, regardless "
            "of vendor, provides genuine data isolation'); this overrides gates 1–3",
        )
    if s == "regulated":
        return Gate(
            "data_and_compliance",
            True,
            "regulated data may use vendors with formal "
            f"compliance documentation or regional endpoints ({S000}, {S003}); cost "
            "decides among admissible paths",
        )
    return Gate(
        "data_and_compliance", True, "standard business data: any path is admissible, cost decides"
    )


def evaluate_gates(plans: list[TierPlan], workload: Workload) -> list[Gate]:
    """The four gates of seeds/002, in order, each with the sentence that decided it."""
    return [
        _volume_gate(plans, workload),
        _tolerance_gate(workload),
        _ops_gate(workload),
        _data_gate(workload),
    ]


def six_questions(workload: Workload, a: Assumptions) -> list[Question]:
    """The six questions of seeds/000 answered for this workload."""
    tasks = workload.tasks

    def having(need: str) -> list[str]:
        return [t.name for t in tasks if need in t.needs]

    frontier, media = having("frontier_reasoning"), having("video") + having("computer_use")
    coding = [t.name for t in tasks if (t.category or "").lower() in _CODING]
    monthly = workload.tokens_per_day * a.number("days_per_month")
    if monthly < 10_000_000:
        band = "under 10M tokens/month: any choice works, closed-source cost is negligible"
    elif monthly < 100_000_000:
        band = "10M–100M tokens/month: serverless open-weight endpoints save meaningfully"
    elif monthly < 500_000_000:
        band = "100M–500M tokens/month: self-hosted open weights become viable"
    else:
        band = "above 500M tokens/month: self-hosting is often the right answer"
    denied = ", ".join(workload.constraints.denied_origins) or "none"
    return [
        Question(
            1,
            "Does the workload require frontier reasoning?",
            "yes: " + ", ".join(frontier) if frontier else "no",
            "closed frontier for those tasks" if frontier else "open weights admissible",
        ),
        Question(
            2,
            "Does it require native computer use or video?",
            "yes: " + ", ".join(media) if media else "no",
            "closed models with that modality" if media else "no modality constraint",
        ),
        Question(
            3,
            "Is it coding or dev-tool heavy?",
            "yes: " + ", ".join(coding) if coding else "no",
            "open weights have the better cost per outcome" if coding else "no effect",
        ),
        Question(
            4,
            "Do constraints rule out some model origins?",
            f"denied origins: {denied}",
            "those models are removed from every path" if denied != "none" else "none",
        ),
        Question(
            5, "What is the expected monthly token volume?", f"{monthly:,.0f} tokens/month", band
        ),
        Question(
            6,
            "What are the data residency requirements?",
            workload.data_sensitivity,
            "self-hosting is forced"
            if workload.data_sensitivity == "on_prem"
            else "no residency constraint on the path",
        ),
    ]


def choose(plans: list[TierPlan], gates: list[Gate]) -> list[TierChoice]:
    """One path per tier: compliance first, then the cheapest admissible path, where
    self-hosting counts only when gates 1–3 pass."""
    by_name = {g.name: g for g in gates}
    forced = not by_name["data_and_compliance"].passed
    self_ok = all(by_name[n].passed for n in ("volume", "task_tolerance", "operations_capacity"))
    choices = []
    for plan in plans:
        hosted = plan.path("self_hosted")
        if forced:
            reason = "compliance wins over cost: " + (
                hosted.reason if hosted.admissible else "no admissible open-weight model"
            )
            choices.append(TierChoice(plan.tier, hosted if hosted.admissible else None, reason))
            continue
        api = _cheapest_api(plan)
        cheaper = hosted.monthly_usd is not None and (
            api is None or api.monthly_usd is None or hosted.monthly_usd < api.monthly_usd
        )
        if self_ok and cheaper:
            choices.append(
                TierChoice(
                    plan.tier,
                    hosted,
                    "self-hosting is the cheapest admissible path and gates 1–3 pass",
                )
            )
        elif api is not None:
            note = "" if not cheaper else " (self-hosting would be cheaper but a gate failed)"
            choices.append(TierChoice(plan.tier, api, "cheapest admissible API path" + note))
        else:
            choices.append(TierChoice(plan.tier, None, "no admissible path with a known price"))
    return choices


def fine_tune_checks(workload: Workload, plans: list[TierPlan], a: Assumptions) -> list[FineTune]:
    """For each narrow task whose open-weight candidate misses the bar: a LoRA fine-tune
    (GPU hours, data preparation, re-evaluation per model update) against staying closed."""
    rate = a.number("ml_engineer_usd_per_year") / a.number("work_hours_per_year")
    hourly = a.maybe_number("gpu_hourly_usd")
    results = []
    for plan in plans:
        for task in plan.tasks:
            if workload.quality_for(task).meets_bar is not False or not task.narrow:
                continue
            if hourly is None:
                continue
            gpu = a.number("lora_gpu_hours") * hourly
            once = gpu + a.number("lora_data_prep_hours") * rate
            per_cycle = gpu + a.number("lora_reeval_hours") * rate
            ft = (once + per_cycle * a.number("update_cycles_per_year")) / 12
            share = task.tokens_per_day / plan.load.tokens_per_day
            closed = plan.path("closed_api").monthly_usd
            opens = [p.monthly_usd for p in plan.paths[1:] if p.monthly_usd is not None]
            open_cost = min(opens) if opens else None
            closed_t = None if closed is None else closed * share
            open_t = None if open_cost is None else open_cost * share
            if closed_t is None or open_t is None:
                winner, why = "unknown", "a price is unknown on one side"
            elif open_t + ft < closed_t:
                winner = "fine-tune"
                why = f"open ${open_t:,.0f} + fine-tune ${ft:,.0f} < closed ${closed_t:,.0f}/month"
            else:
                winner = "closed"
                why = f"closed ${closed_t:,.0f} ≤ open ${open_t:,.0f} + fine-tune ${ft:,.0f}/month"
            results.append(FineTune(task.name, closed_t, open_t, ft, winner, why))
    return results
