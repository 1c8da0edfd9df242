"""Experiments 2-3: topic-nulled embeddings and word-rarity / problem-form signals.

    python scripts/router/exp_features.py [--rounds 0|1000]

Score head target unchanged (shipped). Every variant adds columns to the shipped 24
structural signals and is evaluated by ``exp_harness.evaluate`` (varied.py's folds).
"""

from __future__ import annotations

import argparse
import json
import math
import re

import numpy as np
from exp_harness import evaluate, linear_fitter, load_all

from laneway.router._features import STRUCTURAL_NAMES
from laneway.router._scorer import default_router_dir

NS = len(STRUCTURAL_NAMES)

_NUM = re.compile(r"(?<![A-Za-z])\d+(?:[.,]\d+)*")
_COMPUTE = re.compile(
    r"\b(?:calculate|compute|determine|find|estimate|evaluate|solve|what is the value|how many|"
    r"how much|how long|how far|what percentage)\b"
)
_WH = re.compile(r"^\W*(what|which|why|how|who|when|where|is|are|does|do|can)\b")
_FORMULA = re.compile(r"[a-zA-Z]\s*[=^]\s*[-\d(a-zA-Z]|\d\s*[*/x×]\s*\d|\(\s*[a-z]\s*\)")
_WORD = re.compile(r"[A-Za-z]+")
_WHY = re.compile(r"\b(?:why|explain|reason|because|argue|principle|theory|concept|define)\b")


def rarity_features(text: str, ids: list[int], vocab: list[str]) -> list[float]:
    words = [i for i in ids if i >= 1996 and vocab[i][:1].isalpha()]
    sub = [i for i in ids if vocab[i].startswith("##")]
    n = max(len(ids), 1)
    logs = [math.log(i) for i in words] or [math.log(1996)]
    lower = text.lower()
    nums = _NUM.findall(text)
    wh = _WH.match(lower)
    wlen = [len(w) for w in _WORD.findall(text)] or [0]
    return [
        len(sub) / n,
        float(np.mean(logs)),
        float(np.max(logs)),
        sum(i > 10000 for i in words) / max(len(words), 1),
        sum(i > 20000 for i in words) / max(len(words), 1),
        math.log1p(len(set(nums))),
        math.log1p(len(_COMPUTE.findall(lower))),
        math.log1p(len(_FORMULA.findall(text))),
        1.0 if wh and wh.group(1) in ("what", "which") else 0.0,
        1.0 if wh and wh.group(1) in ("why", "how") else 0.0,
        math.log1p(len(_WHY.findall(lower))),
        sum(w >= 10 for w in wlen) / len(wlen),
    ]


def rarity_matrices(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Rarity/form signals of every MMLU-Pro question and every varied prompt (``load_all``)."""
    vocab = json.loads((default_router_dir() / "vocab.json").read_text())
    rf = np.array(
        [rarity_features(q["question"], i, vocab) for q, i in zip(d["mmlu"], d["ids"], strict=True)]
    )
    vrf = np.array(
        [
            rarity_features(v["conversation"].last_user, i, vocab)
            for v, i in zip(d["var"], d["vids"], strict=True)
        ]
    )
    return rf, vrf


def null_topics(x, vx, train, cats, k_pca=None, center=False):
    """Project out the span of the training categories' mean embeddings."""
    mu = x[train].mean(0)
    means = np.stack([x[train & (cats == c)].mean(0) - mu for c in np.unique(cats[train])])
    q, _ = np.linalg.qr(means.T)

    def proj(z):
        z = z - mu
        return z - (z @ q) @ q.T

    xp, vxp = proj(x), proj(vx)
    if center:  # training rows: remove own category mean (within-category directions)
        xp = xp.copy()
        for c in np.unique(cats[train]):
            m = train & (cats == c)
            xp[m] -= xp[m].mean(0)
    if k_pca:
        _, _, vt = np.linalg.svd(xp[train] - xp[train].mean(0), full_matrices=False)
        xp, vxp = xp @ vt[:k_pca].T, vxp @ vt[:k_pca].T
    return xp, vxp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=0)
    args = ap.parse_args()
    r = args.rounds
    d = load_all()
    rf, vrf = rarity_matrices(d)
    s, vs, e, ve, cats = d["s"], d["vs"], d["e"], d["ve"], d["cats"]
    lf = linear_fitter()
    evaluate(d, s, vs, lf, label="struct (shipped)", rounds=r)
    evaluate(
        d, np.hstack([s, rf]), np.hstack([vs, vrf]), lf, label="struct + rarity/form (12)", rounds=r
    )
    for j in range(rf.shape[1]):
        evaluate(
            d,
            np.hstack([s, rf[:, j : j + 1]]),
            np.hstack([vs, vrf[:, j : j + 1]]),
            lf,
            label=f"struct + rarity[{j}]",
            rounds=0,
            varied=False,
        )
    evaluate(d, np.hstack([s, e]), np.hstack([vs, ve]), lf, label="struct + raw emb 64", rounds=r)
    for k, center in ((None, False), (None, True), (16, False), (16, True), (8, True)):

        def tf(x, vx, train, k=k, center=center):
            ep, vep = null_topics(x[:, NS:], vx[:, NS:], train, cats, k, center)
            return np.hstack([x[:, :NS], ep]), np.hstack([vx[:, :NS], vep])

        for l2 in (3000.0, 30000.0):
            evaluate(
                d,
                np.hstack([s, e]),
                np.hstack([vs, ve]),
                linear_fitter(l2),
                fold_transform=tf,
                label=f"struct + nulled emb k={k} c={center} l2={l2:g}",
                rounds=r,
            )


if __name__ == "__main__":
    main()
