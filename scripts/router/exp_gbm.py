"""Control: gradient-boosted trees (scikit-learn, build venv only) on the structural +
rarity/form signals, to see whether non-linearity helps on held-out categories.

    PYTHONPATH=src /work/router-build-venv/bin/python scripts/router/exp_gbm.py
"""

from __future__ import annotations

import numpy as np
from exp_features import rarity_matrices
from exp_harness import evaluate, load_all
from sklearn.ensemble import HistGradientBoostingRegressor


def gbm_fitter(depth: int, iters: int, lr: float = 0.05):
    def fit(x, y, w, info=None):
        m = HistGradientBoostingRegressor(
            max_depth=depth,
            max_iter=iters,
            learning_rate=lr,
            min_samples_leaf=100,
            l2_regularization=1.0,
            random_state=0,
        )
        m.fit(x, y[:, -1], sample_weight=w)
        return m.predict

    return fit


def main() -> None:
    d = load_all()
    rf, vrf = rarity_matrices(d)
    for depth, iters in ((2, 100), (3, 200)):
        evaluate(
            d,
            d["s"],
            d["vs"],
            gbm_fitter(depth, iters),
            label=f"gbm struct d={depth} it={iters}",
            rounds=0,
        )
        evaluate(
            d,
            np.hstack([d["s"], rf]),
            np.hstack([d["vs"], vrf]),
            gbm_fitter(depth, iters),
            label=f"gbm struct+rarity d={depth} it={iters}",
            rounds=0,
        )


if __name__ == "__main__":
    main()
