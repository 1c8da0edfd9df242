from __future__ import annotations

import math

import numpy as np
import pytest

from laneway.router import load_router
from laneway.router._training import targets_for

TIER_MODELS = {"cheap": ("a", "b"), "mid": ("c",), "top": ("d", "e")}
TIERS = ("cheap", "mid", "top")


def test_targets_are_tier_means() -> None:
    rows = [
        {"outcomes": {"a": 1, "b": 0, "c": 1, "d": 1, "e": 1}},
        {"outcomes": {"a": 0, "b": 0, "c": 0, "d": 1, "e": 0}},
        {"outcomes": {"a": 0, "d": 1}},  # mid tier missing
    ]
    y = targets_for(rows, TIER_MODELS, TIERS)
    assert y.shape == (3, 3)  # no learned score column: the score is computed
    assert y[:2].tolist() == [[0.5, 1.0, 1.0], [0.0, 0.0, 0.5]]
    assert math.isnan(y[2, 1])
    assert y[2, 0] == 0.0 and y[2, 2] == 1.0


def test_one_tier_only_is_rejected() -> None:
    with pytest.raises(ValueError, match="fewer than two tiers"):
        targets_for([{"outcomes": {"a": 1}}], TIER_MODELS, TIERS)


def test_shipped_gain_orders_chat_below_proofs() -> None:
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
