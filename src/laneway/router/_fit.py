"""Training a scorer from outcome rows (numpy only; no scikit-learn needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from laneway.errors import InvalidRequest
from laneway.router._conversation import Conversation
from laneway.router._features import StaticEmbedder, structural_features
from laneway.router._linear import LinearHeads
from laneway.router._scorer import Scorer
from laneway.router._tasks import DEFAULT_SHRINKAGE, TaskOffsets
from laneway.router._training import targets_for, tiers_with_data
from laneway.router._verifier import VERIFIER_L2, Verifier, verifier_examples

__all__ = ["DEFAULT_L2", "feature_matrix", "length_prior_weights", "train_scorer"]

# Chosen on held-out MMLU-Pro categories (model card, "Experiments"): strong
# shrinkage keeps topic words from standing in for difficulty on unseen subjects.
DEFAULT_L2 = 3000.0
# Index of log(conversation chars) in the structural signals.
_LENGTH = 0


def length_prior_weights(features: int, heads: int, prior: float) -> npt.NDArray[np.float64]:
    """The centre of the heads' L2 penalty (features × heads, standardised features):
    zero but for the length coefficient of tier ``t`` of ``T`` (cheapest first),
    ``prior · (t / (T − 1) − ½)``. A prior that the expected gain of escalating grows
    with prompt length by ``prior`` logits per standard deviation between the cheapest
    and the strongest tier; the data move the coefficients away from it as the L2
    penalty allows (the other weights and the biases are refitted around it, so the
    tier estimates stay calibrated on the training rows). Within an exam category the
    text signals rank worse than length on categories never trained on (model card,
    "Transfer"); the prior keeps the gain from ranking below length there."""
    centre = np.zeros((features, heads))
    if heads > 1:
        centre[_LENGTH] = prior * np.linspace(-0.5, 0.5, heads)
    return centre


def feature_matrix(
    convs: Sequence[Conversation], embedder: StaticEmbedder | None, use_embedding: bool
) -> npt.NDArray[np.float64]:
    structural = np.array([structural_features(c) for c in convs], dtype=np.float64)
    if not use_embedding or embedder is None:
        return structural
    emb = np.stack([embedder.embed(c) for c in convs]).astype(np.float64)
    return np.hstack([structural, emb])


def train_scorer(
    rows: Sequence[Mapping[str, Any]],
    tiers: Sequence[str],
    tier_models: Mapping[str, Sequence[str]],
    embedder: StaticEmbedder | None,
    *,
    use_embedding: bool = True,
    l2: float = DEFAULT_L2,
    shrinkage: float = DEFAULT_SHRINKAGE,
    verifier: bool = True,
    length_prior: float = 0.0,
    features: npt.NDArray[np.float64] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Scorer:
    """Fit one logistic head per tier on ``rows`` (its L2 penalty centred on the
    ``length_prior``: :func:`length_prior_weights`), then the per-task offsets, then
    (when rows carry ``answers`` and ``verifier``) the answer verifier.

    Each row has ``conversation`` and ``outcomes`` and may have a ``weight``
    (default 1), a ``task`` and ``answers``; models not mapped to a tier are ignored.
    ``features``: the rows' :func:`feature_matrix`, when the caller has it already.
    """
    if len(rows) < 10:
        raise InvalidRequest("need at least 10 outcome rows to train a router")
    if use_embedding and embedder is None:
        raise InvalidRequest("use_embedding needs an embedder")
    present = {m for r in rows for m in r["outcomes"]}
    trained = tiers_with_data(tiers, tier_models, present)
    try:
        targets = targets_for(rows, tier_models, tiers)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    if features is None:
        x = feature_matrix([r["conversation"] for r in rows], embedder, use_embedding)
    else:
        x = np.asarray(features, dtype=np.float64)
        if x.shape[0] != len(rows):
            raise InvalidRequest("features must have one row per outcome row")
    weights = np.array([float(r.get("weight", 1.0)) for r in rows], dtype=np.float64)
    _check_trainable(targets, weights)
    prior = length_prior * _length_spread(x[:, _LENGTH], weights)
    centre = length_prior_weights(x.shape[1], len(tiers), prior)
    heads = LinearHeads.fit(x, targets, l2, weights, prior=centre)
    logits = ((x - heads.mean) / heads.scale) @ heads.weights + heads.bias
    row_tasks = [_task_of(r) for r in rows]
    tasks = TaskOffsets.fit(logits, targets, weights, row_tasks, shrinkage)
    checker = None
    examples = 0
    if verifier and any(r.get("answers") for r in rows):
        vx, vy, vw, vt = verifier_examples(rows, tiers, tier_models)
        checker = Verifier.fit(vx, vy, vw, vt, l2=VERIFIER_L2, shrinkage=shrinkage)
        examples = len(vy)
    info = dict(meta or {})
    info.update(
        trained_tiers=trained,
        train_rows=len(rows),
        l2=l2,
        length_prior=length_prior,
        length_prior_applied=prior,
        task_shrinkage=shrinkage,
        verifier_examples=examples,
    )
    return Scorer(
        tuple(tiers),
        {t: tuple(tier_models.get(t, ())) for t in tiers},
        use_embedding,
        embedder if use_embedding else None,
        heads,
        tasks,
        checker,
        info,
    )


# The prior is per standard deviation of log prompt length, but never more than this many
# of those per e-fold of length: templated prompts a few characters apart (a deviation of
# 0.01) would otherwise turn a 1% difference in length into a logit. The shipped data's
# deviation is 0.94, so its router is unchanged.
_MIN_LENGTH_SD = 0.5


def _length_spread(length: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> float:
    """The share of the length prior that applies: 1, or less where log length varies by
    under :data:`_MIN_LENGTH_SD` over the training rows."""
    mean = np.average(length, weights=weights)
    sd = float(np.sqrt(np.average((length - mean) ** 2, weights=weights)))
    return min(1.0, sd / _MIN_LENGTH_SD)


def _check_trainable(targets: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> None:
    """At least 10 rows with an outcome of a mapped model, and weight on them: a row
    without one says nothing to any head (the fit would run on nothing, or divide by
    zero)."""
    usable = np.isfinite(targets).any(axis=1)
    if int(usable.sum()) < 10:
        raise InvalidRequest(
            f"only {int(usable.sum())} of {len(targets)} rows have an outcome of a model "
            "mapped to a tier: need at least 10 to train a router"
        )
    if not (np.isfinite(weights).all() and (weights >= 0).all() and weights[usable].sum() > 0):
        raise InvalidRequest("row weights must be finite, non-negative and not all zero")


def _task_of(row: Mapping[str, Any]) -> str | None:
    task = row.get("task")
    return task if isinstance(task, str) and task else None
