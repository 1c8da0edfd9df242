from __future__ import annotations

import numpy as np
import pytest

from laneway.router import bootstrap, pair_metrics, pgr_curve


def synthetic(n: int, p_gain: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weak = (rng.random(n) < 0.5).astype(float)
    gain = (weak == 0) & (rng.random(n) < p_gain * 2)
    strong = np.where(gain, 1.0, weak)
    return strong, weak


def test_oracle_apgr_is_one_minus_half_the_gain_share() -> None:
    strong, weak = synthetic(4000, 0.02)
    share = float(np.mean(strong > weak))
    m = pair_metrics(strong - weak, strong, weak)
    assert m.apgr == pytest.approx(1 - share / 2, abs=1e-3)
    assert m.apgr > 0.97
    assert m.cpt50 == pytest.approx(share / 2, abs=1e-3)
    assert m.cpt80 == pytest.approx(share * 0.8, abs=1e-3)


def test_constant_score_is_exactly_random() -> None:
    strong, weak = synthetic(1000, 0.3)
    m = pair_metrics(np.zeros(1000), strong, weak)
    assert m.apgr == pytest.approx(0.5, abs=1e-9)
    assert m.cpt50 == pytest.approx(0.5, abs=1e-3)


def test_random_scores_average_a_half() -> None:
    strong, weak = synthetic(3000, 0.3)
    rng = np.random.default_rng(1)
    apgrs = [pair_metrics(rng.random(3000), strong, weak).apgr for _ in range(20)]
    assert float(np.mean(apgrs)) == pytest.approx(0.5, abs=0.02)


def test_pgr_curve_ends_at_zero_and_one() -> None:
    strong, weak = synthetic(500, 0.3)
    curve = pgr_curve(np.arange(500.0), strong, weak)
    assert curve[0] == 0.0
    assert curve[-1] == pytest.approx(1.0)
    assert len(curve) == 501


def test_bootstrap_interval_contains_the_estimate() -> None:
    strong, weak = synthetic(800, 0.3)
    score = (strong - weak) + np.random.default_rng(2).normal(0, 1.0, 800)
    result = bootstrap(score, strong, weak, rounds=200)
    assert result.apgr_ci[0] <= result.value.apgr <= result.apgr_ci[1]
    assert result.apgr_ci[0] > 0.5
    assert result.cpt50_ci[0] <= result.value.cpt50 <= result.cpt50_ci[1]
