"""Follow-up of the best target: score head = difficulty (1 − mean outcome).

    python scripts/router/exp_difficulty.py

Attributes the gain (MMLU-Pro target vs the varied rows' target) and compares the
11-model mean with the mean of the four tier means (``1 − mean(tier columns)``, the
definition ``targets_for`` can compute for any outcome rows; for rubric rows it is
(grade − 1) / 3 ... / 4 steps), plus the varied share.
"""

from __future__ import annotations

from exp_harness import evaluate, linear_fitter, load_all


def main() -> None:
    d = load_all()
    s, vs, outc = d["s"], d["vs"], d["outc"]
    y11 = d["y"].copy()
    y11[:, -1] = 1 - outc.mean(1)
    ytier = d["y"].copy()
    ytier[:, -1] = 1 - d["y"][:, :4].mean(1)
    vy_diff = d["vy"].copy()
    vy_diff[:, -1] = 1 - d["vy"][:, :4].mean(1)
    lf = linear_fitter()
    evaluate(d, s, vs, lf, y=y11, label="11-model difficulty, varied gain tgt", rounds=0)
    evaluate(d, s, vs, lf, vy=vy_diff, label="pair gain, varied difficulty tgt", rounds=0)
    for share in (0.1, 0.3, 0.5):
        evaluate(
            d,
            s,
            vs,
            lf,
            y=ytier,
            vy=vy_diff,
            share=share,
            label=f"tier-mean difficulty share {share}",
            rounds=1000 if share == 0.3 else 0,
        )
    for l2 in (1000.0, 10000.0):
        evaluate(
            d,
            s,
            vs,
            linear_fitter(l2),
            y=ytier,
            vy=vy_diff,
            label=f"tier-mean difficulty l2 {l2:g}",
            rounds=0,
        )


if __name__ == "__main__":
    main()
