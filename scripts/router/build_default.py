"""Build the router shipped in the package (numpy only; run in Laneway's venv).

    python scripts/router/build_default.py

Writes ``src/laneway/router/default/``: the scorer (tier heads, per-task offsets and
the answer verifier) trained by the recipe in ``benchmarks/router_data.py`` on every
non-dev row of the shared MMLU-Pro and answers data plus two thirds of the varied
prompts; ``calibration.json`` (the dev splits and the other third of the varied
prompts, never trained on; weighted so that exam questions and each answers task are
one traffic category beside the varied set's seven); and the profiles calibrated on
it. The static token table (``embeddings.npz``, ``vocab.json``) is kept as shipped.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from laneway.router import (
    DEFAULT_TIERS,
    Goal,
    calibrate_router,
    calibration_rows,
    default_router_dir,
    train_scorer,
)
from router_data import (
    LENGTH_PRIOR,
    VARIED,
    answer_rows,
    bucket,
    mmlu_rows,
    rubric_rows,
    shipped_training_rows,
    tier_models,
)

# Quality floors against sending everything to frontier: economy accepts the most
# loss, quality the least (their frontier shares: `laneway router report`).
PROFILES = {
    "economy": Goal(quality_floor=0.90),
    "default": Goal(quality_floor=0.95),
    "quality": Goal(quality_floor=0.99),
}
KEEP = ("embeddings.npz", "vocab.json")


def _body(row: dict[str, Any]) -> dict[str, Any]:
    rec = row.get("record")
    if rec is not None and "messages" in rec:
        return {"messages": rec["messages"]}
    text = row.get("question") or row.get("prompt") or (rec or {}).get("prompt")
    return {"prompt": text}


def main() -> None:
    out = default_router_dir()
    kept = {name: (out / name).read_bytes() for name in KEEP}
    mmlu, answers, varied = mmlu_rows(), answer_rows(), rubric_rows(VARIED)
    train = shipped_training_rows(
        [r for r in mmlu if bucket(r["id"], 10) != 0],
        [r for r in answers if bucket(r["id"], 10) != 0],
        [r for r in varied if bucket(r["id"], 3) != 0],
    )
    scorer = train_scorer(
        train,
        DEFAULT_TIERS,
        tier_models(),
        None,
        use_embedding=False,
        length_prior=LENGTH_PRIOR,
        meta={
            "trained_on": "MMLU-Pro outcomes of 11 models (TIGER-AI-Lab, Apache-2.0), "
            "question text only; answers data (ZeroEval math-l5 and crux, arena-hard-auto "
            "arena-bench-v1; Apache-2.0) with their tasks and answers (the answers include "
            "outputs of models whose terms restrict building competing models: used here "
            "to train routing and verification classifiers only); dev splits (1 id in 10 "
            "by hash) held out; two thirds of the varied prompts with rubric outcomes "
            f"(weight share 0.3); length prior {LENGTH_PRIOR:g} on the gain (chosen by "
            "leaving MMLU-Pro category groups out)",
            "score": "expected gain: P(strongest tier ok) - P(cheapest tier ok)",
        },
    )
    cal_varied = [r for r in varied if bucket(r["id"], 3) == 0]
    per_category = len(cal_varied) / len({r["record"]["category"] for r in cal_varied})
    groups: dict[str, list[dict[str, Any]]] = {"exam": []}
    for r in mmlu:
        if bucket(r["id"], 10) == 0:
            groups["exam"].append(r)
    for r in answers:
        if bucket(r["id"], 10) == 0:
            groups.setdefault(str(r["task"]), []).append(r)
    calib = [{"id": r["id"], **_body(r), "outcomes": r["outcomes"], "weight": 1.0}
             for r in cal_varied]  # fmt: skip
    for rows in groups.values():
        for r in rows:
            calib.append({"id": r["id"], **_body(r), "outcomes": r["outcomes"],
                          "task": r.get("task"), "weight": per_category / len(rows)})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "default"
        scorer.save(build)
        for name, data in kept.items():
            (build / name).write_bytes(data)
        (build / "calibration.json").write_text(json.dumps(calib, ensure_ascii=False), "utf-8")
        rows = calibration_rows(build / "calibration.json")
        (build / "profiles").mkdir()
        for name, goal in PROFILES.items():
            profile = calibrate_router(scorer, rows, name, goal)
            (build / "profiles" / f"{name}.json").write_text(profile.to_json(), "utf-8")
            print(name, f"max_loss={profile.max_loss:.4f}", json.dumps(dict(profile.report)))
        shutil.rmtree(out)
        shutil.copytree(build, out)


if __name__ == "__main__":
    main()
