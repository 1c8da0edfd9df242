"""Held-out-category experiments for the default router (numpy only).

    python scripts/router/experiments.py /work/router-build [--dims 64]

Reads ``raw_embeddings.npy`` + ``vocab.json`` written by ``distill_embeddings.py``,
builds the static table (PCA + SIF weights), featurises the shared MMLU-Pro file,
and for each category-held-out fold trains on the other categories (never on the
dev split) and reports APGR / CPT(50%) for the two acceptance pairs, per feature
group. Prints a table; ``--json`` writes the numbers too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np

from laneway.router._conversation import conversation_from_prompt
from laneway.router._features import StaticEmbedder, structural_features
from laneway.router._linear import LinearHeads
from laneway.router._metrics import pair_metrics
from laneway.router._tokenizer import WordPieceTokenizer
from laneway.router._training import DEFAULT_TIER_MODELS, dev_mask, pca_sif_table, targets_for

DATA = Path("/work/shared/data/mmlu-pro-outcomes.jsonl.gz")
FOLDS: tuple[tuple[str, ...], ...] = (
    ("math", "law", "biology", "history"),
    ("physics", "economics", "philosophy", "engineering"),
    ("chemistry", "business", "health", "computer science"),
    ("other", "psychology"),
)
PAIRS = (
    ("gpt-4o-2024-05-13", "llama-3.1-8b-instruct"),
    ("gemini-1.5-pro-002", "mixtral-8x7b-instruct-v0.1"),
)


def load(build: Path, dims: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    rows = [json.loads(line) for line in gzip.open(DATA, "rt")]
    vocab = json.loads((build / "vocab.json").read_text())
    table = pca_sif_table(np.load(build / "raw_embeddings.npy"), dims)
    emb = StaticEmbedder(WordPieceTokenizer(vocab), table)
    convs = [conversation_from_prompt(r["question"]) for r in rows]
    e = np.stack([emb.embed(c) for c in convs]).astype(np.float64)
    s = np.array([structural_features(c) for c in convs], dtype=np.float64)
    return rows, e, s


def knn_prior(e_train, y_train, e_query, k, exclude_self):
    sims = e_query @ e_train.T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    idx = np.argpartition(-sims, k, axis=1)[:, :k]
    return y_train[idx].mean(axis=1)


def run(build: Path, dims: int, l2: float, k: int) -> dict:
    rows, e, s = load(build, dims)
    cats = np.array([r["category"] for r in rows])
    dev = dev_mask([r["id"] for r in rows])
    y = targets_for(rows, DEFAULT_TIER_MODELS)  # (n, tiers + 1): tier means..., score
    plen = np.array([len(r["question"]) for r in rows], dtype=np.float64)
    groups = {
        "structural": s,
        "embedding": e,
        "struct+emb": np.hstack([s, e]),
    }
    results: dict = {}
    for fi, held in enumerate(FOLDS):
        test = np.isin(cats, held)
        train = ~test & ~dev
        for name, x in groups.items():
            for use_knn in (False, True):
                xt, xq = x[train], x[test]
                if use_knn:
                    ytr = y[train, -1]
                    kt = knn_prior(e[train], ytr, e[train], k, True)
                    kq = knn_prior(e[train], ytr, e[test], k, False)
                    xt, xq = np.hstack([xt, kt[:, None]]), np.hstack([xq, kq[:, None]])
                model = LinearHeads.fit(xt, y[train], l2)
                pred = model.predict(xq)
                key = name + ("+knn" if use_knn else "")
                for heads in ("score", "1-simple"):
                    sc = pred[:, -1] if heads == "score" else 1 - pred[:, 0]
                    for st, wk in PAIRS:
                        S = np.array([r["outcomes"][st] for r in np.array(rows)[test]], float)
                        W = np.array([r["outcomes"][wk] for r in np.array(rows)[test]], float)
                        m = pair_metrics(sc, S, W)
                        results.setdefault((key, heads, st), []).append(m)
                        if name == "structural" and not use_knn and heads == "score":
                            lm = pair_metrics(plen[test], S, W)
                            results.setdefault(("prompt-length", "-", st), []).append(lm)
    for (key, heads, st), ms in sorted(results.items()):
        ap = " ".join(f"{m.apgr:.3f}" for m in ms)
        cp = " ".join(f"{m.cpt50:.3f}" for m in ms)
        mean = np.mean([m.apgr for m in ms])
        print(f"{key:22s} {heads:9s} {st[:10]:10s} APGR {ap}  mean {mean:.3f} | CPT50 {cp}")
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--dims", type=int, default=64)
    ap.add_argument("--l2", type=float, default=10.0)
    ap.add_argument("--k", type=int, default=50)
    args = ap.parse_args()
    run(args.build, args.dims, args.l2, args.k)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
