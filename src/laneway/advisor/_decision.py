"""The source articles' decision framework: six questions (Digital Applied), four gates (AI
Tech Connect), the four operational variables (RTSN), one fleet for every self-hosted tier, a
path per tier and the fine-tune question (articles by id and citation in ``_sources``).

Order of precedence, highest first:

1. data that cannot leave our infrastructure (``on_prem``): every tier self-hosted, whatever
   the price (gate 4 fails and overrides gates 1–3); so is any tier no API may carry
   (residency, regulated data without a vendor the articles admit);
2. volume below ``closed_api_below_tokens_per_month`` (RTSN: "closed API, no further
   analysis required"): closed API wherever one is admissible;
3. gates 1–3 (volume, task tolerance, operations capacity): when all pass, the cheapest mix
   of one fleet (over the tiers whose self-hosted model passed the team's eval) and API paths;
4. a latency SLO that the measured API p95 misses by no more than the VPC saving
   (novaaiops.com: 50–200 ms), with gates 2–3 passing: self-host the tiers whose model
   passed the eval;
5. otherwise the cheapest admissible API path per tier (a model with a passing eval before
   one that needs an eval).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from laneway.advisor._assumptions import Assumptions
from laneway.advisor._fleet import Assignment, Fleet, best_api, best_assignment
from laneway.advisor._format import human_tokens, usd
from laneway.advisor._plan import PathCost, PathName, TierPlan, excluded_summary
from laneway.advisor._sources import cite
from laneway.advisor._workload import Workload
from laneway.errors import InvalidRequest

__all__ = [
    "Choice",
    "Gate",
    "Question",
    "TierChoice",
    "choose",
    "evaluate_gates",
    "six_questions",
]

S000, S002, S003, S004 = cite("000"), cite("002"), cite("003"), cite("004")


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
    """The recommended path for one tier. For a self-hosted tier ``monthly_usd`` is its
    share of the one fleet (by tokens); the fleet total is in ``Choice.fleet``."""

    tier: str
    path: PathName | None
    cost: PathCost | None
    monthly_usd: Decimal | None
    reason: str
    fine_tune_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    tiers: tuple[TierChoice, ...]
    fleet: Fleet | None
    basis: str

    @property
    def total(self) -> Decimal | None:
        costs = [t.monthly_usd for t in self.tiers]
        if any(c is None for c in costs):
            return None
        return sum((c for c in costs if c is not None), Decimal(0))


def eligible_tiers(plans: list[TierPlan]) -> list[str]:
    """Tiers with a self-hosted model that can be costed."""
    return [p.tier for p in plans if p.path("self_hosted").monthly_usd is not None]


def quality_ok_tiers(plans: list[TierPlan]) -> list[str]:
    return [p.tier for p in plans if p.path("self_hosted").evidence == "passes"]


def _volume_gate(plans: list[TierPlan], a: Assumptions, workload: Workload) -> Gate:
    """Does volume pay for a fleet? Tiers no API may carry are in the fleet on both sides of
    the comparison (compliance puts them there, not volume)."""
    eligible = eligible_tiers(plans)
    forced = [p.tier for p in plans if best_api(p) is None and p.tier in eligible]
    optional = [t for t in eligible if t not in forced]
    ptm = workload.traffic.peak_to_mean
    shape = f"; peak-to-mean {ptm:.2f} ({S002}: 'spiky traffic is the quiet killer')"
    if not optional:
        why = "no tier with an API path has a self-hosted model that can be costed"
        return Gate("volume", False, why + shape)
    base = best_assignment(plans, a, [], forced=forced)
    mixed = best_assignment(plans, a, optional, forced=forced)
    base_total = base.total if base else None
    extra = mixed is not None and mixed.fleet is not None and set(mixed.fleet.tiers) - set(forced)
    if mixed is None or mixed.total is None or not extra or base_total is None:
        whole = best_assignment(plans, a, [], forced=eligible)
        why = "self-hosting any tier costs more than its API path"
        if base_total is not None and whole and whole.total is not None:
            why += (
                f": one fleet for {', '.join(eligible)} {usd(whole.total)}/month vs "
                f"{usd(base_total)}/month with API paths"
            )
        return Gate("volume", False, f"volume is below the crossover: {why}{shape}")
    assert mixed.fleet is not None
    return Gate(
        "volume",
        True,
        f"one fleet for {', '.join(mixed.fleet.tiers)} ({usd(mixed.fleet.total)}/month, "
        f"utilisation {mixed.fleet.utilisation:.0%}) plus API for the rest: "
        f"{usd(mixed.total)}/month vs {usd(base_total)}/month with API paths{shape}",
    )


def _tolerance_gate(plans: list[TierPlan]) -> Gate:
    ok, missing, failed_any = [], [], []
    for plan in plans:
        hosted = plan.path("self_hosted")
        if plan.needs == ("frontier_reasoning",):
            continue
        model = hosted.model.id if hosted.model else "no model"
        if hosted.evidence == "passes":
            ok.append(f"{plan.tier}: {model} {hosted.evidence_detail}")
        else:
            missing.append(f"{plan.tier}: {model} needs eval")
        failed_any += [f"{m} ({why})" for m, why in plan.excluded if why.startswith("failed")]
    failed = "; failed the bar: " + ", ".join(dict.fromkeys(failed_any)) if failed_any else ""
    if not ok:
        return Gate(
            "task_tolerance",
            False,
            "no self-hosted candidate has a passing eval on your own traffic ("
            + "; ".join(missing or ["every task needs frontier reasoning"])
            + f"){failed} ({S002}: 'the eval is a day of work and it replaces a guess with a "
            "measurement')",
        )
    rest = f"; {'; '.join(missing)}" if missing else ""
    return Gate("task_tolerance", True, "passed the team's eval: " + "; ".join(ok) + rest + failed)


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
    where = (
        f"; inference must stay in {', '.join(workload.residency)}" if workload.residency else ""
    )
    if s == "on_prem":
        return Gate(
            "data_and_compliance",
            False,
            "data cannot leave our infrastructure: self-hosted only, whatever the price "
            f"({S003}: 'no managed API, regardless of vendor, provides genuine data "
            "isolation'); this overrides gates 1–3",
        )
    if s == "regulated":
        scope = (
            "the workload says compliance documentation covers vendor APIs"
            if workload.compliance_documented
            else "closed vendors with formal compliance documentation or self-hosted; no "
            f"open-weight vendor API ({S000}: 'default to closed source unless compliance "
            "documentation is explicitly in scope')"
        )
        return Gate("data_and_compliance", True, f"regulated data: {scope}{where}")
    return Gate(
        "data_and_compliance",
        True,
        "standard business data: any path is admissible" + (where or ", cost decides"),
    )


def evaluate_gates(plans: list[TierPlan], workload: Workload, a: Assumptions) -> list[Gate]:
    """The four gates of AI Tech Connect (``S002``), in order, each with the sentence that
    decided it."""
    return [
        _volume_gate(plans, a, workload),
        _tolerance_gate(plans),
        _ops_gate(workload),
        _data_gate(workload),
    ]


def _latency_case(workload: Workload, a: Assumptions) -> str | None:
    slo, p95 = workload.latency_slo_ms, workload.api_latency_p95_ms
    if slo is None or p95 is None or p95 <= slo:
        return None
    saving = a.number("vpc_latency_saving_ms_high")
    if p95 - saving > slo:
        return None
    return (
        f"the API path's measured p95 {p95:,.0f} ms misses the {slo:,.0f} ms SLO; in your VPC "
        f"it drops by {a.number('vpc_latency_saving_ms_low'):,.0f}–{saving:,.0f} ms ({S004}: "
        "'For latency-sensitive applications (real-time UX), the difference is meaningful')"
    )


def _tier_choices(
    plans: list[TierPlan], chosen: Assignment, why: dict[str, str]
) -> list[TierChoice]:
    fleet = chosen.fleet
    hosted_tokens = sum(
        (p.load.tokens_per_day for p in plans if fleet and p.tier in fleet.tiers), Decimal(0)
    )
    out = []
    for plan in plans:
        if fleet is not None and plan.tier in fleet.tiers:
            share = (
                fleet.total * plan.load.tokens_per_day / hosted_tokens if hosted_tokens else None
            )
            out.append(
                TierChoice(
                    plan.tier, "self_hosted", plan.path("self_hosted"), share, why[plan.tier]
                )
            )
            continue
        path = chosen.api.get(plan.tier)
        if path is None:
            out.append(TierChoice(plan.tier, None, None, None, "no admissible path"))
        else:
            out.append(TierChoice(plan.tier, path.path, path, path.monthly_usd, why[plan.tier]))
    return out


def choose(plans: list[TierPlan], gates: list[Gate], workload: Workload, a: Assumptions) -> Choice:
    """One path per tier, in the order of precedence of this module's docstring."""
    by_name = {g.name: g for g in gates}
    eligible, ok = eligible_tiers(plans), quality_ok_tiers(plans)
    no_api = [p.tier for p in plans if best_api(p) is None]
    monthly = workload.tokens_per_day * a.number("days_per_month")
    why: dict[str, str] = {}
    if workload.data_sensitivity == "on_prem":
        missing = [p for p in plans if p.tier not in eligible]
        if missing:
            p = missing[0]
            raise InvalidRequest(
                f"tier {p.tier}: data cannot leave our infrastructure, but no admissible "
                f"open-weight model can be self-hosted: {p.path('self_hosted').reason}"
                f"{excluded_summary(p)}"
            )
        chosen = best_assignment(plans, a, [], forced=[p.tier for p in plans])
        why = {
            p.tier: "compliance wins over cost: data cannot leave our infrastructure" for p in plans
        }
        basis = "compliance"
    else:
        forced = [t for t in no_api if t in eligible]
        for t in forced:
            why[t] = (
                "the gateway's audit marked this traffic sensitive: it never leaves our "
                "infrastructure, so only self-hosting may serve it"
                if t.endswith(":sensitive")
                else "no API may carry this data (residency or regulation): self-hosting is "
                "the only compliant option"
            )
        low = monthly < a.number("closed_api_below_tokens_per_month")
        gates_ok = all(
            by_name[n].passed for n in ("volume", "task_tolerance", "operations_capacity")
        )
        latency = _latency_case(workload, a)
        if low:
            closed = lambda p: best_api(p, closed_only=True) or best_api(p)  # noqa: E731
            chosen = best_assignment(plans, a, [], forced=forced, api_for=closed)
            basis = "low volume"
            floor = a.number("closed_api_below_tokens_per_month")
            text = (
                f"{human_tokens(monthly)} tokens/month is below {human_tokens(floor)}: closed "
                "API, no further "
                f"analysis required ({S003})"
            )
        elif gates_ok:
            chosen = best_assignment(plans, a, ok, forced=forced)
            basis = "cost"
            text = "gates 1–3 pass: the cheapest mix of one fleet and API paths"
        elif latency and by_name["task_tolerance"].passed and by_name["operations_capacity"].passed:
            chosen = best_assignment(plans, a, [], forced=sorted(set(forced) | set(ok)))
            basis = "latency"
            text = latency
        else:
            chosen = best_assignment(plans, a, [], forced=forced)
            basis = "gates"
            failed = [g.name for g in gates[:3] if not g.passed]
            text = f"cheapest admissible API path (self-hosting blocked by: {', '.join(failed)})"
        for p in plans:
            if p.tier not in eligible and basis != "low volume":
                hosted = p.path("self_hosted").reason
                why.setdefault(
                    p.tier, f"cheapest admissible API path (nothing to self-host: {hosted})"
                )
            why.setdefault(p.tier, text)
    if chosen is None:
        chosen = Assignment(None, {p.tier: q for p in plans if (q := best_api(p)) is not None})
    return Choice(tuple(_tier_choices(plans, chosen, why)), chosen.fleet, basis)


def _band(monthly: Decimal) -> str:
    if monthly < 5_000_000:
        return f"under 5M tokens/month: closed API, no further analysis required ({S003})"
    if monthly < 10_000_000:
        return (
            f"5M–10M tokens/month: any choice works ({S000}); managed open-weight is the "
            f"middle path ({S003})"
        )
    if monthly < 100_000_000:
        return f"10M–100M tokens/month: serverless open-weight endpoints save meaningfully ({S000})"
    if monthly < 500_000_000:
        return (
            f"100M–500M tokens/month: self-hosted open weights become viable ({S000}); cost decides"
        )
    return f"above 500M tokens/month: self-hosting is often the right answer ({S000}); cost decides"


def six_questions(workload: Workload, a: Assumptions, plans: list[TierPlan]) -> list[Question]:
    """The six questions of Digital Applied (``S000``) answered for this workload."""
    tasks = workload.tasks

    def having(need: str) -> list[str]:
        return [t.name for t in tasks if need in t.needs]

    frontier, media = having("frontier_reasoning"), having("video") + having("computer_use")
    coding = [t.name for t in tasks if t.coding]
    monthly = workload.tokens_per_day * a.number("days_per_month")
    denied = ", ".join(workload.constraints.denied_origins) or "none"
    residency = ", ".join(workload.residency) or "none"
    data = {
        "on_prem": "self-hosting is forced",
        "regulated": "closed vendors with compliance documentation, regional endpoints or "
        "self-hosted",
        "none": "no residency constraint on the path"
        if not workload.residency
        else "in-region providers only",
    }[workload.data_sensitivity]
    if workload.residency and workload.data_sensitivity != "on_prem":
        data += (
            f" (regional endpoints, {S003}; {S000} reads residency as forcing self-hosting: "
            "set data_sensitivity: on_prem if your client requires inference on hardware you "
            "control)"
        )
    return [
        Question(
            1,
            "Does the workload require frontier reasoning?",
            "yes: " + ", ".join(frontier) if frontier else "no",
            "closed frontier models for those tasks (Opus 4.6/4.7, GPT-5.4 Pro, Gemini 3.1 Pro)"
            if frontier
            else "open weights admissible",
        ),
        Question(
            2,
            "Does it require native computer use or video?",
            "yes: " + ", ".join(media) if media else "no",
            "GPT-5.4 for computer use, Gemini 3.1 Pro for video"
            if media
            else "no modality constraint",
        ),
        Question(
            3,
            "Is it coding or dev-tool heavy?",
            "yes: " + ", ".join(coding) if coding else "no",
            f"coding-capable models only (as named by {S000}; {S002}; {S003}); open weights "
            "have the better cost per outcome"
            if coding
            else "no effect",
        ),
        Question(
            4,
            "Do constraints rule out some model origins?",
            f"denied origins: {denied}",
            "those models are removed from every path" if denied != "none" else "none",
        ),
        Question(
            5,
            "What is the expected monthly token volume?",
            f"{human_tokens(monthly)} tokens/month ({human_tokens(workload.tokens_per_day)}/day)",
            _band(monthly),
        ),
        Question(
            6,
            "What are the data residency requirements?",
            f"{workload.data_sensitivity}; residency: {residency}",
            data,
        ),
    ]
