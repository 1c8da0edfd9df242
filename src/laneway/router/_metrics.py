"""RouteLLM's routing metrics: PGR curve, APGR and CPT(x), with bootstrap intervals.

For a strong/weak pair and a router score per prompt (higher = send to strong),
sending the top share ``k`` of prompts to the strong model gives quality ``q(k)``;
``PGR(k) = (q(k) - q_weak) / (q_strong - q_weak)``. APGR is the mean of PGR over
``k`` from 0 to 1; CPT(x) the smallest share of strong calls whose PGR reaches x.
Tied scores are resolved in expectation (as a random tie-break would on average),
so a constant score has APGR exactly 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["BootstrapResult", "PairMetrics", "bootstrap", "pair_metrics", "pgr_curve"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PairMetrics:
    apgr: float
    cpt50: float
    cpt80: float


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    value: PairMetrics
    apgr_ci: tuple[float, float]
    cpt50_ci: tuple[float, float]


def pgr_curve(scores: FloatArray, strong: FloatArray, weak: FloatArray) -> FloatArray:
    """PGR at shares ``i/n`` for ``i = 0..n`` (length ``n + 1``)."""
    n = len(scores)
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    gains = (strong - weak)[order].astype(np.float64)
    cum = np.concatenate([[0.0], np.cumsum(gains)])
    # Inside a run of tied scores, replace the cumulative gain by its expectation.
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(sorted_scores) != 0) + 1, [n]])
    pos = np.arange(n + 1)
    k = np.searchsorted(bounds, pos, side="right") - 1
    start = bounds[k]
    end = bounds[np.minimum(k + 1, len(bounds) - 1)]
    inside = end > start
    frac = np.where(inside, (pos - start) / np.where(inside, end - start, 1), 0.0)
    cum = cum[start] + frac * (cum[end] - cum[start])
    base = float(np.mean(weak))
    span = float(np.mean(strong)) - base
    quality = base + cum / n
    if abs(span) < 1e-12:
        return np.zeros(n + 1)
    return np.asarray((quality - base) / span, dtype=np.float64)


def _cpt(curve: FloatArray, x: float) -> float:
    hits = np.flatnonzero(curve >= x - 1e-12)
    if len(hits) == 0:
        return 1.0
    i = int(hits[0])
    n = len(curve) - 1
    if i == 0:
        return 0.0
    lo, hi = curve[i - 1], curve[i]
    frac = (x - lo) / (hi - lo) if hi > lo else 1.0
    return float((i - 1 + frac) / n)


def pair_metrics(scores: FloatArray, strong: FloatArray, weak: FloatArray) -> PairMetrics:
    curve = pgr_curve(
        np.asarray(scores, np.float64), np.asarray(strong, np.float64), np.asarray(weak, np.float64)
    )
    apgr = float(np.mean((curve[1:] + curve[:-1]) / 2.0))
    return PairMetrics(apgr, _cpt(curve, 0.5), _cpt(curve, 0.8))


def bootstrap(
    scores: FloatArray,
    strong: FloatArray,
    weak: FloatArray,
    *,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapResult:
    """Percentile bootstrap over prompts for APGR and CPT(50%)."""
    rng = np.random.default_rng(seed)
    n = len(scores)
    apgrs = np.empty(rounds)
    cpts = np.empty(rounds)
    for r in range(rounds):
        idx = rng.integers(0, n, n)
        m = pair_metrics(scores[idx], strong[idx], weak[idx])
        apgrs[r], cpts[r] = m.apgr, m.cpt50
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return BootstrapResult(
        pair_metrics(scores, strong, weak),
        (float(np.percentile(apgrs, lo)), float(np.percentile(apgrs, hi))),
        (float(np.percentile(cpts, lo)), float(np.percentile(cpts, hi))),
    )
