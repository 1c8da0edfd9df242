"""Statistics for evals, in numpy and the standard library (no SciPy).

* :func:`wilson_interval`: a 95% confidence interval for a pass rate.
* :func:`pass_hat_k`: pass^k for one case, C(c, k) / C(n, k) — the probability that k
  repeats drawn without replacement from n all pass, given c of n passed.
* :func:`mcnemar`: paired binary outcomes; the exact two-sided binomial test when the
  discordant pairs are fewer than 25, else chi-square with continuity correction.
* :func:`paired_bootstrap`: paired graded scores; two-sided p-value of the mean
  difference by resampling cases (seeded, so a report is reproducible).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PairedTest",
    "agreement",
    "mcnemar",
    "paired_bootstrap",
    "pass_hat_k",
    "wilson_interval",
]

_EXACT_BELOW = 25


@dataclass(frozen=True, slots=True)
class PairedTest:
    """A paired test of candidate B against baseline A (``delta`` = B - A)."""

    method: str
    p_value: float
    delta: float
    n: int
    worse: int  # cases where B is worse than A
    better: int  # cases where B is better than A


def wilson_interval(passed: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95% by default); (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = passed / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


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


def _binomial_two_sided(k: int, n: int) -> float:
    tail = sum(math.comb(n, i) for i in range(0, k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> PairedTest:
    """McNemar's test on paired pass/fail outcomes of baseline ``a`` and candidate ``b``."""
    if len(a) != len(b):
        raise ValueError("paired outcomes must have the same length")
    worse = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    better = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    discordant = worse + better
    if discordant == 0:
        p, method = 1.0, "mcnemar-exact"
    elif discordant < _EXACT_BELOW:
        p, method = _binomial_two_sided(min(worse, better), discordant), "mcnemar-exact"
    else:
        chi2 = (abs(worse - better) - 1) ** 2 / discordant
        p, method = math.erfc(math.sqrt(chi2 / 2.0)), "mcnemar-chi2"
    n = len(a)
    delta = (better - worse) / n if n else 0.0
    return PairedTest(method, p, delta, n, worse, better)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, resamples: int = 10_000, seed: int = 0
) -> PairedTest:
    """Paired bootstrap of the mean difference ``b - a`` (two-sided p-value)."""
    if len(a) != len(b):
        raise ValueError("paired scores must have the same length")
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    n = len(diffs)
    worse, better = int((diffs < 0).sum()), int((diffs > 0).sum())
    if n == 0 or not diffs.any():
        return PairedTest("paired-bootstrap", 1.0, 0.0, n, worse, better)
    rng = np.random.default_rng(seed)
    observed = float(diffs.mean())
    means = np.empty(resamples)
    chunk = 1000
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        means[start : start + size] = diffs[idx].mean(axis=1)
    # The share of resampled means on the far side of zero, both tails.
    below = float((means <= 0).mean())
    above = float((means >= 0).mean())
    p = min(1.0, 2.0 * min(below, above))
    return PairedTest("paired-bootstrap", p, observed, n, worse, better)
