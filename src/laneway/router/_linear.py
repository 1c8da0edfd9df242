"""Multi-head logistic regression in numpy: the router's scorer and its trainer.

Each head is an independent L2-regularised logistic regression on standardised
features, fitted to *soft* labels in [0, 1] (a tier's mean outcome, a pairwise win
rate) by Newton's method, which is exact, deterministic and needs no extra
dependency. Prediction is one matrix-vector product and a sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["LinearHeads", "fit_logistic", "sigmoid"]

FloatArray = npt.NDArray[np.float64]


def sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), dtype=np.float64)


def fit_logistic(
    x: FloatArray,
    y: FloatArray,
    l2: float,
    *,
    sample_weight: FloatArray | None = None,
    offset: FloatArray | None = None,
    max_iter: int = 50,
    tol: float = 1e-7,
) -> tuple[FloatArray, float]:
    """(weights, bias) minimising weighted cross-entropy to soft labels + ``l2``/2·|w|²/n;
    ``offset`` (one logit per row) is added to the linear predictor and not fitted."""
    n, d = x.shape
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=np.float64)
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    total = max(float(sw.sum()), 1e-12)
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2 / total)
    reg[-1] = 0.0
    for _ in range(max_iter):
        p = sigmoid(xb @ w + off)
        grad = xb.T @ (sw * (p - y)) / total + reg * w
        hess = (xb * (sw * p * (1.0 - p))[:, None]).T @ xb / total + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.max(np.abs(step))) < tol:
            break
    return w[:-1].copy(), float(w[-1])


@dataclass(frozen=True, slots=True)
class LinearHeads:
    """Standardise, then one logistic head per output column."""

    mean: FloatArray
    scale: FloatArray
    weights: FloatArray  # (features, heads)
    bias: FloatArray  # (heads,)

    @classmethod
    def fit(
        cls,
        x: FloatArray,
        targets: FloatArray,
        l2: float,
        sample_weight: FloatArray | None = None,
        prior: FloatArray | None = None,
    ) -> LinearHeads:
        """Fit every head; ``sample_weight`` weighs rows (standardisation included).

        ``prior`` (features × heads, on standardised features) is the centre of the L2
        penalty: the weights fitted are ``prior`` + a penalised deviation."""
        sw = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        mean = np.average(x, axis=0, weights=sw)
        scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=sw))
        scale = np.where(scale > 1e-8, scale, 1.0)
        xs = (x - mean) / scale
        cols = []
        for j in range(targets.shape[1]):
            known = np.isfinite(targets[:, j])
            y = np.where(known, targets[:, j], 0.0)
            off = None if prior is None else xs @ prior[:, j]
            cols.append(fit_logistic(xs, y, l2, sample_weight=known * sw, offset=off))
        weights = np.stack([c[0] for c in cols], axis=1)
        if prior is not None:
            weights = weights + prior
        bias = np.array([c[1] for c in cols])
        return cls(mean, scale, weights, bias)

    def predict(self, x: FloatArray) -> FloatArray:
        """Probabilities, shape ``(heads,)`` for one row or ``(n, heads)`` for a matrix."""
        return sigmoid(((x - self.mean) / self.scale) @ self.weights + self.bias)

    def to_arrays(self, prefix: str) -> dict[str, FloatArray]:
        return {
            f"{prefix}mean": self.mean,
            f"{prefix}scale": self.scale,
            f"{prefix}weights": self.weights,
            f"{prefix}bias": self.bias,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, FloatArray], prefix: str) -> LinearHeads:
        return cls(
            np.asarray(arrays[f"{prefix}mean"], dtype=np.float64),
            np.asarray(arrays[f"{prefix}scale"], dtype=np.float64),
            np.asarray(arrays[f"{prefix}weights"], dtype=np.float64),
            np.asarray(arrays[f"{prefix}bias"], dtype=np.float64),
        )
