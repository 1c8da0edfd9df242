"""Are ``laneway eval compare``'s p-values honest? Simulated runs, through ``compare_runs``.

    python benchmarks/eval_stats.py [--sims 100] [--cases 400] [--seed 0]

* **A/A**: two runs of the same model (every case has its own difficulty; each run
  draws its answers independently, 1 and 3 repeats). A fair test flags at most
  ``alpha`` of them: the false-alarm rate at alpha = 0.05 must be <= 5%.
* **A/B**: the same cases, a candidate 20 points worse (80% -> 60% correct) and 10 points
  worse (80% -> 70%), n = 400: the p-value of a typical comparison and the power (the
  share of simulations flagged at p < 0.01).

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
    compare_runs,
    format_p,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=100, help="Simulated comparisons per setting.")
    parser.add_argument("--cases", type=int, default=400, help="Cases per run.")
    parser.add_argument("--seed", type=int, default=0, help="Random seed.")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(f"{args.sims} simulations per setting, {args.cases} cases, seed {args.seed}")
    for repeats in (1, 3):
        rate = aa(rng, args.sims, args.cases, repeats, 0.05)
        verdict = "ok" if rate <= 0.05 else "TOO MANY"
        low, high = wilson_interval(round(rate * args.sims), args.sims)
        print(
            f"A/A, {repeats} repeat(s): false-alarm rate at alpha 0.05 = {rate:.1%} ({verdict}; "
            f"95% CI of the estimate {low:.1%}-{high:.1%} over {args.sims} simulations)"
        )
    for base, cand in ((0.8, 0.6), (0.8, 0.7)):
        median_p, power = ab(rng, args.sims, args.cases, base, cand)
        print(
            f"A/B {base:.0%} -> {cand:.0%}, n = {args.cases}: median p = {format_p(median_p)} "
            f"(raw {median_p:.3g}), power at p < 0.01 = {power:.0%}"
        )
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
