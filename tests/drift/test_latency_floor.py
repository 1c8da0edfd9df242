"""Latency drift needs a median slower by 20% and by 25 ms: a canary against a fast
upstream on a busy machine (3 ms -> 8 ms, p = 0.004 with 30 calls) raised a latency
alarm that was the measuring machine's noise, not the provider's."""

from __future__ import annotations

import numpy as np

from laneway.evals._drift import DriftSample, detect_drift


def _sample(median_ms: float, seed: int) -> DriftSample:
    rng = np.random.default_rng(seed)
    latency = list(rng.normal(median_ms, median_ms * 0.05, 30))
    return DriftSample(latency_ms=latency, output_tokens=[5.0] * 30, calls=30, answers=30)


def _latency_alarm(base_ms: float, recent_ms: float) -> bool:
    report = detect_drift("t", "a", "b", _sample(base_ms, 1), _sample(recent_ms, 2))
    latency = next(s for s in report.signals if s.signal == "latency")
    assert latency.p_value is not None and latency.p_value < 1e-4  # always significant
    return latency.alarm


def test_a_few_milliseconds_slower_is_not_drift() -> None:
    assert not _latency_alarm(3.0, 8.0)  # 2.7x, +5 ms: it was an alarm
    assert not _latency_alarm(20.0, 40.0)  # doubled, +20 ms


def test_a_slower_model_is_still_drift() -> None:
    assert _latency_alarm(30.0, 60.0)  # doubled, +30 ms
    assert _latency_alarm(100.0, 200.0)
    assert not _latency_alarm(1000.0, 1100.0)  # +100 ms but only 10%
