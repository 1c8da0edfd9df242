"""Build the router shipped in the package (numpy only; run in Laneway's venv).

    python scripts/router/build_default.py [BUILD_DIR] [--embedding]

From ``distill_embeddings.py``'s output (or, without BUILD_DIR, keeping the shipped
table and vocabulary): writes ``src/laneway/router/default/`` —
``embeddings.npz`` (64-d float16 static table), ``vocab.json``, the scorer trained on
every non-dev row of the shared MMLU-Pro file (question text only) plus two thirds of
``varied_prompts.jsonl`` (rubric outcomes, total weight ``VARIED_SHARE`` of the
MMLU-Pro rows), ``calibration.json`` (the MMLU-Pro dev split and the other third of
the varied set, never trained on; weighted so that exam questions are one traffic
category beside the varied set's), and the profiles calibrated on it.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import shutil
from pathlib import Path

import numpy as np
from varied import VARIED, fold_of, varied_rows

from laneway.router._calibration_set import calibrate_router, calibration_rows
from laneway.router._conversation import conversation_from_prompt
from laneway.router._fit import train_scorer
from laneway.router._profiles import Goal
from laneway.router._scorer import default_router_dir, load_embedder
from laneway.router._training import DEFAULT_TIER_MODELS, DEFAULT_TIERS, dev_mask, pca_sif_table

# Chosen on scripts/router/varied.py (held-out MMLU-Pro categories and the varied set's
# cross-validation): 0.3 spreads scores by grade without losing held-out APGR.
VARIED_SHARE = 0.3

DATA = Path("/work/shared/data/mmlu-pro-outcomes.jsonl.gz")
PROFILES = {
    "default": Goal(quality_floor=0.95),
    "quality": Goal(quality_floor=0.98),
    "economy": Goal(strong_share=0.2),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path, nargs="?", help="distill_embeddings.py's output")
    ap.add_argument("--embedding", action="store_true", help="add the static embedding")
    args = ap.parse_args()
    out = default_router_dir()
    source = out if args.build is None else args.build  # None: keep the shipped table
    if not (source / "vocab.json").is_file():
        ap.error(f"{source / 'vocab.json'} not found: pass distill_embeddings.py's output")
    vocab = (source / "vocab.json").read_bytes()
    if args.build is None:
        table_npz = (out / "embeddings.npz").read_bytes()
    else:
        buffer = io.BytesIO()
        table = pca_sif_table(np.load(args.build / "raw_embeddings.npy"), 64)
        np.savez_compressed(buffer, table=table.astype(np.float16))
        table_npz = buffer.getvalue()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "embeddings.npz").write_bytes(table_npz)
    (out / "vocab.json").write_bytes(vocab)

    with gzip.open(DATA, "rt") as handle:
        raw = [json.loads(line) for line in handle]
    dev = dev_mask([r["id"] for r in raw])
    train = [
        {"conversation": conversation_from_prompt(r["question"]), "outcomes": r["outcomes"]}
        for r, d in zip(raw, dev, strict=True)
        if not d
    ]
    varied = varied_rows()
    var_train = [r for r in varied if fold_of(r["id"], 3) != 0]
    var_cal = [r for r in varied if fold_of(r["id"], 3) == 0]
    weight = VARIED_SHARE * len(train) / len(var_train)
    train += [{**r, "weight": weight} for r in var_train]
    scorer = train_scorer(
        train,
        DEFAULT_TIERS,
        DEFAULT_TIER_MODELS,
        load_embedder(out),
        use_embedding=args.embedding,
        meta={
            "trained_on": "MMLU-Pro outcomes of 11 models (TIGER-AI-Lab, Apache-2.0), "
            "question text only, dev split (1 id in 10 by hash) held out; "
            f"{len(var_train)} varied prompts with rubric outcomes (weight share "
            f"{VARIED_SHARE})",
            "score": "difficulty: 1 - mean over tiers of P(the tier answers well)",
        },
    )
    scorer.save(out)
    n_dev = int(dev.sum())
    categories = len({r["category"] for r in varied})
    exam_weight = len(var_cal) / categories / n_dev  # exam questions: one more category
    calib = [
        {"id": r["id"], "prompt": r["question"], "outcomes": r["outcomes"], "weight": exam_weight}
        for r, d in zip(raw, dev, strict=True)
        if d
    ]
    source = {json.loads(line)["id"]: json.loads(line) for line in VARIED.read_text().splitlines()}
    for r in var_cal:
        rec = source[r["id"]]
        body = {"messages": rec["messages"]} if "messages" in rec else {"prompt": rec["prompt"]}
        calib.append({"id": r["id"], **body, "outcomes": r["outcomes"], "weight": 1.0})
    (out / "calibration.json").write_text(json.dumps(calib, ensure_ascii=False), "utf-8")
    rows = calibration_rows(out / "calibration.json")
    for name, goal in PROFILES.items():
        profile = calibrate_router(scorer, rows, name, goal)
        (out / "profiles").mkdir(exist_ok=True)
        (out / "profiles" / f"{name}.json").write_text(profile.to_json(), "utf-8")
        print(name, json.dumps(dict(profile.thresholds)), json.dumps(dict(profile.report)))


if __name__ == "__main__":
    main()
