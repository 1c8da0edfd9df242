"""Statistics over cases: exact p-values, verdicts that do not depend on the repeat count,
intervals clustered by case, p-values never printed as 0, and the two-sample tests of
drift against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from laneway.evals import (
    clustered_interval,
    compare_runs,
    fisher_exact,
    format_p,
    mann_whitney,
    mcnemar,
    paired_test,
    sign_test,
    wilson_interval,
)
from tests.evals._runs import make_run, planted


def test_sign_test_never_returns_zero() -> None:
    # 2 * tail / 2**n is below the smallest float beyond ~1,075 one-sided pairs: it was 0.0.
    assert 0 < sign_test(1200, 0) < 1e-300
    assert 0 < sign_test(0, 5000) < 1e-300


def test_sign_test_exact_values() -> None:
    assert sign_test(4, 0) == pytest.approx(0.125)
    assert sign_test(5, 1) == pytest.approx(2 * 7 / 64)
    assert sign_test(0, 0) == 1.0
    assert sign_test(3, 3) == 1.0
    # Large n: exact integer arithmetic, no overflow, tiny but not 0.
    p = sign_test(1500, 1000)
    assert 0.0 < p < 1e-20


def test_mcnemar_is_exact_at_any_size() -> None:
    a = [True] * 30 + [False] * 10 + [True] * 160
    b = [False] * 30 + [True] * 10 + [True] * 160
    test = mcnemar(a, b)
    assert test.method == "mcnemar-exact"
    assert test.p_value == pytest.approx(2 * sum(math.comb(40, i) for i in range(11)) / 2**40)
    assert (test.worse, test.better) == (30, 10)


def test_four_lost_cases_are_p_0125_whatever_the_repeat_count() -> None:
    """The review's example: B loses 4 of 20 cases that A passes, wins none. Over cases
    that is an exact sign test, p = 0.125, with 1 repeat or 10 (the old paired bootstrap
    over repeats said p = 0.0002 and changed with the repeat count)."""
    for repeats in (1, 3, 10):
        base = make_run("a", {"m": planted(20, set(), repeats)})
        cand = make_run("b", {"m": planted(20, {0, 1, 2, 3}, repeats)})
        result = compare_runs(base, cand)
        assert result.test.p_value == pytest.approx(0.125), repeats
        assert result.test.method == "sign-test"
        assert result.test.n == 20
        assert not result.significantly_worse


def test_sign_flip_for_fractional_per_case_rates() -> None:
    # Per-case pass rates over 4 repeats: B is worse by 0.25 on 6 cases, better on none.
    a = [1.0] * 10
    b = [0.75] * 6 + [1.0] * 4
    test = paired_test(a, b)
    assert test.method == "sign-flip-exact"
    assert test.p_value == pytest.approx(2 / 2**6)  # both all-same-sign flips of 6
    assert test.delta == pytest.approx(-0.15)
    # Many non-zero differences: seeded Monte Carlo, (k + 1) / (R + 1) is never 0.
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.0, 300)
    y = np.clip(x - 0.2 + rng.normal(0, 0.01, 300), 0, 1)
    far = paired_test(list(x), list(y))
    assert far.method == "sign-flip"
    assert 0 < far.p_value <= 1 / 20_001 + 1e-12
    assert paired_test(list(x), list(y)).p_value == far.p_value  # reproducible
    noise = np.clip(x + rng.normal(0, 0.05, 300), 0, 1)
    assert paired_test(list(x), list(noise)).p_value > 0.05


def test_format_p_never_prints_zero() -> None:
    assert format_p(0.0) == "< 1e-4"
    assert format_p(3e-9) == "< 1e-4"
    assert format_p(0.00012) == "0.00012"
    assert format_p(0.031) == "0.031"
    assert format_p(0.125) == "0.12"
    assert format_p(1.0) == "1"


def test_clustered_interval_counts_cases_not_repeats() -> None:
    # One repeat: exactly Wilson's interval.
    per_case = [(1, 1)] * 8 + [(0, 1)] * 2
    assert clustered_interval(per_case) == pytest.approx(wilson_interval(8, 10))
    # Ten identical repeats of the same 10 cases say nothing more than the 10 cases:
    # the interval stays as wide as Wilson's over 10 (naive Wilson over 100 is far narrower).
    repeated = [(10, 10)] * 8 + [(0, 10)] * 2
    low, high = clustered_interval(repeated)
    naive_low, naive_high = wilson_interval(80, 100)
    assert (low, high) == pytest.approx(wilson_interval(8, 10))
    assert high - low > 1.8 * (naive_high - naive_low)
    # Independent-looking repeats (each case passes 8 of 10): close to naive Wilson.
    mixed = [(8, 10)] * 10
    assert clustered_interval(mixed) == pytest.approx(wilson_interval(80, 100))
    assert clustered_interval([]) == (0.0, 1.0)


def test_clustered_interval_when_every_call_passed_counts_cases() -> None:
    # 5 cases asked 6 times each, all passing (a deterministic model): as sure as 5
    # passes, not 30. It used to be Wilson's over 30 calls (88.6%-100%), narrower with
    # every repeat although repeats of a deterministic model add nothing.
    assert clustered_interval([(6, 6)] * 5) == pytest.approx(wilson_interval(5, 5))
    assert clustered_interval([(0, 6)] * 5) == pytest.approx(wilson_interval(0, 5))
    assert clustered_interval([(1, 1)] * 5) == pytest.approx(wilson_interval(5, 5))
    # Unequal repeats: the pooled rate weighs the case asked 4 times 4-fold, so the
    # effective count is 6² / (4² + 1 + 1) = 2 (Kish), not 3 cases nor 6 calls.
    assert clustered_interval([(4, 4), (1, 1), (1, 1)]) == pytest.approx(wilson_interval(2, 2))


def test_mann_whitney_known_values() -> None:
    # No overlap, 10 vs 10: U = 0; normal approximation p ~ 0.00018 (SciPy: 0.000183).
    base = list(range(10))
    recent = list(range(100, 110))
    test = mann_whitney(base, recent)
    assert test.p_value == pytest.approx(0.000183, rel=0.05)
    assert test.effect == 1.0
    same = mann_whitney(base, base)
    assert same.p_value == pytest.approx(1.0)
    assert same.effect == 0.5
    assert mann_whitney([], [1.0]).p_value == 1.0


def test_fisher_exact_known_values() -> None:
    # Fisher's tea-tasting table [[3, 1], [1, 3]]: two-sided p = 0.4857.
    assert fisher_exact(1, 4, 3, 4).p_value == pytest.approx(0.48571, abs=1e-4)
    # 2/100 vs 12/100: p = 0.010095 (summed with exact fractions).
    test = fisher_exact(2, 100, 12, 100)
    assert test.p_value == pytest.approx(0.0100947, rel=1e-4)
    assert test.effect == pytest.approx(0.10)
    assert fisher_exact(5, 50, 5, 50).p_value == pytest.approx(1.0)
    with pytest.raises(ValueError, match="between 0 and n"):
        fisher_exact(3, 2, 0, 1)


@pytest.mark.parametrize("repeats", [1, 3])
def test_a_a_false_alarms_stay_at_or_below_alpha(repeats: int) -> None:
    """Two runs of the same model (cases of varied difficulty, answers drawn anew):
    at alpha = 0.05 at most 5% of 400 simulated comparisons are flagged (seeded)."""
    rng = np.random.default_rng(11)
    flagged = 0
    for _ in range(400):
        p = rng.beta(3.2, 0.8, 200)
        a = (rng.random((200, repeats)) < p[:, None]).mean(axis=1)
        b = (rng.random((200, repeats)) < p[:, None]).mean(axis=1)
        flagged += paired_test(list(a), list(b), resamples=2_000).p_value < 0.05
    assert flagged / 400 <= 0.05
