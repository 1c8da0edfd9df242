"""Experiment 1: denoised training targets (IRT / all-11-model labels) for the score head.

    python scripts/router/exp_targets.py [--rounds 1000]

Features stay the shipped 24 structural signals; only the score head's target changes.
IRT parameters are fitted on MMLU-Pro training rows only (the score column of
held-out rows is never used: the harness trains on train rows only).
"""

from __future__ import annotations

import argparse

import numpy as np
from exp_harness import evaluate, gain_targets, linear_fitter, load_all
from irt import fit_2pl, implied_gain

from laneway.router._training import DEFAULT_TIER_MODELS


def with_score(d, col):
    y = d["y"].copy()
    y[:, -1] = col
    return y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=0)
    args = ap.parse_args()
    d = load_all()
    outc, models = d["outc"], d["models"]
    f = [models.index(m) for m in DEFAULT_TIER_MODELS["frontier"]]
    s = [models.index(m) for m in DEFAULT_TIER_MODELS["simple"]]
    vy = d["vy"].copy()
    vy_signed = vy.copy()
    vy_signed[:, -1] = (vy[:, -2] - vy[:, 0] + 1) / 2
    r = args.rounds
    evaluate(d, d["s"], d["vs"], linear_fitter(), label="shipped target", rounds=r)
    evaluate(
        d,
        d["s"],
        d["vs"],
        linear_fitter(),
        y=with_score(d, gain_targets(outc, models, True)),
        vy=vy_signed,
        label="signed gain (s-w+1)/2",
        rounds=r,
    )
    # IRT fitted on all non-dev rows is fine for *targets* of training rows; the
    # harness never trains on held-out rows, so their targets are unused.
    for rasch in (True, False):
        a, b, th = fit_2pl(outc, rasch=rasch)
        print("abilities", dict(zip([m[:10] for m in models], np.round(th, 2), strict=True)))
        g = implied_gain(a, b, th, f, s)
        print("target corr with shipped", np.corrcoef(g, d["y"][:, -1])[0, 1])
        name = "rasch" if rasch else "2pl"
        evaluate(
            d,
            d["s"],
            d["vs"],
            linear_fitter(),
            y=with_score(d, np.clip(g, 0, 1)),
            label=f"{name} implied gain",
            rounds=r,
        )
        # difficulty head: predict P(avg model right) then bump
        pbar = outc.mean(1)
        yy = with_score(d, pbar)
        vyy = vy.copy()
        vyy[:, -1] = vy[:, :4].mean(1)
        for c in (0.45, 0.5, 0.55):

            def fitter(x, y, w, info=None, c=c):
                base = linear_fitter()(x, y, w, info)
                return lambda z: -((base(z) - c) ** 2)

            if not rasch:
                continue
            evaluate(d, d["s"], d["vs"], fitter, y=yy, vy=vyy, label=f"mean-11 bump@{c}", rounds=r)
    evaluate(
        d,
        d["s"],
        d["vs"],
        linear_fitter(),
        y=with_score(d, 1 - outc.mean(1)),
        label="1 - mean-11 (difficulty)",
        rounds=r,
    )


if __name__ == "__main__":
    main()
