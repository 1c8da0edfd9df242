"""Paired bootstrap (1,000 rounds) of the difficulty-target recipe against the shipped
recipe, per held-out cell and on the varied set's 5-fold CV.

    python scripts/router/exp_compare.py
"""

from __future__ import annotations

import numpy as np
from exp_harness import linear_fitter, load_all, paired_ci
from varied import FOLDS, PAIRS

from laneway.router._metrics import pair_metrics


def scores(d, y, vy, share=0.3):
    fit = linear_fitter()
    out, oof = {}, np.empty(len(d["var"]))
    n_v = len(d["var"])
    for held in FOLDS:
        test = np.isin(d["cats"], held)
        tr = ~test & ~d["dev"]
        w = np.concatenate([np.ones(tr.sum()), np.full(n_v, share * tr.sum() / n_v)])
        p = fit(np.vstack([d["s"][tr], d["vs"]]), np.vstack([y[tr], vy]), w)
        out[held[0]] = (test, p(d["s"][test]))
    for k in range(5):
        vm = d["vfold"] != k
        tr = ~d["dev"]
        w = np.concatenate([np.ones(tr.sum()), np.full(vm.sum(), share * tr.sum() / vm.sum())])
        p = fit(np.vstack([d["s"][tr], d["vs"][vm]]), np.vstack([y[tr], vy[vm]]), w)
        oof[d["vfold"] == k] = p(d["vs"][d["vfold"] == k])
    return out, oof


def main() -> None:
    d = load_all()
    ynew, vynew = d["y"].copy(), d["vy"].copy()
    ynew[:, -1] = 1 - d["y"][:, :4].mean(1)
    vynew[:, -1] = 1 - d["vy"][:, :4].mean(1)
    old, vold = scores(d, d["y_pairgain"], d["vy_pairgain"])
    new, vnew = scores(d, ynew, vynew)
    for held in FOLDS:
        test, a = new[held[0]]
        _, b = old[held[0]]
        for strong, weak in PAIRS:
            S = d["outc"][test, d["models"].index(strong)]
            W = d["outc"][test, d["models"].index(weak)]
            ci = paired_ci(a, b, S, W)
            print(
                f"{held[0]:10s} {strong[:6]} new {pair_metrics(a, S, W).apgr:.3f} "
                f"old {pair_metrics(b, S, W).apgr:.3f} new-old [{ci[0]:+.3f}, {ci[1]:+.3f}]"
            )
    S, W = d["vy"][:, -2], d["vy"][:, 0]
    ci = paired_ci(vnew, vold, S, W)
    print(
        f"varied new {pair_metrics(vnew, S, W).apgr:.3f} old {pair_metrics(vold, S, W).apgr:.3f} "
        f"new-old [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    )


if __name__ == "__main__":
    main()
