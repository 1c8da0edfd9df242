"""Experiments: within-category (fixed-effects) fits, pairwise ranking loss, and
blending the router with prompt length.

    python scripts/router/exp_within.py [--rounds 0|1000]

All on the shipped 24 structural signals (+ optional rarity/form columns). The
fitters see the harness's training rows; category ids of MMLU-Pro training rows
come from ``info['train_mask']`` (varied rows form their own group).
"""

from __future__ import annotations

import argparse

import numpy as np
from exp_harness import evaluate, linear_fitter, load_all


def standardise(x, w):
    mu = np.average(x, axis=0, weights=w)
    sd = np.sqrt(np.average((x - mu) ** 2, axis=0, weights=w))
    sd = np.where(sd > 1e-8, sd, 1.0)
    return mu, sd


def groups_of(d, info, n_rows):
    g = np.full(n_rows, "varied", dtype=object)
    g[: info["n_mmlu"]] = d["cats"][info["train_mask"]]
    return g


def ridge_fitter(d, lam=3000.0, within=False, col=-1):
    def fit(x, y, w, info):
        mu, sd = standardise(x, w)
        xs = (x - mu) / sd
        t = y[:, col].copy()
        if within:
            g = groups_of(d, info, len(x))
            xs = xs.copy()
            for c in np.unique(g):
                m = g == c
                xs[m] -= np.average(xs[m], axis=0, weights=w[m])
                t[m] -= np.average(t[m], weights=w[m])
        a = (xs * w[:, None]).T @ xs + lam * np.eye(x.shape[1])
        beta = np.linalg.solve(a, (xs * w[:, None]).T @ (t - np.average(t, weights=w)))
        return lambda z: ((z - mu) / sd) @ beta

    return fit


def pairwise_fitter(d, lam=1.0, n_pairs=200_000, within=True, seed=0, col=-1):
    """Logistic loss on differences of sampled pairs (i, j) with target_i != target_j."""

    def fit(x, y, w, info):
        rng = np.random.default_rng(seed)
        mu, sd = standardise(x, w)
        xs = (x - mu) / sd
        t = y[:, col]
        g = groups_of(d, info, len(x)) if within else np.zeros(len(x), dtype=object)
        idx_i, idx_j = [], []
        uniq = np.unique(g)
        for c in uniq:
            m = np.flatnonzero(g == c)
            k = n_pairs // len(uniq)
            idx_i.append(rng.choice(m, k))
            idx_j.append(rng.choice(m, k))
        i, j = np.concatenate(idx_i), np.concatenate(idx_j)
        keep = t[i] != t[j]
        i, j = i[keep], j[keep]
        dx = xs[i] - xs[j]
        lab = (t[i] > t[j]).astype(float)
        pw = w[i] * w[j] * np.abs(t[i] - t[j])
        beta = np.zeros(x.shape[1])
        for _ in range(30):
            p = 0.5 * (1 + np.tanh(0.5 * dx @ beta))
            grad = dx.T @ (pw * (p - lab)) / pw.sum() + lam * beta / len(i)
            hess = (dx * (pw * p * (1 - p))[:, None]).T @ dx / pw.sum() + lam * np.eye(
                len(beta)
            ) / len(i)
            step = np.linalg.solve(hess, grad)
            beta -= step
            if np.abs(step).max() < 1e-7:
                break
        return lambda z: ((z - mu) / sd) @ beta

    return fit


def blend_fitter(base, alpha):
    """alpha · z(router) + (1 − alpha) · z(log chars) (column 0 of the features)."""

    def fit(x, y, w, info):
        pred = base(x, y, w, info)
        r_tr = pred(x)
        rm, rs = np.average(r_tr, weights=w), np.sqrt(np.cov(r_tr, aweights=w))
        lm, ls = np.average(x[:, 0], weights=w), np.sqrt(np.cov(x[:, 0], aweights=w))
        return lambda z: alpha * (pred(z) - rm) / rs + (1 - alpha) * (z[:, 0] - lm) / ls

    return fit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=0)
    r = ap.parse_args().rounds
    d = load_all()
    s, vs = d["s"], d["vs"]
    for lam in (300.0, 3000.0, 30000.0):
        evaluate(d, s, vs, ridge_fitter(d, lam), label=f"ridge pooled lam={lam:g}", rounds=r)
        evaluate(
            d, s, vs, ridge_fitter(d, lam, True), label=f"ridge within-cat lam={lam:g}", rounds=r
        )
    for within in (True, False):
        evaluate(
            d, s, vs, pairwise_fitter(d, within=within), label=f"pairwise within={within}", rounds=r
        )
    for alpha in (0.3, 0.5, 0.7):
        evaluate(
            d,
            s,
            vs,
            blend_fitter(linear_fitter(), alpha),
            label=f"blend router/len a={alpha}",
            rounds=r,
        )


if __name__ == "__main__":
    main()
