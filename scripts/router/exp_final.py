"""The best variant of each experiment, with varied.py's 1,000-round paired bootstrap.

python scripts/router/exp_final.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from exp_features import null_topics, rarity_matrices
from exp_harness import evaluate, gain_targets, linear_fitter, load_all
from exp_within import blend_fitter, pairwise_fitter, ridge_fitter
from irt import fit_2pl, implied_gain

from laneway.router._features import STRUCTURAL_NAMES
from laneway.router._training import DEFAULT_TIER_MODELS

NS = len(STRUCTURAL_NAMES)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    d = load_all()
    s, vs, e, ve, cats, outc, models = (
        d["s"],
        d["vs"],
        d["e"],
        d["ve"],
        d["cats"],
        d["outc"],
        d["models"],
    )
    rf, vrf = rarity_matrices(d)
    f = [models.index(m) for m in DEFAULT_TIER_MODELS["frontier"]]
    sm = [models.index(m) for m in DEFAULT_TIER_MODELS["simple"]]
    a, b, th = fit_2pl(outc)
    y_2pl = d["y"].copy()
    y_2pl[:, -1] = np.clip(implied_gain(a, b, th, f, sm), 0, 1)
    y_diff = d["y"].copy()
    y_diff[:, -1] = 1 - outc.mean(1)
    vy_diff = d["vy"].copy()
    vy_diff[:, -1] = 1 - d["vy"][:, :4].mean(1)
    y_signed = d["y"].copy()
    y_signed[:, -1] = gain_targets(outc, models, True)

    def nulled(k):
        def tf(x, vx, train):
            ep, vep = null_topics(x[:, NS:], vx[:, NS:], train, cats, k)
            return np.hstack([x[:, :NS], ep]), np.hstack([vx[:, :NS], vep])

        return tf

    se, vse = np.hstack([s, e]), np.hstack([vs, ve])
    # struct + static embedding, training categories' topic directions nulled, 8 PCs.
    nulled_emb = dict(x=se, vx=vse, fitter=linear_fitter(30000.0), fold_transform=nulled(8))
    runs = [
        dict(
            label="shipped (24 struct, 0/1 pair-gain target)",
            x=s,
            vx=vs,
            fitter=linear_fitter(),
            y=d["y_pairgain"],
            vy=d["vy_pairgain"],
        ),
        dict(label="1: 2PL-IRT implied gain target", x=s, vx=vs, fitter=linear_fitter(), y=y_2pl),
        dict(
            label="1: 11-model difficulty target",
            x=s,
            vx=vs,
            fitter=linear_fitter(),
            y=y_diff,
            vy=vy_diff,
        ),
        dict(label="1: signed gain target", x=s, vx=vs, fitter=linear_fitter(), y=y_signed),
        dict(label="2: + static emb, topic-nulled, 8 PCs, l2 3e4", **nulled_emb),
        dict(label="2: + static emb raw 64, l2 3e3", x=se, vx=vse, fitter=linear_fitter()),
        dict(
            label="3: + rarity/form (12)",
            x=np.hstack([s, rf]),
            vx=np.hstack([vs, vrf]),
            fitter=linear_fitter(),
        ),
        dict(label="4: pairwise rank loss, within category", x=s, vx=vs, fitter=pairwise_fitter(d)),
        dict(
            label="x: ridge within-category l2 3e4",
            x=s,
            vx=vs,
            fitter=ridge_fitter(d, 30000.0, True),
        ),
        dict(
            label="x: blend 0.7 router + 0.3 length",
            x=s,
            vx=vs,
            fitter=blend_fitter(linear_fitter(), 0.7),
        ),
        dict(label="combo: difficulty target + nulled emb 8", y=y_diff, vy=vy_diff, **nulled_emb),
    ]
    results = []
    for run in runs:
        x, vx, fitter, label = run.pop("x"), run.pop("vx"), run.pop("fitter"), run.pop("label")
        results.append(evaluate(d, x, vx, fitter, label=label, rounds=1000, **run))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
