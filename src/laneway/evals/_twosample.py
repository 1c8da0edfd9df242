"""Two independent samples (a baseline window against a recent one), for drift.

* :func:`mann_whitney`: the Mann-Whitney U test (normal approximation with tie and
  continuity corrections) for latencies and output lengths: no assumption of normality,
  robust to the long tails latencies have.
* :func:`fisher_exact`: Fisher's exact test of two proportions (error, refusal,
  format-failure rates), two-sided by summing the tables no more likely than the one seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["TwoSample", "fisher_exact", "mann_whitney"]


@dataclass(frozen=True, slots=True)
class TwoSample:
    """A test of ``recent`` against ``baseline``; ``effect`` is test specific (the
    probability that a recent value exceeds a baseline one, or the rate difference)."""

    method: str
    p_value: float
    effect: float
    n_baseline: int
    n_recent: int


def _ranks(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Average ranks (1-based) and the tie term sum(t^3 - t)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    ties = 0.0
    start = 0
    n = len(values)
    while start < n:
        end = start
        while end + 1 < n and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        t = end - start + 1
        ties += t**3 - t
        start = end + 1
    return ranks, ties


def mann_whitney(baseline: Sequence[float], recent: Sequence[float]) -> TwoSample:
    """Two-sided Mann-Whitney U test; ``effect`` = P(recent > baseline) + P(tie) / 2
    (0.5: no shift; above 0.5: recent values are larger)."""
    x = np.asarray(recent, dtype=float)
    y = np.asarray(baseline, dtype=float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return TwoSample("mann-whitney", 1.0, 0.5, n2, n1)
    ranks, ties = _ranks(np.concatenate([x, y]))
    u = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    mean = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    effect = u / (n1 * n2)
    if var <= 0:
        return TwoSample("mann-whitney", 1.0, effect, n2, n1)
    z = (abs(u - mean) - 0.5) / math.sqrt(var)
    p = math.erfc(max(0.0, z) / math.sqrt(2.0))
    return TwoSample("mann-whitney", min(1.0, p), effect, n2, n1)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(baseline_hits: int, baseline_n: int, recent_hits: int, recent_n: int) -> TwoSample:
    """Two-sided Fisher's exact test of ``recent_hits / recent_n`` against
    ``baseline_hits / baseline_n``; ``effect`` is the recent rate minus the baseline's."""
    if not (0 <= baseline_hits <= baseline_n and 0 <= recent_hits <= recent_n):
        raise ValueError("hits must be between 0 and n")
    if baseline_n == 0 or recent_n == 0:
        return TwoSample("fisher-exact", 1.0, 0.0, baseline_n, recent_n)
    effect = recent_hits / recent_n - baseline_hits / baseline_n
    hits = baseline_hits + recent_hits
    total = baseline_n + recent_n
    lo, hi = max(0, hits - baseline_n), min(recent_n, hits)

    def log_p(x: int) -> float:
        return _log_comb(recent_n, x) + _log_comb(baseline_n, hits - x) - _log_comb(total, hits)

    observed = log_p(recent_hits)
    p = sum(math.exp(lp) for x in range(lo, hi + 1) if (lp := log_p(x)) <= observed + 1e-7)
    return TwoSample("fisher-exact", min(1.0, p), effect, baseline_n, recent_n)
