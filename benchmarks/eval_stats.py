"""Are ``laneway eval compare``'s p-values honest? Simulated runs, through ``compare_runs``.

    python benchmarks/eval_stats.py [--sims 100] [--cases 400] [--seed 0]

* **A/A**: two runs of the same model (every case has its own difficulty; each run
  draws its answers independently, 1 and 3 repeats). A fair test flags at most
  ``alpha`` of them: the false-alarm rate at alpha = 0.05 must be <= 5%.
* **A/B**: the same cases, a candidate 20 points worse (80% -> 60% correct) and 10 points
  worse (80% -> 70%), n = 400: the p-value of a typical comparison and the power (the
  share of simulations flagged at p < 0.01).

* **Shadow A/A and A/B**: the same through ``shadow_report`` (what ``laneway shadow report
  --gate`` decides on): pairs of answers to one mirrored request, the pass/fail of each
  side tested with McNemar's exact test and a blind judge's verdicts (right over wrong
  90% of the time, a coin where both are right or both wrong) with the sign test. A/A:
  the false-alarm rate of each test at alpha = 0.05 (<= 5%) and how often the
  non-inferiority gate at margin 0.05 passes an equally good candidate; A/B (80% -> 70%
  and 80% -> 60%, n = 400): the share flagged at p < 0.01 and the share the gate fails.

Cases differ in difficulty (per-case correctness probabilities drawn from a Beta
distribution with the run's mean), so the runs are correlated case by case, as real
runs are.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

import numpy as np

from laneway.evals import (
    LoadedRun,
    ResultRow,
    RunInfo,
    ShadowPair,
    compare_runs,
    format_p,
    shadow_report,
    wilson_interval,
)

__all__ = ["main"]

_CHECK_OK = ({"name": "expected", "kind": "answer", "passed": True, "score": 1.0},)
_CHECK_BAD = ({"name": "expected", "kind": "answer", "passed": False, "score": 0.0},)


def _run(run_id: str, passed: np.ndarray) -> LoadedRun:
    """``passed[case, repeat]`` as a stored run of model ``m``."""
    cases, repeats = passed.shape
    rows = tuple(
        ResultRow(
            f"c{i:04d}",
            "m",
            r,
            "x",
            bool(passed[i, r]),
            float(passed[i, r]),
            _CHECK_OK if passed[i, r] else _CHECK_BAD,
        )
        for i in range(cases)
        for r in range(repeats)
    )
    info = RunInfo(
        run_id,
        datetime.now(UTC),
        "complete",
        {"name": "sim", "cases": [{"id": f"c{i:04d}"} for i in range(cases)]},
        "sim",
        ("m",),
        repeats,
        {},
    )
    return LoadedRun(info, rows, ())


def _difficulty(
    rng: np.random.Generator, cases: int, mean: float, spread: float = 4.0
) -> np.ndarray:
    """Per-case probabilities of a right answer, mean ``mean`` (Beta(a, b), a + b = spread)."""
    return rng.beta(mean * spread, (1 - mean) * spread, cases)


def _shifted(p: np.ndarray, target: float) -> np.ndarray:
    """The same cases for a weaker model: each probability scaled to mean ``target``."""
    return np.clip(p * target / p.mean(), 0.0, 1.0)


def _draw(rng: np.random.Generator, p: np.ndarray, repeats: int) -> np.ndarray:
    return rng.random((len(p), repeats)) < p[:, None]


def aa(rng: np.random.Generator, sims: int, cases: int, repeats: int, alpha: float) -> float:
    flagged = 0
    for _ in range(sims):
        p = _difficulty(rng, cases, 0.8)
        result = compare_runs(
            _run("a", _draw(rng, p, repeats)), _run("b", _draw(rng, p, repeats)), alpha=alpha
        )
        flagged += result.test.p_value < alpha
    return flagged / sims


def ab(
    rng: np.random.Generator, sims: int, cases: int, base: float, cand: float
) -> tuple[float, float]:
    """(median p-value, share of simulations with p < 0.01 and the candidate worse)."""
    ps: list[float] = []
    hits = 0
    for _ in range(sims):
        p = _difficulty(rng, cases, base)
        q = _shifted(p, cand)
        result = compare_runs(_run("a", _draw(rng, p, 1)), _run("b", _draw(rng, q, 1)))
        ps.append(result.test.p_value)
        hits += result.test.p_value < 0.01 and result.test.delta < 0
    return statistics.median(ps), hits / sims


def _verdicts(rng: np.random.Generator, prim: np.ndarray, cand: np.ndarray) -> list[str]:
    """A blind judge: the right answer wins 90% of the time (else a tie or the wrong one);
    two right or two wrong answers: tie half the time, else either side at random."""
    out: list[str] = []
    for a, b, u, v in zip(prim, cand, rng.random(len(prim)), rng.random(len(prim)), strict=True):
        if a != b:
            right, wrong = ("primary", "candidate") if a else ("candidate", "primary")
            out.append(right if u < 0.9 else ("tie" if v < 0.5 else wrong))
        else:
            out.append("tie" if u < 0.5 else ("primary" if v < 0.5 else "candidate"))
    return out


def _shadow(rng: np.random.Generator, cases: int, base: float, cand: float) -> dict[str, float]:
    """One simulated shadow comparison: the p-values and whether the gate passed."""
    p = _difficulty(rng, cases, base)
    prim = rng.random(cases) < p
    other = rng.random(cases) < (p if cand == base else _shifted(p, cand))
    pairs = [
        ShadowPair(
            100.0, 100.0, "x", "y", primary_passed=bool(a), candidate_passed=bool(b), verdict=v
        )
        for a, b, v in zip(prim, other, _verdicts(rng, prim, other), strict=True)
    ]
    report = shadow_report(pairs, margin=0.05)
    assert report.quality is not None
    assert report.judge is not None
    return {
        "quality_p": report.quality.p_value,
        "quality_worse": float(report.quality.delta < 0),
        "judge_p": report.judge.p_value,
        "judge_worse": float(report.judge.preference < 0.5),
        "gate_passed": float(bool(report.passed)),
    }


def shadow_sims(
    rng: np.random.Generator, sims: int, cases: int, base: float, cand: float, alpha: float
) -> dict[str, float]:
    """Shares of ``sims`` comparisons: each test's p < ``alpha`` in either direction, the
    same with the candidate found worse (what the report flags), and gates passed."""
    runs = [_shadow(rng, cases, base, cand) for _ in range(sims)]
    out = {"gate_passed": sum(r["gate_passed"] for r in runs) / sims}
    for test in ("quality", "judge"):
        out[test] = sum(r[f"{test}_p"] < alpha for r in runs) / sims
        out[f"{test}_worse"] = sum(r[f"{test}_p"] < alpha and r[f"{test}_worse"] for r in runs)
        out[f"{test}_worse"] /= sims
    return out


def _print_shadow(sims: int, cases: int, rng: np.random.Generator) -> None:
    rates = shadow_sims(rng, sims, cases, 0.8, 0.8, 0.05)
    for test in ("quality", "judge"):
        rate = rates[test]
        low, high = wilson_interval(round(rate * sims), sims)
        verdict = "ok" if rate <= 0.05 else "TOO MANY"
        print(
            f"shadow A/A, {test} test: false-alarm rate at alpha 0.05 = {rate:.1%} either way "
            f"({verdict}; 95% CI {low:.1%}-{high:.1%} over {sims} simulations), "
            f"{rates[test + '_worse']:.1%} flagged worse"
        )
    print(
        f"shadow A/A: the non-inferiority gate (margin 0.05, n = {cases}) passes an equally "
        f"good candidate {rates['gate_passed']:.0%} of the time"
    )
    for cand in (0.7, 0.6):
        r = shadow_sims(rng, sims, cases, 0.8, cand, 0.01)
        print(
            f"shadow A/B 80% -> {cand:.0%}, n = {cases}: flagged worse at p < 0.01 by the "
            f"quality test {r['quality_worse']:.0%}, by the judge {r['judge_worse']:.0%}; "
            f"the gate fails {1 - r['gate_passed']:.0%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=100, help="Simulated comparisons per setting.")
    parser.add_argument("--cases", type=int, default=400, help="Cases per run.")
    parser.add_argument("--seed", type=int, default=0, help="Random seed.")
    parser.add_argument("--shadow-only", action="store_true", help="Only the shadow report.")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(f"{args.sims} simulations per setting, {args.cases} cases, seed {args.seed}")
    for repeats in () if args.shadow_only else (1, 3):
        rate = aa(rng, args.sims, args.cases, repeats, 0.05)
        verdict = "ok" if rate <= 0.05 else "TOO MANY"
        low, high = wilson_interval(round(rate * args.sims), args.sims)
        print(
            f"A/A, {repeats} repeat(s): false-alarm rate at alpha 0.05 = {rate:.1%} ({verdict}; "
            f"95% CI of the estimate {low:.1%}-{high:.1%} over {args.sims} simulations)"
        )
    for base, cand in () if args.shadow_only else ((0.8, 0.6), (0.8, 0.7)):
        median_p, power = ab(rng, args.sims, args.cases, base, cand)
        print(
            f"A/B {base:.0%} -> {cand:.0%}, n = {args.cases}: median p = {format_p(median_p)} "
            f"(raw {median_p:.3g}), power at p < 0.01 = {power:.0%}"
        )
    _print_shadow(args.sims, args.cases, rng)
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
