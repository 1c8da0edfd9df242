"""Item response models on the MMLU-Pro outcome matrix (numpy only).

``fit_2pl`` fits P(model j right on item i) = σ(a_i (θ_j − b_i)) by alternating
Newton steps (MAP: N(0, 1) prior on θ, N(0, s_b²) on b, log-normal on a so items that
every model gets right or wrong stay finite). ``a_i = 1`` everywhere gives Rasch.
Used by ``exp_targets.py`` to turn 11 noisy 0/1 outcomes per question into a
denoised difficulty and an implied frontier-vs-simple gain.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_2pl", "implied_gain"]


def _sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def fit_2pl(outc, *, rasch=False, iters=200, sb=2.0, sa=0.5, theta=None):
    """(a, b, theta) for an items × models 0/1 matrix; ``theta`` fixed when given."""
    n, m = outc.shape
    fixed = theta is not None
    th = np.zeros(m) if theta is None else np.asarray(theta, float).copy()
    b = np.zeros(n)
    la = np.zeros(n)  # log a
    for _ in range(iters):
        a = np.exp(la)
        # b step (Newton, per item, vectorised)
        p = _sig(a[:, None] * (th[None, :] - b[:, None]))
        g = ((outc - p) * a[:, None]).sum(1) + b / sb**2
        h = (p * (1 - p) * a[:, None] ** 2).sum(1) + 1 / sb**2
        b -= np.clip(g / h, -1, 1)
        if not rasch:
            p = _sig(a[:, None] * (th[None, :] - b[:, None]))
            u = th[None, :] - b[:, None]
            # d/d la: a * u * (outc - p)
            g = -((outc - p) * u).sum(1) * a + la / sa**2
            h = (p * (1 - p) * u**2).sum(1) * a**2 + 1 / sa**2
            la -= np.clip(g / h, -1, 1)
            a = np.exp(la)
        if not fixed:
            p = _sig(a[:, None] * (th[None, :] - b[:, None]))
            g = -((outc - p) * a[:, None]).sum(0) + th
            h = (p * (1 - p) * a[:, None] ** 2).sum(0) + 1
            th -= np.clip(g / h, -0.5, 0.5)
            th -= th.mean()
    return np.exp(la), b, th


def implied_gain(a, b, th, strong_idx, weak_idx):
    """Mean over (strong, weak) model pairs of P(strong right) − P(weak right)."""
    ps = _sig(a[:, None] * (th[None, strong_idx] - b[:, None])).mean(1)
    pw = _sig(a[:, None] * (th[None, weak_idx] - b[:, None])).mean(1)
    return ps - pw
