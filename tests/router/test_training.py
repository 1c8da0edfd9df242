from __future__ import annotations

import math

import numpy as np
import pytest

from laneway.router import load_router
from laneway.router._training import DEFAULT_TIER_MODELS, DEFAULT_TIERS, targets_for

TIER_MODELS = {"cheap": ("a", "b"), "mid": ("c",), "top": ("d", "e")}
TIERS = ("cheap", "mid", "top")


def test_score_target_is_one_minus_mean_of_tier_means() -> None:
    rows = [
        {"outcomes": {"a": 1, "b": 0, "c": 1, "d": 1, "e": 1}},  # tiers 0.5, 1, 1
        {"outcomes": {"a": 0, "b": 0, "c": 0, "d": 1, "e": 0}},  # tiers 0, 0, 0.5
        {"outcomes": {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}},
    ]
    y = targets_for(rows, TIER_MODELS, TIERS)
    assert y[:, :3].tolist() == [[0.5, 1.0, 1.0], [0.0, 0.0, 0.5], [1.0, 1.0, 1.0]]
    assert y[:, -1] == pytest.approx([1 - 2.5 / 3, 1 - 0.5 / 3, 0.0])


def test_score_target_uses_only_tiers_with_outcomes() -> None:
    rows = [
        {"outcomes": {"a": 0, "d": 1}},  # mid tier missing: mean of cheap and top only
        {"outcomes": {"a": 1, "b": 1, "c": 0, "d": 0, "e": 0}},
    ]
    y = targets_for(rows, TIER_MODELS, TIERS)
    assert math.isnan(y[0, 1])
    assert y[0, -1] == pytest.approx(0.5)
    assert y[1, -1] == pytest.approx(1 - 1 / 3)


def test_rubric_grades_become_evenly_spaced_difficulty() -> None:
    """A prompt graded g (cheapest tier that answers well) has difficulty (g - 1) / 4."""
    rows = []
    for grade in range(1, 5):
        outcomes = {
            m: 1.0 if i >= grade - 1 else 0.0
            for i, t in enumerate(DEFAULT_TIERS)
            for m in DEFAULT_TIER_MODELS[t]
        }
        rows.append({"outcomes": outcomes})
    y = targets_for(rows, DEFAULT_TIER_MODELS, DEFAULT_TIERS)
    assert y[:, -1] == pytest.approx([0.0, 0.25, 0.5, 0.75])


def test_one_tier_only_is_rejected() -> None:
    with pytest.raises(ValueError, match="fewer than two tiers"):
        targets_for([{"outcomes": {"a": 1}}], TIER_MODELS, TIERS)


def test_shipped_score_orders_chat_below_proofs() -> None:
    router = load_router()
    scores = [
        router.route([{"role": "user", "content": p}]).score
        for p in (
            "hi! what's a good name for a cat?",
            "What is the capital of Italy?",
            "Prove that the square root of 2 is irrational.",
            "Design a Byzantine fault tolerant consensus protocol for 7 nodes and prove "
            "its safety and liveness invariants.",
        )
    ]
    assert scores == sorted(scores)
    assert np.all(np.diff(scores) > 0.02)
