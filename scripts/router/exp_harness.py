"""Shared harness for the router experiments (``exp_*.py``; numpy only, Laneway's venv).

Reproduces ``varied.py``'s methodology (same held-out-category folds, pairs, dev split,
varied-set share and 5-fold CV, 1,000-round paired bootstrap against prompt length)
for any feature matrix and target matrix, so that recipes differ only in what they
change. Caches the shipped static embedding and token ids of every MMLU-Pro question
(question text only) and every varied prompt under the temp directory.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from experiments import paired_diff
from varied import FOLDS, PAIRS, VARIED, fold_of, load_mmlu, varied_rows

from laneway.router._conversation import conversation_from_prompt
from laneway.router._features import structural_features
from laneway.router._linear import LinearHeads
from laneway.router._metrics import pair_metrics
from laneway.router._scorer import default_router_dir, load_embedder
from laneway.router._training import (
    DEFAULT_TIER_MODELS,
    DEFAULT_TIERS,
    dev_mask,
    targets_for,
)

# keyed by the varied set's bytes: its embeddings are cached beside MMLU-Pro's
CACHE = Path(tempfile.gettempdir()) / (
    "laneway-router-exp-" + hashlib.blake2b(VARIED.read_bytes(), digest_size=6).hexdigest() + ".pkl"
)


def load_all() -> dict:
    """Rows, structural features, embeddings and token ids (MMLU-Pro and varied)."""
    mmlu, s = load_mmlu()
    var = varied_rows()
    if CACHE.is_file():
        data = pickle.loads(CACHE.read_bytes())  # noqa: S301 (our own temp cache)
    else:
        emb = load_embedder(default_router_dir())
        convs = [conversation_from_prompt(r["question"]) for r in mmlu]
        ids = [emb.ids(c) for c in convs]
        vids = [emb.ids(r["conversation"]) for r in var]
        data = {
            "e": np.stack([emb.embed_ids(i) for i in ids]).astype(np.float64),
            "ids": ids,
            "ve": np.stack([emb.embed_ids(i) for i in vids]).astype(np.float64),
            "vids": vids,
        }
        CACHE.write_bytes(pickle.dumps(data))
    models = sorted(mmlu[0]["outcomes"])
    data.update(
        mmlu=mmlu,
        s=s,
        var=var,
        vs=np.array([structural_features(r["conversation"]) for r in var]),
        cats=np.array([r["category"] for r in mmlu]),
        dev=dev_mask([r["id"] for r in mmlu]),
        y=targets_for(mmlu, DEFAULT_TIER_MODELS, DEFAULT_TIERS),
        vy=targets_for(var, DEFAULT_TIER_MODELS, DEFAULT_TIERS),
        plen=np.array([len(r["question"]) for r in mmlu], dtype=np.float64),
        vlen=np.array([r["conversation"].total_chars for r in var], dtype=np.float64),
        models=models,
        outc=np.array([[r["outcomes"][m] for m in models] for r in mmlu], dtype=np.float64),
        grades=np.array([r["grade"] for r in var]),
        vfold=np.array([fold_of(r["id"], 5) for r in var]),
    )
    # The first shipped score target (pair win rate), for comparisons with the new one.
    data["y_pairgain"] = data["y"].copy()
    data["y_pairgain"][:, -1] = gain_targets(data["outc"], models, signed=False)
    data["vy_pairgain"] = data["vy"].copy()
    data["vy_pairgain"][:, -1] = np.clip(data["vy"][:, -2] - data["vy"][:, 0], 0.0, 1.0)
    return data


def paired_ci(a, b, strong, weak, rounds=1000, seed=1):
    """Paired bootstrap 95% CI of APGR(a) − APGR(b), resampling as varied.py does."""
    return paired_diff(a, b, strong, weak, rounds, seed)


# A recipe: fit(train_x, train_y, weights, train_info) -> predict(x) -> score vector.
Fitter = Callable[..., Callable[[np.ndarray], np.ndarray]]


def linear_fitter(l2: float = 3000.0, col: int = -1) -> Fitter:
    def fit(x, y, w, info=None):
        heads = LinearHeads.fit(x, y, l2, w)
        return lambda z: heads.predict(z)[:, col]

    return fit


def evaluate(
    d: dict,
    x: np.ndarray,
    vx: np.ndarray,
    fitter: Fitter,
    *,
    y: np.ndarray | None = None,
    vy: np.ndarray | None = None,
    share: float = 0.3,
    rounds: int = 1000,
    label: str = "",
    varied: bool = True,
    fold_transform: Callable | None = None,
) -> dict:
    """Held-out folds × pairs (APGR, paired CI vs length) and the varied 5-fold CV."""
    y = d["y"] if y is None else y
    vy = d["vy"] if vy is None else vy
    mmlu = d["mmlu"]
    cells = []

    def fit(train_mask, var_mask, xm, vxm):
        n_m, n_v = int(train_mask.sum()), int(var_mask.sum())
        w_v = share * n_m / max(n_v, 1)
        xx = np.vstack([xm[train_mask], vxm[var_mask]]) if share > 0 else xm[train_mask]
        tt = np.vstack([y[train_mask], vy[var_mask]]) if share > 0 else y[train_mask]
        ww = np.concatenate([np.ones(n_m), np.full(n_v, w_v)]) if share > 0 else np.ones(n_m)
        info = {"train_mask": train_mask, "var_mask": var_mask, "n_mmlu": n_m}
        return fitter(xx, tt, ww, info)

    for held in FOLDS:
        test = np.isin(d["cats"], held)
        train = ~test & ~d["dev"]
        xm, vxm = (x, vx) if fold_transform is None else fold_transform(x, vx, train)
        predict = fit(train, np.ones(len(d["var"]), bool), xm, vxm)
        score = predict(xm[test])
        for strong, weak in PAIRS:
            S = np.array([r["outcomes"][strong] for r in mmlu], float)[test]
            W = np.array([r["outcomes"][weak] for r in mmlu], float)[test]
            a = pair_metrics(score, S, W).apgr
            ln = pair_metrics(d["plen"][test], S, W).apgr
            ci = paired_ci(score, d["plen"][test], S, W, rounds) if rounds else (np.nan, np.nan)
            cells.append({"fold": held[0], "pair": strong[:6], "apgr": a, "len": ln, "ci": ci})
    out = {
        "label": label,
        "cells": cells,
        "mean": float(np.mean([c["apgr"] for c in cells])),
        "mean_len": float(np.mean([c["len"] for c in cells])),
        "clear": int(sum(c["ci"][0] > 0 for c in cells)),
    }
    if varied:
        oof = np.empty(len(d["var"]))
        for k in range(5):
            train = ~d["dev"]
            xm, vxm = (x, vx) if fold_transform is None else fold_transform(x, vx, train)
            predict = fit(train, d["vfold"] != k, xm, vxm)
            oof[d["vfold"] == k] = predict(vxm[d["vfold"] == k])
        S, W = d["vy"][:, -2], d["vy"][:, 0]
        out["varied"] = pair_metrics(oof, S, W).apgr
        out["varied_len"] = pair_metrics(d["vlen"], S, W).apgr
        out["varied_ci"] = paired_ci(oof, d["vlen"], S, W, rounds) if rounds else (np.nan,) * 2
        out["by_grade"] = [round(float(oof[d["grades"] == g].mean()), 3) for g in range(1, 5)]
    report(out)
    return out


def report(out: dict) -> None:
    cells = " ".join(
        f"{c['apgr']:.3f}({c['ci'][0]:+.3f})" if np.isfinite(c["ci"][0]) else f"{c['apgr']:.3f}"
        for c in out["cells"]
    )
    line = f"{out['label'][:38]:38s} mean {out['mean']:.4f} clear {out['clear']}/8 | {cells}"
    if "varied" in out:
        line += f" | varied {out['varied']:.3f} (len {out['varied_len']:.3f}"
        line += f" r-l [{out['varied_ci'][0]:+.3f},{out['varied_ci'][1]:+.3f}]) {out['by_grade']}"
    print(line, flush=True)


def gain_targets(outc: np.ndarray, models: list[str], signed: bool) -> np.ndarray:
    """Frontier-vs-simple gain from an outcome matrix (rows × models, values in [0,1])."""
    f = [models.index(m) for m in DEFAULT_TIER_MODELS["frontier"]]
    s = [models.index(m) for m in DEFAULT_TIER_MODELS["simple"]]
    diffs = outc[:, f][:, :, None] - outc[:, s][:, None, :]
    if signed:
        return (diffs.mean(axis=(1, 2)) + 1.0) / 2.0
    return np.maximum(diffs, 0.0).mean(axis=(1, 2))


__all__ = ["evaluate", "gain_targets", "linear_fitter", "load_all", "paired_ci", "report"]


def evaluate_random(d: dict, x: np.ndarray, fitter: Fitter, label: str = "", k: int = 5) -> dict:
    """Categories-seen control: k random folds over the non-dev rows (MMLU-Pro only)."""
    rows = np.flatnonzero(~d["dev"])
    fold = np.random.default_rng(0).integers(0, k, len(rows))
    oof = np.empty(len(rows))
    for f in range(k):
        tr, te = rows[fold != f], rows[fold == f]
        predict = fitter(
            x[tr],
            d["y"][tr],
            np.ones(len(tr)),
            {"train_mask": np.isin(np.arange(len(x)), tr), "n_mmlu": len(tr)},
        )
        oof[fold == f] = predict(x[te])
    out = {}
    from varied import PAIRS as pairs

    for strong, weak in pairs:
        S = d["outc"][rows, d["models"].index(strong)]
        W = d["outc"][rows, d["models"].index(weak)]
        out[strong[:6]] = (pair_metrics(oof, S, W).apgr, pair_metrics(d["plen"][rows], S, W).apgr)
    print(f"{label[:38]:38s} random split (router, length): {out}", flush=True)
    return out
