"""Evaluate the contextual-encoder probe (``exp_encoder_probe.py``'s output) with the
harness: does a real sentence encoder beat prompt length on held-out categories?

    python scripts/router/exp_encoder_eval.py EMB.npz [--rounds 0|1000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from exp_features import null_topics
from exp_harness import evaluate, linear_fitter, load_all
from exp_within import ridge_fitter

from laneway.router._features import STRUCTURAL_NAMES

NS = len(STRUCTURAL_NAMES)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("emb", type=Path)
    ap.add_argument("--rounds", type=int, default=0)
    args = ap.parse_args()
    r = args.rounds
    d = load_all()
    with np.load(args.emb) as z:
        e, ve = z["e"].astype(np.float64), z["ve"].astype(np.float64)
    s, vs, cats = d["s"], d["vs"], d["cats"]
    x, vx = np.hstack([s, e]), np.hstack([vs, ve])
    for l2 in (3000.0, 30000.0, 300000.0):
        evaluate(d, x, vx, linear_fitter(l2), label=f"struct + ctx384 l2={l2:g}", rounds=r)
    for k in (None, 32, 8):

        def tf(x, vx, train, k=k):
            ep, vep = null_topics(x[:, NS:], vx[:, NS:], train, cats, k)
            return np.hstack([x[:, :NS], ep]), np.hstack([vx[:, :NS], vep])

        for l2 in (3000.0, 30000.0):
            evaluate(
                d,
                x,
                vx,
                linear_fitter(l2),
                fold_transform=tf,
                label=f"struct + nulled ctx k={k} l2={l2:g}",
                rounds=r,
            )
    evaluate(
        d, x, vx, ridge_fitter(d, 30000.0, True), label="ridge within-cat struct+ctx", rounds=r
    )


def control() -> None:
    """Categories-seen control for struct, struct+static emb, struct+ctx emb."""
    import sys

    from exp_harness import evaluate_random

    d = load_all()
    with np.load(sys.argv[2]) as z:
        e = z["e"].astype(np.float64)
    evaluate_random(d, d["s"], linear_fitter(), "struct")
    evaluate_random(d, np.hstack([d["s"], d["e"]]), linear_fitter(), "struct + static emb")
    evaluate_random(d, np.hstack([d["s"], e]), linear_fitter(), "struct + ctx emb")
    evaluate_random(d, np.hstack([d["s"], e]), linear_fitter(300.0), "struct + ctx emb l2=300")


if __name__ == "__main__":
    import sys

    if sys.argv[1] == "control":
        control()
    else:
        main()
