"""The statistics of a shadow report: pairs of (primary answer, candidate answer) to the
same mirrored request, summarised side by side and tested pair by pair.

* latency p50 / p95 per side (failed calls included: a time-out took its time), cost
  (``None`` when any price is unknown, never 0), mean output tokens;
* refusal, empty-answer, failed-call and format-failure rates per side with 95% Wilson
  intervals, each compared with McNemar's exact test over the pairs;
* quality where a check scores both answers: the exact sign test over pairs;
* the judge's blind verdicts: wins, ties, losses, the candidate's preference
  ``(wins + ties / 2) / n`` with a 95% interval, and the sign test of wins against losses;
* a person's blind verdicts (``laneway shadow review``: a sample, identical answers never
  shown) summarised the same way, and how often the judge agreed with them on the pairs
  both saw;
* :func:`non_inferiority`: the gate. The candidate is non-inferior at margin ``M`` when
  the one-sided test of H0 "candidate worse by ``M`` or more" rejects at ``alpha`` (a
  z-test on the mean paired difference; at least :data:`MIN_PAIRS` pairs are needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from laneway.evals._drift import is_refusal
from laneway.evals._stats import PairedTest, mcnemar, sign_test, wilson_interval
from laneway.ledger import percentile

__all__ = [
    "MIN_PAIRS",
    "JudgeSummary",
    "NonInferiority",
    "RateComparison",
    "ShadowPair",
    "ShadowReport",
    "SideSummary",
    "non_inferiority",
    "shadow_report",
]

MIN_PAIRS = 30


@dataclass(frozen=True, slots=True)
class ShadowPair:
    """One mirrored request. An ``output`` of ``None`` means the call failed;
    ``*_format_ok`` / ``*_passed`` are ``None`` where no check applies; ``verdict`` is
    the judge's ``candidate``, ``primary`` or ``tie`` (``None``: not judged), ``human``
    a person's (``None``: not reviewed)."""

    primary_latency_ms: float | None
    candidate_latency_ms: float | None
    primary_output: str | None
    candidate_output: str | None
    primary_cost_usd: Decimal | None = None
    candidate_cost_usd: Decimal | None = None
    primary_tokens: int | None = None
    candidate_tokens: int | None = None
    primary_format_ok: bool | None = None
    candidate_format_ok: bool | None = None
    primary_passed: bool | None = None
    candidate_passed: bool | None = None
    verdict: str | None = None
    human: str | None = None


@dataclass(frozen=True, slots=True)
class SideSummary:
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_samples: int
    cost_usd: Decimal | None  # None when any call's price is unknown
    mean_output_tokens: float | None


@dataclass(frozen=True, slots=True)
class RateComparison:
    name: str  # refusal / empty / failed / format_failure
    primary: float | None
    primary_ci: tuple[float, float]
    candidate: float | None
    candidate_ci: tuple[float, float]
    n: int
    test: PairedTest  # McNemar exact over the pairs (worse = candidate has it more)


@dataclass(frozen=True, slots=True)
class JudgeSummary:
    wins: int
    ties: int
    losses: int
    preference: float  # the candidate's (wins + ties / 2) / n
    ci: tuple[float, float]
    p_value: float  # exact sign test of wins against losses


@dataclass(frozen=True, slots=True)
class NonInferiority:
    metric: str  # "pass_rate" (difference) or "judge_preference"
    margin: float
    alpha: float
    n: int
    estimate: float  # mean difference (candidate - primary), or preference - 0.5
    lower_bound: float  # one-sided (1 - alpha) lower confidence bound of the estimate
    p_value: float
    passed: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ShadowReport:
    pairs: int
    primary: SideSummary
    candidate: SideSummary
    rates: tuple[RateComparison, ...]
    quality: PairedTest | None  # sign test over pairs both scored
    judge: JudgeSummary | None
    gates: tuple[NonInferiority, ...]
    human: JudgeSummary | None = None  # a person's blind verdicts on the reviewed sample
    # (agreed, both): pairs where the judge and the person gave the same verdict, of
    # the pairs both judged
    judge_human_agreement: tuple[int, int] | None = None

    @property
    def passed(self) -> bool | None:
        """True when every gate passed; ``None`` without a gate."""
        return all(g.passed for g in self.gates) if self.gates else None


def _side(latency: list[float], costs: list[Decimal | None], tokens: list[int]) -> SideSummary:
    known = [c for c in costs if c is not None]
    return SideSummary(
        latency_p50_ms=percentile(latency, 50),
        latency_p95_ms=percentile(latency, 95),
        latency_samples=len(latency),
        cost_usd=sum(known, Decimal(0)) if costs and len(known) == len(costs) else None,
        mean_output_tokens=sum(tokens) / len(tokens) if tokens else None,
    )


def _flags(pair: ShadowPair, side: str) -> dict[str, bool | None]:
    output: str | None = getattr(pair, f"{side}_output")
    fmt: bool | None = getattr(pair, f"{side}_format_ok")
    answered = output is not None
    return {
        "failed": not answered,
        "empty": (not output.strip()) if output is not None else None,
        "refusal": is_refusal(output) if answered else None,
        "format_failure": (not fmt) if fmt is not None and answered else None,
    }


def _rates(pairs: Sequence[ShadowPair]) -> tuple[RateComparison, ...]:
    out: list[RateComparison] = []
    flags = [(_flags(p, "primary"), _flags(p, "candidate")) for p in pairs]
    for name in ("refusal", "empty", "failed", "format_failure"):
        both = [(a[name], b[name]) for a, b in flags if a[name] is not None and b[name] is not None]
        if not both:
            continue
        prim = [bool(a) for a, _ in both]
        cand = [bool(b) for _, b in both]
        n = len(both)
        # McNemar's "worse" counts pairs where the primary has it and the candidate not;
        # for an unwanted event that is the candidate doing *better*: swap the sides.
        test = mcnemar(cand, prim)
        out.append(
            RateComparison(
                name,
                sum(prim) / n,
                wilson_interval(sum(prim), n),
                sum(cand) / n,
                wilson_interval(sum(cand), n),
                n,
                test,
            )
        )
    return tuple(out)


def _agreement(pairs: Sequence[ShadowPair]) -> tuple[int, int] | None:
    both = [(p.verdict, p.human) for p in pairs if p.verdict is not None and p.human is not None]
    return (sum(a == b for a, b in both), len(both)) if both else None


def _summary(verdicts: Sequence[str | None]) -> JudgeSummary | None:
    """Wins, ties and losses of the candidate among the given verdicts (``None`` left out)."""
    given = [v for v in verdicts if v is not None]
    if not given:
        return None
    wins, ties, losses = (given.count(v) for v in ("candidate", "tie", "primary"))
    n = wins + ties + losses
    preference = (wins + ties / 2) / n
    return JudgeSummary(
        wins,
        ties,
        losses,
        preference,
        _preference_interval(wins, ties, losses),
        sign_test(losses, wins),
    )


def _scores(wins: int, ties: int, losses: int) -> list[float]:
    return [1.0] * wins + [0.5] * ties + [0.0] * losses


def _preference_interval(wins: int, ties: int, losses: int) -> tuple[float, float]:
    """95% interval of the preference (wins + ties/2) / n: Wilson's, at the effective sample
    size that gives it the scores' observed variance (ties shrink it below the binomial
    one). Unlike mean ± z·sd/√n it is never of zero width: 9 wins of 9 is [70%, 100%], not
    [100%, 100%], and 33 ties are [34%, 66%], not [50%, 50%]."""
    n = wins + ties + losses
    p = (wins + ties / 2) / n
    variance = (wins + ties / 4) / n - p * p
    n_eff = n * p * (1 - p) / variance if variance > 1e-12 else float(n)
    return wilson_interval(p * n_eff, n_eff)


def _normal_upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def non_inferiority(
    values: Sequence[float], *, margin: float, alpha: float = 0.05, metric: str, null: float = 0.0
) -> NonInferiority:
    """One-sided test of H0: mean(values) - null <= -margin, against H1: > -margin."""
    n = len(values)
    if n < MIN_PAIRS:
        return NonInferiority(
            metric,
            margin,
            alpha,
            n,
            float("nan"),
            float("nan"),
            1.0,
            False,
            f"too few pairs ({n} < {MIN_PAIRS})",
        )
    mean = sum(values) / n - null
    sd = math.sqrt(sum((v - null - mean) ** 2 for v in values) / (n - 1))
    se = sd / math.sqrt(n)
    z_alpha = _z_for_upper(alpha)
    if se == 0:
        p = 0.0 if mean > -margin else 1.0
        lower = mean
    else:
        p = _normal_upper_tail((mean + margin) / se)
        lower = mean - z_alpha * se
    return NonInferiority(metric, margin, alpha, n, mean, lower, p, p < alpha)


def _z_for_upper(alpha: float) -> float:
    """The z with P(Z > z) = alpha (bisection on erfc; no SciPy)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if _normal_upper_tail(mid) > alpha:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def shadow_report(
    pairs: Sequence[ShadowPair], *, margin: float | None = None, alpha: float = 0.05
) -> ShadowReport:
    """Everything the shadow report prints, and the gates when ``margin`` is given: on
    the pass-rate difference (pairs both scored) and on the judge's preference."""
    lat_p = [p.primary_latency_ms for p in pairs if p.primary_latency_ms is not None]
    lat_c = [p.candidate_latency_ms for p in pairs if p.candidate_latency_ms is not None]
    tok_p = [p.primary_tokens for p in pairs if p.primary_tokens is not None]
    tok_c = [p.candidate_tokens for p in pairs if p.candidate_tokens is not None]
    scored = [
        (p.primary_passed, p.candidate_passed)
        for p in pairs
        if p.primary_passed is not None and p.candidate_passed is not None
    ]
    quality = (
        mcnemar([bool(a) for a, _ in scored], [bool(b) for _, b in scored]) if scored else None
    )
    judge = _summary([p.verdict for p in pairs])
    gates: list[NonInferiority] = []
    if margin is not None:
        if scored:
            diffs = [float(b) - float(a) for a, b in scored]
            gates.append(non_inferiority(diffs, margin=margin, alpha=alpha, metric="pass_rate"))
        if judge is not None:
            gates.append(
                non_inferiority(
                    _scores(judge.wins, judge.ties, judge.losses),
                    margin=margin,
                    alpha=alpha,
                    metric="judge_preference",
                    null=0.5,
                )
            )
    return ShadowReport(
        pairs=len(pairs),
        primary=_side(lat_p, [p.primary_cost_usd for p in pairs], tok_p),
        candidate=_side(lat_c, [p.candidate_cost_usd for p in pairs], tok_c),
        rates=_rates(pairs),
        quality=quality,
        judge=judge,
        gates=tuple(gates),
        human=_summary([p.human for p in pairs]),
        judge_human_agreement=_agreement(pairs),
    )
