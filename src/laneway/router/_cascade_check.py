"""The held-out check of a router's answer verifier: a cascade from the cheapest tier.

One example per held-out row and model of the router's cheapest trained tier that has
both an answer and an outcome there (and the row an outcome of the strongest tier): the
cheap model answered, and the question is which answers to escalate. Three orderings
of the examples are ranked by APGR of the strongest tier over that cheap model, with
paired bootstrap intervals (a prompt's examples are resampled together): the
verifier's escalation probability (it reads the answer), the router's gain score (it
sees the prompt only: pre-routing) and prompt length. The same refusals as the router's
check apply (too few examples where the outcomes differ, a strongest tier not better
on average).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from laneway.errors import InvalidRequest
from laneway.router._promote import HeldOutCheck, _check_comparable, compare, gain_scores
from laneway.router._scorer import Scorer
from laneway.router._training import targets_for

__all__ = ["cascade_check"]

FloatArray = npt.NDArray[np.float64]


def _examples(
    scorer: Scorer, rows: Sequence[Mapping[str, Any]], cheap: str, top: str
) -> tuple[list[tuple[Mapping[str, Any], str]], FloatArray, FloatArray]:
    """(row, answer) per example, the cheap model's outcomes and the strongest tier's."""
    try:
        targets = targets_for(rows, scorer.tier_models, scorer.tiers)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    top_i = scorer.tiers.index(top)
    models = scorer.tier_models.get(cheap, ())
    pairs: list[tuple[Mapping[str, Any], str]] = []
    weak: list[float] = []
    strong: list[float] = []
    for row, target in zip(rows, targets[:, top_i], strict=True):
        answers: Mapping[str, Any] = row.get("answers") or {}
        for model in models:
            text, outcome = answers.get(model), row["outcomes"].get(model)
            if isinstance(text, str) and outcome is not None and np.isfinite(target):
                pairs.append((row, text))
                weak.append(float(outcome))
                strong.append(float(target))
    return pairs, np.array(weak), np.array(strong)


def cascade_check(
    scorer: Scorer, rows: Sequence[Mapping[str, Any]], *, rounds: int = 300
) -> HeldOutCheck:
    """The verifier against the gain score and length on ``rows``' cheap answers."""
    verifier = scorer.verifier
    trained = [t for t in scorer.tiers if t in scorer.meta.get("trained_tiers", scorer.tiers)]
    if verifier is None or len(trained) < 2:
        raise InvalidRequest("the router has no answer verifier")
    cheap, top = trained[0], trained[-1]
    pairs, weak, strong = _examples(scorer, rows, cheap, top)
    if not pairs:
        raise InvalidRequest(f"no held-out row carries an answer of a {cheap} model")
    _check_comparable(f"{cheap}'s answers", top, weak, strong)
    kept = [row for row, _ in pairs]
    scores = {
        "verifier": np.array(
            [verifier.judge(r["conversation"], a, r.get("task")).escalation for r, a in pairs]
        ),
        "gain": gain_scores(scorer, kept),
        "length": np.array([r["conversation"].total_chars for r in kept], dtype=np.float64),
    }
    return compare(scores, kept, strong, weak, (cheap, top), rounds, "cascade, held-out answers")
