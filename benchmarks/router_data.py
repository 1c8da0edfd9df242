"""The router's training data and recipe, shared by the build script and the benchmarks.

* MMLU-Pro outcomes (``mmlu-pro-outcomes.jsonl.gz``): 11 models, question text only;
  the fixed dev split (1 id in 10 by hash) is never trained on.
* The answers data (``answers.jsonl.gz``): prompts × answers × scores of 15-49 models
  (competition maths, code-output prediction, hard chat prompts); its dev split
  (1 id in 10 by hash) is never trained on. Models map to tiers by the router's default
  mapping (``DEFAULT_TIER_MODELS``: MMLU-Pro's and the answers data's models).
* The varied prompts (``tests/router/data/varied_prompts.jsonl``): rubric grades,
  two thirds trained on (by id hash), one third for calibration.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from laneway.router import (
    DEFAULT_TIER_MODELS,
    DEFAULT_TIERS,
    MMLU_PRO_TIER_MODELS,
    conversation_from_prompt,
)
from laneway.router._io import conversation_of

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path("/work/shared/data")
MMLU = SHARED / "mmlu-pro-outcomes.jsonl.gz"
ANSWERS = SHARED / "answers.jsonl.gz"
PROMPTS = ROOT / "tests" / "router" / "data"
VARIED = PROMPTS / "varied_prompts.jsonl"
INDEPENDENT = (PROMPTS / "independent_prompts.jsonl", PROMPTS / "independent_prompts_2.jsonl")
# Two fresh sets of 150 prompts by two more blind writers (2026-12-07), read once with the
# shipped router as it was; never trained or tuned on.
FRESH = (PROMPTS / "independent_prompts_3.jsonl", PROMPTS / "independent_prompts_4.jsonl")
VARIED_SHARE = 0.3  # total weight of the varied prompts against the MMLU-Pro rows
# The gain's length prior (``train_scorer(length_prior=...)``, logits per standard
# deviation of log length between the cheapest and the strongest tier). Chosen among
# 0 / 0.5 / 0.8 / 1.2 / 2 / 3 as the best mean of router − length over the 28
# leave-a-category-group-out cells of MMLU-Pro (benchmarks/router_v2.py --only transfer)
# among the values that keep the default profile's frontier share on the calibration set
# within 2 points of no prior: 0.8 +0.0003 (27.2%), 1.2 +0.0013 (27.7%); 2 had the best
# mean, +0.0020, but needed 35.1% (no prior: −0.0082, 27.9%).
LENGTH_PRIOR = 1.2


def tier_models() -> dict[str, tuple[str, ...]]:
    """Both data sets' models per tier (the router's default mapping)."""
    return dict(DEFAULT_TIER_MODELS)


def bucket(key: Any, modulus: int) -> int:
    digest = hashlib.blake2b(str(key).encode(), digest_size=4).digest()
    return int.from_bytes(digest) % modulus


def mmlu_rows(*, category_as_task: bool = False) -> list[dict[str, Any]]:
    with gzip.open(MMLU, "rt", encoding="utf-8") as handle:
        raw = [json.loads(line) for line in handle]
    return [
        {
            "id": r["id"],
            "question": r["question"],
            "category": r["category"],
            "conversation": conversation_from_prompt(r["question"]),
            "outcomes": {m: float(v) for m, v in r["outcomes"].items()},
            "task": f"mmlu-pro/{r['category']}" if category_as_task else None,
            "weight": 1.0,
        }
        for r in raw
    ]


def answer_rows() -> list[dict[str, Any]]:
    with gzip.open(ANSWERS, "rt", encoding="utf-8") as handle:
        raw = [json.loads(line) for line in handle]
    return [
        {
            "id": r["id"],
            "prompt": r["prompt"],
            "conversation": conversation_from_prompt(r["prompt"]),
            "outcomes": {m: float(v) for m, v in r["scores"].items() if v is not None},
            "answers": {m: a for m, a in r["answers"].items() if isinstance(a, str)},
            "task": r["task"],
            "weight": 1.0,
        }
        for r in raw
    ]


def rubric_outcomes(grade: int) -> dict[str, float]:
    """Every mapped MMLU-Pro model answers well iff its tier is at or above ``grade``."""
    return {
        m: 1.0 if i >= grade - 1 else 0.0
        for i, t in enumerate(DEFAULT_TIERS)
        for m in MMLU_PRO_TIER_MODELS[t]
    }


def rubric_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        rows.append(
            {
                "id": rec["id"],
                "record": rec,
                "grade": int(rec["grade"]),
                "conversation": conversation_of(rec),
                "outcomes": rubric_outcomes(int(rec["grade"])),
                "task": None,
                "weight": 1.0,
            }
        )
    return rows


def shipped_training_rows(
    mmlu: Sequence[dict[str, Any]],
    answers: Sequence[dict[str, Any]],
    varied: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The shipped recipe's rows: everything given, the varied prompts weighted to
    ``VARIED_SHARE`` of the MMLU-Pro rows (the caller removes held-out rows first)."""
    weight = VARIED_SHARE * len(mmlu) / max(len(varied), 1)
    return [*mmlu, *answers, *({**r, "weight": weight} for r in varied)]
