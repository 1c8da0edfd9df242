"""Two guards for routers trained on a team's own data: the length prior never turns a few
characters of difference into a logit (templated prompts whose lengths barely vary), and a
calibrated profile's threshold sits midway between the calibration set's scores, so a
prompt scored a hair above the last one admitted is not sent the other way."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from laneway.router import Goal, conversation_from_prompt, train_scorer
from laneway.router._profiles import calibrate, choose_tiers

TIERS = ("cheap", "strong")
MAPPING = {"cheap": ("w",), "strong": ("s",)}


def _rows(prompts: list[str]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [
        {
            "conversation": conversation_from_prompt(p),
            "outcomes": {"w": float(rng.random() < 0.5), "s": 1.0},
        }
        for p in prompts
    ]


def test_the_length_prior_applies_in_full_only_where_lengths_vary() -> None:
    templated = _rows([f"Please look at this case and tell me what to do next. ({i})"
                       for i in range(300)])  # fmt: skip
    rng = np.random.default_rng(1)
    varied = _rows([" ".join(["word"] * int(rng.integers(2, 400))) for _ in range(300)])
    flat = train_scorer(templated, TIERS, MAPPING, None, use_embedding=False, length_prior=1.2)
    wide = train_scorer(varied, TIERS, MAPPING, None, use_embedding=False, length_prior=1.2)
    assert flat.meta["length_prior"] == 1.2 and wide.meta["length_prior"] == 1.2
    assert wide.meta["length_prior_applied"] == 1.2  # log length varies by over 0.5
    assert flat.meta["length_prior_applied"] < 0.05  # a few characters apart

    def gain(scorer: Any, text: str) -> float:
        est = scorer.predict(conversation_from_prompt(text))
        return float(est["strong"] - est["cheap"])

    # one character longer than any training prompt: the same request as far as the data
    # can tell, and its gain stays where theirs is
    near = gain(flat, "Please look at this case and tell me what to do next. (1000)")
    assert near == pytest.approx(
        gain(flat, "Please look at this case and tell me what to do next. (10)"), abs=0.02
    )


def _calibrated(losses: list[float]) -> tuple[float, np.ndarray[Any, Any]]:
    loss = np.array(losses)
    estimates = np.column_stack([1.0 - loss, np.ones_like(loss)])
    quality = np.column_stack([np.where(loss < 0.5, 1.0, 0.0), np.ones_like(loss)])
    profile = calibrate("p", TIERS, estimates, Goal(quality_floor=0.99), quality=quality)
    return profile.max_loss, choose_tiers(estimates[:, -1:] - estimates, profile.max_loss)


def test_the_threshold_is_midway_to_the_next_score_and_routes_the_set_the_same() -> None:
    losses = [0.34] * 50 + [0.65] * 50
    max_loss, chosen = _calibrated(losses)
    assert max_loss == pytest.approx((0.34 + 0.65) / 2)
    assert chosen.tolist() == [0] * 50 + [1] * 50  # as with the threshold at 0.34
    # a prompt scored a hair above the admitted ones goes where they go
    assert choose_tiers(np.array([[0.3427, 0.0]]), max_loss).tolist() == [0]
    assert choose_tiers(np.array([[0.65, 0.0]]), max_loss).tolist() == [1]


def test_with_nothing_above_the_threshold_stays_on_the_highest_score() -> None:
    max_loss, chosen = _calibrated([0.1] * 20 + [0.2] * 20)  # every row is cheap-ok
    assert max_loss == pytest.approx(0.2)
    assert chosen.tolist() == [0] * 40
