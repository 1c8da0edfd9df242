"""The learned answer verifier of a cascade: (prompt, cheap answer) → escalate or not.

It reads the prompt's structural signals and the cheap answer's signals
(``_answer_features``) and estimates, with two logistic heads and per-task offsets,
P(the cheap answer is good) and P(the strongest tier answers well). The escalation
probability is their difference, clipped to [0, 1]: the expected gain of asking the
strong tier after seeing the cheap answer. ``fit`` learns it from outcome rows
carrying answers (``"answers": {model: text}`` beside ``"outcomes"``): every answer of
a model below the strongest tier is one example. Numpy only at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from laneway.errors import InvalidRequest
from laneway.router._answer_features import ANSWER_FEATURE_NAMES, answer_features
from laneway.router._conversation import Conversation
from laneway.router._features import structural_features
from laneway.router._linear import LinearHeads, sigmoid
from laneway.router._tasks import DEFAULT_SHRINKAGE, TaskOffsets

__all__ = ["VERIFIER_L2", "Verdict", "Verifier", "verifier_examples"]

FloatArray = npt.NDArray[np.float64]

# Chosen on the answers data's train half (benchmarks/router_v2.py): 30-300 tie,
# 3,000 loses ~0.02 APGR.
VERIFIER_L2 = 300.0


@dataclass(frozen=True, slots=True)
class Verdict:
    answer_ok: float  # P(the cheap answer is good)
    strong_ok: float  # P(the strongest tier answers well), knowing the cheap answer
    escalation: float  # max(0, strong_ok - answer_ok)


def _features(conv: Conversation, answer: str) -> FloatArray:
    return np.asarray(
        structural_features(conv) + answer_features(answer, conv.last_user, conv.total_chars),
        dtype=np.float64,
    )


@dataclass(frozen=True, slots=True)
class Verifier:
    heads: LinearHeads  # two heads: answer_ok, strong_ok
    tasks: TaskOffsets

    def judge(self, conv: Conversation, answer: str, task: str | None = None) -> Verdict:
        z = ((_features(conv, answer) - self.heads.mean) / self.heads.scale) @ self.heads.weights
        z = z + self.heads.bias
        offset = self.tasks.get(task)
        if offset is not None:
            z = z + offset
        p = sigmoid(z)
        ok, strong = float(p[0]), float(p[1])
        return Verdict(ok, strong, min(max(strong - ok, 0.0), 1.0))

    def escalation_matrix(self, x: FloatArray, tasks: Sequence[str | None]) -> FloatArray:
        """Expected gains for a feature matrix (benchmarks, calibration)."""
        z = ((x - self.heads.mean) / self.heads.scale) @ self.heads.weights + self.heads.bias
        p = sigmoid(z + self.tasks.for_rows(tasks))
        return np.asarray(p[:, 1] - p[:, 0], dtype=np.float64)

    @staticmethod
    def feature_row(conv: Conversation, answer: str) -> FloatArray:
        return _features(conv, answer)

    @classmethod
    def fit(
        cls,
        x: FloatArray,
        targets: FloatArray,
        weights: FloatArray,
        tasks: Sequence[str | None],
        *,
        l2: float = VERIFIER_L2,
        shrinkage: float = DEFAULT_SHRINKAGE,
    ) -> Verifier:
        heads = LinearHeads.fit(x, targets, l2, weights)
        logits = ((x - heads.mean) / heads.scale) @ heads.weights + heads.bias
        return cls(heads, TaskOffsets.fit(logits, targets, weights, tasks, shrinkage))

    def to_arrays(self) -> dict[str, Any]:
        arrays: dict[str, Any] = dict(self.heads.to_arrays("verifier_"))
        arrays["verifier_task_offsets"] = self.tasks.offsets
        arrays["verifier_task_counts"] = np.asarray(self.tasks.counts, dtype=np.float64)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], task_names: Sequence[str]) -> Verifier:
        heads = LinearHeads.from_arrays(dict(arrays), "verifier_")
        expected = len(ANSWER_FEATURE_NAMES)
        if heads.weights.shape[1] != 2 or len(heads.mean) < expected:
            raise ValueError("verifier arrays have the wrong shape")
        offsets = np.asarray(arrays["verifier_task_offsets"], dtype=np.float64)
        counts = tuple(float(c) for c in arrays["verifier_task_counts"])
        return cls(heads, TaskOffsets(tuple(task_names), offsets.reshape(-1, 2), counts))


def verifier_examples(
    rows: Sequence[Mapping[str, Any]],
    tiers: Sequence[str],
    tier_models: Mapping[str, Sequence[str]],
) -> tuple[FloatArray, FloatArray, FloatArray, list[str | None]]:
    """(features, targets, weights, tasks): one example per answer of a model mapped
    to a tier below the strongest, with targets (its own outcome, the strongest tier's
    mean outcome — NaN when the row has none)."""
    strongest = set(tier_models.get(tiers[-1], ()))
    cheap = {m for t in tiers[:-1] for m in tier_models.get(t, ())}
    feats: list[FloatArray] = []
    targets: list[tuple[float, float]] = []
    weights: list[float] = []
    tasks: list[str | None] = []
    for row in rows:
        answers: Mapping[str, str] = row.get("answers") or {}
        outcomes: Mapping[str, float] = row["outcomes"]
        top = [outcomes[m] for m in strongest if m in outcomes]
        strong = float(np.mean(top)) if top else float("nan")
        for model, text in answers.items():
            if model not in cheap or model not in outcomes or not isinstance(text, str):
                continue
            feats.append(_features(row["conversation"], text))
            targets.append((float(outcomes[model]), strong))
            weights.append(float(row.get("weight", 1.0)))
            tasks.append(row.get("task"))
    if len(feats) < 10 or not sum(weights) > 0:
        seen = sorted({m for row in rows for m in (row.get("answers") or {})})
        named = ", ".join(seen[:5]) + (f" … ({len(seen)} models)" if len(seen) > 5 else "")
        raise InvalidRequest(
            f"need at least 10 answers (of positive weight) of models below the strongest "
            f"tier, with their outcomes, to train a verifier; found {len(feats)} (answers "
            f"given by: {named or 'none'}; below the strongest tier: "
            f"{', '.join(sorted(cheap)[:5]) or 'none'}{' …' if len(cheap) > 5 else ''}; "
            "or train without one: --no-verifier)"
        )
    return np.stack(feats), np.array(targets), np.array(weights), tasks
