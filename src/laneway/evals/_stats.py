"""Statistics for evals, in numpy and the standard library (no SciPy).

Rates and intervals:

* :func:`wilson_interval`: a 95% confidence interval for a pass rate of independent trials.
* :func:`clustered_interval`: the same for repeats of the same cases: repeats of one case
  are not independent, so the interval is Wilson's at the effective sample size
  ``attempts / design effect`` (the design effect from the between-case variance, with
  the small-sample factor G / (G - 1) over G cases, never below 1; the effective size is
  never below the number of cases, which it is when every call passed or every call
  failed). With one repeat per case it is exactly Wilson's interval.
* :func:`pass_hat_k`: pass^k for one case, C(c, k) / C(n, k).

Paired tests of candidate B against baseline A are over **cases**: repeats are first
averaged per case, so the verdict does not change with the repeat count of a
deterministic model:

* :func:`sign_test`: exact two-sided binomial test of wins against losses (ties dropped).
* :func:`paired_test`: per-case values; when every difference is -1, 0 or +1 it is the
  exact sign test (McNemar's exact test), otherwise a sign-flip permutation test of the
  mean difference (exact enumeration up to 16 non-zero differences, else 20,000 seeded
  random flips with the p-value ``(k + 1) / (R + 1)``, never 0).
* :func:`format_p`: a p-value as text; anything below 1e-4 is printed ``< 1e-4``.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PairedTest",
    "agreement",
    "clustered_interval",
    "format_p",
    "mcnemar",
    "paired_test",
    "pass_hat_k",
    "sign_test",
    "wilson_interval",
]

Z95 = 1.959964
_EXACT_FLIPS = 16
_RESAMPLES = 20_000


@dataclass(frozen=True, slots=True)
class PairedTest:
    """A paired test of candidate B against baseline A (``delta`` = mean of B - A)."""

    method: str
    p_value: float
    delta: float
    n: int
    worse: int  # cases where B is worse than A
    better: int  # cases where B is better than A


def wilson_interval(passed: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (95% by default); (0, 1) when ``n`` is 0. ``passed``
    and ``n`` may be fractional (an effective sample size)."""
    if n <= 0:
        return 0.0, 1.0
    p = passed / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n))) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clustered_interval(per_case: Sequence[tuple[int, int]], z: float = Z95) -> tuple[float, float]:
    """A 95% interval for the pass rate when each case was asked ``n_i`` times and passed
    ``c_i`` times (``per_case`` holds ``(c_i, n_i)``): Wilson's interval at the effective
    sample size n / deff, where deff is the cluster-robust variance of the pooled rate
    over the binomial one (at least 1)."""
    cases = [(c, n) for c, n in per_case if n > 0]
    total = sum(n for _, n in cases)
    if total == 0:
        return 0.0, 1.0
    passed = sum(c for c, _ in cases)
    p = passed / total
    if p in (0.0, 1.0):
        # Every call passed (or failed): the between-case variance is 0 and says nothing
        # about how far repeats of one case are independent. Every case agreed with
        # itself, so count cases, not calls (total² / Σ n_i², the number of cases when
        # they were asked equally often): 5 cases x 6 repeats all passing is 5 passes,
        # not 30.
        n_eff = total**2 / sum(n * n for _, n in cases)
        return wilson_interval(p * n_eff, n_eff, z)
    deff = 1.0
    groups = len(cases)
    if groups > 1:
        # Cluster-robust (CR1: CR0 times G / (G - 1)); CR0 alone covered 91-93% over 8-10
        # cases with 5-10 repeats (simulated, heterogeneous cases), CR1 93-94%.
        robust = sum((c - p * n) ** 2 for c, n in cases) / total**2 * groups / (groups - 1)
        binomial = p * (1 - p) / total
        deff = max(1.0, robust / binomial)
    # Repeats that always agree make it as sure as the cases alone, never less sure.
    n_eff = max(total / deff, total**2 / sum(n * n for _, n in cases))
    return wilson_interval(p * n_eff, n_eff, z)


def pass_hat_k(c: int, n: int, k: int) -> float:
    """C(c, k) / C(n, k): the chance that ``k`` of the ``n`` repeats, drawn at random,
    all passed when ``c`` of them passed."""
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"need 0 < k <= n and 0 <= c <= n (c={c}, n={n}, k={k})")
    return math.comb(c, k) / math.comb(n, k)


def agreement(answers: Sequence[str]) -> float:
    """The share of answers equal to the most common one (1.0 for a single answer)."""
    if not answers:
        return float("nan")
    counts: dict[str, int] = {}
    for answer in answers:
        counts[answer] = counts.get(answer, 0) + 1
    return max(counts.values()) / len(answers)


def sign_test(worse: int, better: int) -> float:
    """Exact two-sided binomial test of ``better`` against ``worse`` (p = 1/2 each)."""
    n = worse + better
    if n == 0:
        return 1.0
    k = min(worse, better)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    # Integer arithmetic, then one division: exact for any n (no overflow). Beyond about
    # 1,075 one-sided pairs the quotient is below the smallest float: never report 0.
    return min(1.0, max(2 * tail / (1 << n), sys.float_info.min))


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> PairedTest:
    """McNemar's exact test (the sign test on discordant pairs) of paired pass/fail
    outcomes of baseline ``a`` and candidate ``b``."""
    if len(a) != len(b):
        raise ValueError("paired outcomes must have the same length")
    worse = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    better = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    n = len(a)
    delta = (better - worse) / n if n else 0.0
    return PairedTest("mcnemar-exact", sign_test(worse, better), delta, n, worse, better)


def _sign_flip(diffs: np.ndarray, seed: int, resamples: int) -> tuple[str, float]:
    """Two-sided p-value of the mean of ``diffs`` (zeros dropped) under random signs."""
    nz = diffs[diffs != 0]
    observed = abs(float(nz.sum()))
    tol = 1e-12 * max(1.0, observed)
    if len(nz) <= _EXACT_FLIPS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(nz))))
        sums = np.abs(signs @ nz)
        return "sign-flip-exact", float((sums >= observed - tol).mean())
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = 2_000
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        signs = rng.choice((1.0, -1.0), size=(size, len(nz)))
        hits += int((np.abs(signs @ nz) >= observed - tol).sum())
    return "sign-flip", (hits + 1) / (resamples + 1)


def paired_test(
    a: Sequence[float], b: Sequence[float], *, seed: int = 0, resamples: int = _RESAMPLES
) -> PairedTest:
    """Paired test over cases of per-case values ``a`` (baseline) and ``b`` (candidate),
    e.g. per-case pass rates averaged over repeats, or per-case mean scores."""
    if len(a) != len(b):
        raise ValueError("paired values must have the same length")
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    n = len(diffs)
    worse, better = int((diffs < 0).sum()), int((diffs > 0).sum())
    delta = float(diffs.mean()) if n else 0.0
    if worse + better == 0:
        return PairedTest("sign-test", 1.0, delta, n, worse, better)
    if np.all(np.isin(diffs, (-1.0, 0.0, 1.0))):
        return PairedTest("sign-test", sign_test(worse, better), delta, n, worse, better)
    method, p = _sign_flip(diffs, seed, resamples)
    return PairedTest(method, min(1.0, p), delta, n, worse, better)


def format_p(p: float) -> str:
    """``p`` for people: ``< 1e-4`` below 1e-4 (never a bare 0), else 2 significant
    figures (``0.031``, ``0.5``, ``1``)."""
    if p < 1e-4:
        return "< 1e-4"
    return f"{p:.2g}" if p < 0.1 else f"{p:.2f}".rstrip("0").rstrip(".")
