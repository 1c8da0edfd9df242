"""The clustered pass-rate interval covers the true rate about 95% of the time over few
cases with repeats (cases of different difficulty, simulated): it covered 91.2% over 8
cases x 5 repeats before the CR1 small-sample factor G / (G - 1), 92.8% with it."""

from __future__ import annotations

import numpy as np
import pytest

from laneway.evals import clustered_interval, wilson_interval


def _coverage(cases: int, repeats: int, a: float, b: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    true, hits, sims = a / (a + b), 0, 3000
    for _ in range(sims):
        passed = rng.binomial(repeats, rng.beta(a, b, cases))
        low, high = clustered_interval([(int(c), repeats) for c in passed])
        hits += low <= true <= high
    return hits / sims


def test_the_interval_covers_over_few_cases() -> None:
    assert _coverage(8, 5, 2.0, 1.0, seed=5) >= 0.92  # 0.912 with CR0
    assert _coverage(40, 5, 2.0, 1.0, seed=5) >= 0.94


def test_the_small_sample_factor() -> None:
    # 4 cases of 5 repeats, p = 0.5: CR0 variance 0.0325, CR1 0.0433, deff 3.47, n_eff 5.8.
    per_case = [(5, 5), (3, 5), (2, 5), (0, 5)]
    p, total, groups = 0.5, 20, 4
    robust = sum((c - p * n) ** 2 for c, n in per_case) / total**2 * groups / (groups - 1)
    n_eff = total / (robust / (p * (1 - p) / total))
    assert clustered_interval(per_case) == pytest.approx(wilson_interval(p * n_eff, n_eff))
