"""Per-task effects: a logit offset per (task, head), shrunk toward the text model.

The text model's logit ``z`` for a row is fixed; for each task its offset ``b``
minimises the task's weighted cross-entropy of ``sigmoid(z + b)`` plus
``shrinkage / 2 · b²`` (a Gaussian prior centred on the text model). A task with a
handful of rows barely moves; one with hundreds takes its own level. A task never
seen in training gets no offset: the text model alone decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from laneway.router._linear import sigmoid

__all__ = ["DEFAULT_SHRINKAGE", "TaskOffsets"]

FloatArray = npt.NDArray[np.float64]

# Pseudo-rows of prior weight on the text model. Chosen among 1 / 10 / 100 / 1,000 by
# an inner split of the MMLU-Pro train half (never its test half): 100 was best for
# three of four pairs (1,000 for the fourth, 0.002 APGR ahead of 100).
DEFAULT_SHRINKAGE = 100.0


def _offset(z: FloatArray, y: FloatArray, w: FloatArray, shrinkage: float) -> float:
    b = 0.0
    for _ in range(50):
        p = sigmoid(z + b)
        grad = float(np.sum(w * (p - y))) + shrinkage * b
        hess = float(np.sum(w * p * (1.0 - p))) + shrinkage
        step = grad / hess
        b -= step
        if abs(step) < 1e-9:
            break
    return b


@dataclass(frozen=True, slots=True)
class TaskOffsets:
    """``offsets[i, j]``: the logit offset of task ``names[i]`` for head ``j``."""

    names: tuple[str, ...]
    offsets: FloatArray  # (tasks, heads)
    counts: tuple[float, ...]  # training weight per task
    _where: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_where", {n: i for i, n in enumerate(self.names)})

    def get(self, task: str | None) -> FloatArray | None:
        """The offsets of ``task`` (``None`` when unknown or not given)."""
        i = self._where.get(task) if task is not None else None
        return None if i is None else self.offsets[i]

    @classmethod
    def empty(cls, heads: int) -> TaskOffsets:
        return cls((), np.zeros((0, heads)), ())

    @classmethod
    def fit(
        cls,
        logits: FloatArray,
        targets: FloatArray,
        weights: FloatArray,
        tasks: Sequence[str | None],
        shrinkage: float = DEFAULT_SHRINKAGE,
    ) -> TaskOffsets:
        """Offsets for every task in ``tasks`` (rows with no task are skipped);
        NaN targets are missing and do not count."""
        labels = np.array([t if t is not None else "" for t in tasks], dtype=object)
        names = sorted({t for t in tasks if t})
        heads = logits.shape[1]
        offsets = np.zeros((len(names), heads))
        counts: list[float] = []
        for i, name in enumerate(names):
            rows = labels == name
            counts.append(float(weights[rows].sum()))
            for j in range(heads):
                y = targets[rows, j]
                known = np.isfinite(y)
                if not known.any():
                    continue
                offsets[i, j] = _offset(
                    logits[rows, j][known], y[known], weights[rows][known], shrinkage
                )
        return cls(tuple(names), offsets, tuple(counts))

    def for_rows(self, tasks: Sequence[str | None]) -> FloatArray:
        """Offsets per row, shape ``(rows, heads)`` (zero for unknown or no task)."""
        out = np.zeros((len(tasks), self.offsets.shape[1]))
        for r, task in enumerate(tasks):
            found = self.get(task)
            if found is not None:
                out[r] = found
        return out
