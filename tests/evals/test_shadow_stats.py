"""Shadow report statistics: a 10-point drop at n = 400 (80% -> 70% correct) is flagged
with p < 0.01 and fails the non-inferiority gate; an identical candidate passes it;
latency counts failed calls, an unknown price makes the cost unknown, rates are paired."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from laneway.evals._shadow_stats import ShadowPair, non_inferiority, shadow_report

N = 400


def _planted(primary_wrong: range, candidate_wrong: range) -> list[ShadowPair]:
    """Fakes of known quality: each side wrong on exactly the given requests."""
    prim = np.array([i not in primary_wrong for i in range(N)])
    cand = np.array([i not in candidate_wrong for i in range(N)])
    return _build(prim, cand)


def _pairs(p_primary: float, p_candidate: float, seed: int, same: bool = False) -> list[ShadowPair]:
    rng = np.random.default_rng(seed)
    prim = rng.random(N) < p_primary
    cand = prim.copy() if same else rng.random(N) < p_candidate
    return _build(prim, cand)


def _build(prim: np.ndarray, cand: np.ndarray) -> list[ShadowPair]:
    return [
        ShadowPair(
            primary_latency_ms=100.0,
            candidate_latency_ms=80.0,
            primary_output="ok",
            candidate_output="ok",
            primary_cost_usd=Decimal("0.001"),
            candidate_cost_usd=Decimal("0.0002"),
            primary_passed=bool(a),
            candidate_passed=bool(b),
        )
        for a, b in zip(prim, cand, strict=True)
    ]


def test_a_ten_point_drop_is_flagged_and_fails_the_gate() -> None:
    # 80% vs 70% right, errors overlapping as independent ones would on average (24 both
    # wrong): the candidate loses 96 requests the primary got right and wins 56.
    report = shadow_report(_planted(range(0, 80), range(56, 176)), margin=0.05, alpha=0.05)
    assert report.quality is not None
    assert (report.quality.worse, report.quality.better) == (96, 56)
    assert report.quality.p_value < 0.01
    assert report.quality.delta == pytest.approx(-0.1)
    assert report.passed is False
    gate = report.gates[0]
    assert gate.metric == "pass_rate" and not gate.passed
    assert gate.lower_bound < -0.05


def test_an_identical_candidate_passes_the_gate() -> None:
    report = shadow_report(_pairs(0.8, 0.8, seed=7, same=True), margin=0.05)
    assert report.quality is not None and report.quality.p_value == 1.0
    assert report.passed is True
    assert report.primary.cost_usd == Decimal("0.400")
    assert report.candidate.cost_usd == Decimal("0.0800")


def test_an_equally_good_but_different_candidate_passes_at_a_wide_margin() -> None:
    report = shadow_report(_pairs(0.8, 0.8, seed=11), margin=0.10)
    assert report.passed is True
    strict = shadow_report(_pairs(0.8, 0.8, seed=11), margin=0.0)
    assert strict.passed is False  # a margin of 0 is superiority: not shown


def test_sides_rates_and_judge() -> None:
    pairs = [
        ShadowPair(100.0, 30_000.0, "fine", None, Decimal("0.01"), None),  # candidate timed out
        ShadowPair(100.0, 90.0, "fine", "I'm sorry, I can't help with that.", verdict="primary"),
        ShadowPair(100.0, 90.0, "fine", "", verdict="primary"),
        ShadowPair(100.0, 90.0, "fine", "fine", verdict="tie"),
    ] * 10
    report = shadow_report(pairs, margin=0.1)
    assert report.candidate.latency_p95_ms == pytest.approx(30_000.0)
    assert report.candidate.cost_usd is None  # unknown price: unknown, not 0
    assert report.primary.cost_usd is None
    rates = {r.name: r for r in report.rates}
    assert rates["failed"].candidate == pytest.approx(0.25) and rates["failed"].primary == 0.0
    assert rates["refusal"].candidate == pytest.approx(1 / 3) and rates["refusal"].n == 30
    assert rates["empty"].candidate == pytest.approx(1 / 3)
    assert rates["failed"].test.worse == 10 and rates["failed"].test.p_value < 0.01
    assert report.judge is not None
    assert (report.judge.wins, report.judge.ties, report.judge.losses) == (0, 10, 20)
    assert report.judge.preference == pytest.approx(10 / 60)
    assert report.judge.p_value < 1e-5
    assert [g.metric for g in report.gates] == ["judge_preference"]
    assert report.passed is False


def test_too_few_pairs_never_pass() -> None:
    gate = non_inferiority([0.0] * 10, margin=0.5, metric="pass_rate")
    assert not gate.passed and "too few pairs" in gate.reason


@pytest.mark.parametrize(
    ("verdicts", "low", "high"),
    [
        (["candidate"] * 9, 0.70, 1.0),  # 9 of 9 is not certainty
        (["tie"] * 33, 0.33, 0.67),  # nor are 33 ties
        (["candidate"] * 150 + ["tie"] * 100 + ["primary"] * 150, 0.457, 0.543),
    ],
)
def test_the_preference_interval_is_never_of_zero_width(
    verdicts: list[str], low: float, high: float
) -> None:
    """With few pairs or one kind of verdict the interval stays honest (it was mean +- z*sd/
    sqrt(n): [100%, 100%] for 9 wins of 9); with many mixed ones it is the usual one."""
    pairs = [ShadowPair(100.0, 90.0, "a", "b", verdict=v) for v in verdicts]
    judge = shadow_report(pairs, margin=0.1).judge
    assert judge is not None
    assert judge.ci[0] == pytest.approx(low, abs=0.01)
    assert judge.ci[1] == pytest.approx(high, abs=0.01)
