"""Held-out evaluation with the varied prompt set (numpy only; run in Laneway's venv).

    python scripts/router/varied.py [--rounds 1000] [--share 0.3 ...] [--json OUT]

``varied_prompts.jsonl`` (written for Laneway: chat, facts, writing, code, math word
problems, reasoning, extraction; each with a rubric grade = the cheapest tier
expected to answer it well) becomes per-model outcomes: a model answers well iff its
tier is at or above the prompt's grade. For each ``--share`` (total weight of the
varied rows relative to the MMLU-Pro training rows; 0 = MMLU-Pro only), prints:

* MMLU-Pro held-out categories (``experiments.py``'s folds; the varied set is all
  trained on, it shares no text with MMLU-Pro): APGR / CPT(50%) with bootstrap CIs,
  prompt length, and a paired bootstrap CI of router − length;
* the varied set by 5-fold cross-validation (folds by id hash; every fold's model is
  trained on all non-dev MMLU-Pro rows + the other folds): APGR against length.

``--features old`` uses the 21 signals of the first shipped model (the "before" row).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from laneway.router import _features as features_module
from laneway.router._features import STRUCTURAL_NAMES, structural_features
from laneway.router._io import conversation_of
from laneway.router._linear import LinearHeads
from laneway.router._metrics import bootstrap, pair_metrics
from laneway.router._training import DEFAULT_TIER_MODELS, DEFAULT_TIERS, dev_mask, targets_for

HERE = Path(__file__).resolve().parent
DATA = Path("/work/shared/data/mmlu-pro-outcomes.jsonl.gz")
VARIED = HERE / "varied_prompts.jsonl"
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
OLD_FEATURES = 21


def rubric_outcomes(grade: int) -> dict[str, float]:
    """Every mapped model answers well iff its tier is at or above ``grade`` (1-based)."""
    return {
        m: 1.0 if i >= grade - 1 else 0.0
        for i, t in enumerate(DEFAULT_TIERS)
        for m in DEFAULT_TIER_MODELS[t]
    }


def varied_rows(path: Path = VARIED) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        rows.append(
            {
                "id": rec["id"],
                "category": rec["category"],
                "grade": rec["grade"],
                "conversation": conversation_of(rec),
                "outcomes": rubric_outcomes(rec["grade"]),
            }
        )
    return rows


def fold_of(key: str, k: int) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest()) % k


def load_mmlu() -> tuple[list[dict], np.ndarray]:
    with gzip.open(DATA, "rt") as handle:
        rows = [json.loads(line) for line in handle]
    # keyed by the feature code itself: a change in how a signal is computed is a new cache
    source = Path(features_module.__file__).read_bytes()
    key = hashlib.blake2b(source, digest_size=6).hexdigest()
    cache = Path(tempfile.gettempdir()) / f"laneway-router-struct-{key}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            return rows, data["s"]
    s = np.array([structural_features(conversation_of(r)) for r in rows], dtype=np.float64)
    np.savez(cache, s=s)
    return rows, s


def _metrics(score, strong, weak, rounds, length=None):
    b = bootstrap(score, strong, weak, rounds=rounds)
    rec = {
        "apgr": b.value.apgr,
        "apgr_ci": b.apgr_ci,
        "cpt50": b.value.cpt50,
        "cpt50_ci": b.cpt50_ci,
    }
    if length is not None:
        rng = np.random.default_rng(1)
        diffs = []
        for _ in range(rounds):
            idx = rng.integers(0, len(score), len(score))
            diffs.append(
                pair_metrics(score[idx], strong[idx], weak[idx]).apgr
                - pair_metrics(length[idx], strong[idx], weak[idx]).apgr
            )
        rec["minus_length_ci"] = (
            float(np.percentile(diffs, 2.5)),
            float(np.percentile(diffs, 97.5)),
        )
    return rec


def run(share: float, width: int, rounds: int, l2: float) -> dict:
    mmlu, s = load_mmlu()
    s = s[:, :width]
    cats = np.array([r["category"] for r in mmlu])
    dev = dev_mask([r["id"] for r in mmlu])
    y = targets_for(mmlu, DEFAULT_TIER_MODELS, DEFAULT_TIERS)
    plen = np.array([len(r["question"]) for r in mmlu], dtype=np.float64)
    var = varied_rows()
    vx = np.array([structural_features(r["conversation"]) for r in var])[:, :width]
    vy = targets_for(var, DEFAULT_TIER_MODELS, DEFAULT_TIERS)
    vlen = np.array([r["conversation"].total_chars for r in var], dtype=np.float64)

    def fit(train_mask: np.ndarray, var_mask: np.ndarray) -> LinearHeads:
        n_m, n_v = int(train_mask.sum()), int(var_mask.sum())
        w_v = share * n_m / max(n_v, 1)
        x = np.vstack([s[train_mask], vx[var_mask]])
        t = np.vstack([y[train_mask], vy[var_mask]])
        w = np.concatenate([np.ones(n_m), np.full(n_v, w_v)])
        return LinearHeads.fit(x, t, l2, w if share > 0 else None)

    out: dict = {"share": share, "features": width, "heldout": [], "varied": {}}
    for held in FOLDS:
        test = np.isin(cats, held)
        heads = fit(~test & ~dev, np.ones(len(var), bool))
        score = heads.predict(s[test])[:, -1]
        for strong, weak in PAIRS:
            S = np.array([r["outcomes"][strong] for r, t in zip(mmlu, test, strict=True) if t])
            W = np.array([r["outcomes"][weak] for r, t in zip(mmlu, test, strict=True) if t])
            rec = {"fold": "+".join(held), "pair": f"{strong} / {weak}"}
            rec["router"] = _metrics(score, S, W, rounds, plen[test])
            rec["length"] = _metrics(plen[test], S, W, rounds)
            out["heldout"].append(rec)
            r, ln = rec["router"], rec["length"]
            print(
                f"{rec['fold'][:26]:26s} {strong[:10]}/{weak[:10]}  router {r['apgr']:.3f} "
                f"[{r['apgr_ci'][0]:.3f}, {r['apgr_ci'][1]:.3f}] cpt50 {r['cpt50']:.3f}  length "
                f"{ln['apgr']:.3f} [{ln['apgr_ci'][0]:.3f}, {ln['apgr_ci'][1]:.3f}] cpt50 "
                f"{ln['cpt50']:.3f}  r-l [{r['minus_length_ci'][0]:+.3f}, "
                f"{r['minus_length_ci'][1]:+.3f}]",
                flush=True,
            )
    folds = np.array([fold_of(r["id"], 5) for r in var])
    oof = np.empty((len(var), len(DEFAULT_TIERS) + 1))
    for k in range(5):
        heads = fit(~dev, folds != k)
        oof[folds == k] = heads.predict(vx[folds == k])
    grades = np.array([r["grade"] for r in var])
    S, W = vy[:, -2], vy[:, 0]
    out["varied"] = {
        "router": _metrics(oof[:, -1], S, W, rounds, vlen),
        "length": _metrics(vlen, S, W, rounds),
        "mean_score_by_grade": {int(g): float(oof[grades == g, -1].mean()) for g in range(1, 5)},
        "mean_simple_estimate_by_grade": {
            int(g): float(oof[grades == g, 0].mean()) for g in range(1, 5)
        },
    }
    v = out["varied"]
    r, lo_hi, diff = v["router"], v["router"]["apgr_ci"], v["router"]["minus_length_ci"]
    by_grade = {g: round(x, 3) for g, x in v["mean_score_by_grade"].items()}
    print(
        f"varied 5-fold CV: router APGR {r['apgr']:.3f} [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}] "
        f"length {v['length']['apgr']:.3f}  r-l [{diff[0]:+.3f}, {diff[1]:+.3f}]  "
        f"score by grade {json.dumps(by_grade)}",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--share", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    ap.add_argument("--features", choices=["old", "new"], default="new")
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--l2", type=float, default=3000.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    width = OLD_FEATURES if args.features == "old" else len(STRUCTURAL_NAMES)
    results = []
    for share in args.share:
        print(f"== share {share:g}, {width} features, l2 {args.l2:g}", flush=True)
        results.append(run(share, width, args.rounds, args.l2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
