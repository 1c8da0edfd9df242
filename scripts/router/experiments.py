"""Held-out-category evaluation of the default router recipe (numpy only).

    python scripts/router/experiments.py BUILD_DIR [--l2 3000] [--rounds 1000]

Reads ``raw_embeddings.npy`` + ``vocab.json`` from ``distill_embeddings.py``, builds the
static table exactly as ``build_default.py`` does, featurises the shared MMLU-Pro file
(question text only: never the answer options), and for each fold trains on the
categories it does not hold out (never on the dev split) and scores the held-out
ones. Prints, per fold and pair, APGR and CPT(50%) with 95% bootstrap intervals for
the router, its feature-group ablations and the prompt-length baseline (random is
0.5 by construction), plus a paired bootstrap interval of router − length.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

from laneway.router._conversation import conversation_from_prompt
from laneway.router._features import StaticEmbedder, structural_features
from laneway.router._linear import LinearHeads
from laneway.router._metrics import bootstrap, pair_metrics
from laneway.router._tokenizer import WordPieceTokenizer
from laneway.router._training import (
    DEFAULT_TIER_MODELS,
    DEFAULT_TIERS,
    dev_mask,
    pca_sif_table,
    targets_for,
)

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
DIMS = 64


def featurise(build: Path) -> tuple[list[dict], np.ndarray, np.ndarray]:
    cache = build / f"features_{DIMS}.npz"
    with gzip.open(DATA, "rt") as handle:
        rows = [json.loads(line) for line in handle]
    if cache.is_file():
        with np.load(cache) as data:
            return rows, data["s"], data["e"]
    vocab = json.loads((build / "vocab.json").read_text())
    table = pca_sif_table(np.load(build / "raw_embeddings.npy"), DIMS).astype(np.float16)
    emb = StaticEmbedder(WordPieceTokenizer(vocab), table)
    convs = [conversation_from_prompt(r["question"]) for r in rows]
    e = np.stack([emb.embed(c) for c in convs]).astype(np.float64)
    s = np.array([structural_features(c) for c in convs], dtype=np.float64)
    np.savez(cache, s=s, e=e)
    return rows, s, e


def paired_diff(a, b, strong, weak, rounds, seed=0):
    rng = np.random.default_rng(seed)
    n = len(a)
    diffs = np.empty(rounds)
    for r in range(rounds):
        idx = rng.integers(0, n, n)
        diffs[r] = (
            pair_metrics(a[idx], strong[idx], weak[idx]).apgr
            - pair_metrics(b[idx], strong[idx], weak[idx]).apgr
        )
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def run(build: Path, l2: float, rounds: int) -> list[dict]:
    rows, s, e = featurise(build)
    cats = np.array([r["category"] for r in rows])
    dev = dev_mask([r["id"] for r in rows])
    y = targets_for(rows, DEFAULT_TIER_MODELS, DEFAULT_TIERS)
    plen = np.array([len(r["question"]) for r in rows], dtype=np.float64)
    groups = {"structural": s, "embedding": e, "router (struct+emb)": np.hstack([s, e])}
    out: list[dict] = []
    for held in FOLDS:
        test = np.isin(cats, held)
        train = ~test & ~dev
        scores = {"prompt-length": plen[test]}
        for name, x in groups.items():
            scores[name] = LinearHeads.fit(x[train], y[train], l2).predict(x[test])[:, -1]
        for strong, weak in PAIRS:
            S = np.array(
                [r["outcomes"][strong] for r, t in zip(rows, test, strict=True) if t], float
            )
            W = np.array([r["outcomes"][weak] for r, t in zip(rows, test, strict=True) if t], float)
            for name, sc in scores.items():
                b = bootstrap(sc, S, W, rounds=rounds)
                rec = {
                    "fold": "+".join(held),
                    "pair": f"{strong} vs {weak}",
                    "method": name,
                    "n": int(test.sum()),
                    "apgr": b.value.apgr,
                    "apgr_ci": b.apgr_ci,
                    "cpt50": b.value.cpt50,
                    "cpt50_ci": b.cpt50_ci,
                    "cpt80": b.value.cpt80,
                }
                if name == "router (struct+emb)":
                    rec["minus_length_ci"] = paired_diff(sc, plen[test], S, W, rounds)
                out.append(rec)
                print(_line(rec), flush=True)
    return out


def _line(r: dict) -> str:
    extra = ""
    if "minus_length_ci" in r:
        lo, hi = r["minus_length_ci"]
        extra = f"  router-length [{lo:+.3f}, {hi:+.3f}]"
    return (
        f"{r['fold'][:28]:28s} {r['pair'][:18]:18s} {r['method']:20s} "
        f"APGR {r['apgr']:.3f} [{r['apgr_ci'][0]:.3f}, {r['apgr_ci'][1]:.3f}]  "
        f"CPT50 {r['cpt50']:.3f} [{r['cpt50_ci'][0]:.3f}, {r['cpt50_ci'][1]:.3f}]{extra}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--l2", type=float, default=3000.0)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = run(args.build, args.l2, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
