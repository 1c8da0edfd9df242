"""Experiments: hashed lexical models and auxiliary "answer form" targets (numpy only).

    python scripts/router/exp_lexical.py [--rounds 0|1000] [--only NAME ...] [--bits 16]
                                         [--inner-k 5]

Recipes (every hyper-parameter chosen on training categories only, by group CV):

* ``lex``: hashed word unigrams + bigrams of the question text (never the options;
  lower-cased, numbers -> one token), binary, row-normalised (1/sqrt(n features)),
  2^16 buckets (crc32) + bias, ridge (conjugate gradients on a hand-rolled CSR matrix)
  fitted to a target *demeaned per training category*; L2 in {3, 10, 30, 100} picked by
  group CV (training categories dealt into 5 groups; within-category correlation of
  out-of-fold predictions with the demeaned target). Its prediction is a 25th feature
  beside the 24 structural signals: out-of-fold for the training rows (honest for the
  stacker), the full training-set model for test, dev and varied rows. Targets:
  difficulty (``lex``), frontier-simple signed gain (``lex-gain``), simple-tier failure
  1 - y[:, 0] (``lex-weak``), the four tier failures (``lex-tiers``), combinations.
  Variants: pooled target (``lexpool``), topic-free buckets only (``lex-generic``),
  char 4-grams (``lex-char*``), category-balanced weights (``lex-weak-bal``), router +
  alpha * lexical with alpha by inner CV (``lex-blend``, ``lex-gain-blend``).
* ``upper`` / ``aux-*``: labels that only exist at training time (options, source
  field) -- numeric gold answer, numeric options share, mean log option length, non-MMLU
  source, number of options. First as TRUE values (upper bound; MMLU only, share 0,
  varied set off), then predicted from the question text by the same hashed ridge (not
  demeaned) and stacked the same way.

Every fold's lexical / auxiliary model is built inside ``fold_transform`` from the
harness's training mask only.

Results (1,000 rounds; mean APGR over 8 cells, cells clear of length, varied CV APGR):
shipped 0.5605 4/8 0.684; lex (difficulty) 0.5620 4/8 0.681; lex-gain 0.5640 4/8 0.682;
lex-weak 0.5637 5/8 0.681 (2^14 buckets: 0.5632 4/8; 2^18: 0.5640 5/8; inner k=10:
0.5636 5/8; category-balanced: 0.5639 5/8; the fifth cell, other/psychology
gemini/mixtral, has a lower bound of +0.000 to +0.001, -0.0002 on one of 5 bootstrap
seeds); lex diff+gain 0.5638 4/8 0.680; diff+gain+weak 0.5639 4/8 0.678; 4 tier targets
0.5607 4/8 0.677; words + char 4-grams (weak) 0.5638 5/8 0.680; char 4-grams difficulty
0.5613 4/8, gain 0.5637 4/8; blends 0.5619 / 0.5625 (varied 0.682 / 0.670); predicted
numeric answer 0.5608 4/8 0.684. TRUE labels (MMLU-only base 0.5621 4/8): numeric
answer 0.5626, option length 0.5605, non-MMLU source 0.5632, n options 0.5624, all five
0.5637 -- all 4/8. Nothing reaches the math/gemini (-0.017) or physics cells.
"""

from __future__ import annotations

import argparse
import itertools
import re
import time
import zlib

import numpy as np
from exp_harness import evaluate, gain_targets, linear_fitter, load_all

D_BITS = 16
TOKEN = re.compile(r"[a-z]+|\d+(?:[.,]\d+)*|[$%=^+*/<>∫∑√π×°]")


# ----------------------------------------------------------------------------- features
def tokens(text: str) -> list[str]:
    out = []
    for t in TOKEN.findall(text.lower()):
        out.append("0" if t[0].isdigit() else t)
    return out


def char_grams(text: str, n: int = 4) -> set[str]:
    t = " " + re.sub(r"\s+", " ", re.sub(r"\d", "0", text.lower())).strip() + " "
    return {"c" + t[i : i + n] for i in range(len(t) - n + 1)}


def hashed_rows(
    texts: list[str], bits: int = D_BITS, bigrams: bool = True, chars: bool = False
) -> dict:
    """CSR (binary, row-normalised) over 2^bits buckets + 1 bias column (index 2^bits)."""
    dim = 1 << bits
    mask = dim - 1
    indices, indptr = [], [0]
    for text in texts:
        tk = tokens(text)
        grams = set(tk)
        if bigrams:
            grams.update(a + " " + b for a, b in itertools.pairwise(tk))
        if chars:
            grams = char_grams(text)
        h = {zlib.crc32(g.encode()) & mask for g in grams}
        h.add(dim)
        indices.extend(sorted(h))
        indptr.append(len(indices))
    indices = np.array(indices, dtype=np.int64)
    indptr = np.array(indptr, dtype=np.int64)
    lens = np.diff(indptr)
    data = np.repeat(1.0 / np.sqrt(lens - 1 + 1e-9), lens)
    data[indptr[1:] - 1] = 1.0  # bias column (last, since dim is the largest index)
    return {"indices": indices, "indptr": indptr, "data": data, "lens": lens, "dim": dim + 1}


def matvec(x: dict, b: np.ndarray) -> np.ndarray:
    return np.add.reduceat(x["data"] * b[x["indices"]], x["indptr"][:-1])


def rmatvec(x: dict, u: np.ndarray) -> np.ndarray:
    return np.bincount(
        x["indices"], weights=x["data"] * np.repeat(u, x["lens"]), minlength=x["dim"]
    )


def ridge_cg(x: dict, t: np.ndarray, w: np.ndarray, lam: float, b0=None, iters=300, tol=1e-5):
    """argmin sum w (Xb - t)^2 + lam |b|^2 by conjugate gradients."""
    rhs = rmatvec(x, w * t)
    b = np.zeros(x["dim"]) if b0 is None else b0.copy()
    r = rhs - (rmatvec(x, w * matvec(x, b)) + lam * b)
    p = r.copy()
    rr = r @ r
    stop = tol * tol * (rhs @ rhs)
    for _ in range(iters):
        if rr <= stop:
            break
        ap = rmatvec(x, w * matvec(x, p)) + lam * p
        alpha = rr / (p @ ap)
        b += alpha * p
        r -= alpha * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return b


def demean(t: np.ndarray, groups: np.ndarray, w: np.ndarray) -> np.ndarray:
    t = t.copy()
    for g in np.unique(groups):
        m = (groups == g) & (w > 0)
        if m.any():
            t[groups == g] -= np.average(t[m], weights=w[m])
    return t


def within_corr(p: np.ndarray, t: np.ndarray, groups: np.ndarray) -> float:
    """Correlation of predictions and targets after removing each group's mean (pooled)."""
    p = demean(p, groups, np.ones(len(p)))
    t = demean(t, groups, np.ones(len(t)))
    return float(np.corrcoef(p, t)[0, 1])


def inner_groups(cats: np.ndarray, train: np.ndarray, k: int = 5) -> np.ndarray:
    """Training categories dealt into k groups (largest first, round-robin); -1 elsewhere."""
    names = sorted(set(cats[train]), key=lambda c: -int((cats[train] == c).sum()))
    gid = np.full(len(cats), -1)
    for i, c in enumerate(names):
        gid[(cats == c) & train] = i % k
    return gid


def generic_mask(x: dict, cats: np.ndarray, rows: np.ndarray, min_df: float, min_cats: int):
    """Buckets present in >= min_df of the rows of at least (n categories - slack) categories."""
    names = sorted(set(cats[rows]))
    row_of = np.repeat(np.arange(len(x["lens"])), x["lens"])
    hits = np.zeros(x["dim"])
    for c in names:
        m = rows & (cats == c)
        df = np.bincount(x["indices"], weights=m[row_of].astype(float), minlength=x["dim"])
        hits += df / max(m.sum(), 1) >= min_df
    keep = hits >= len(names) - min_cats
    keep[-1] = True
    return keep


def masked(x: dict, keep: np.ndarray) -> dict:
    y = dict(x)
    y["data"] = x["data"] * keep[x["indices"]]
    return y


def stacked_lexical(
    x: dict,
    xv: dict,
    t: np.ndarray,
    cats: np.ndarray,
    train: np.ndarray,
    *,
    demeaned: bool,
    lams=(3.0, 10.0, 30.0, 100.0),
    k: int = 5,
    verbose: bool = False,
    generic: tuple[float, int] | None = None,
    balanced: bool = False,
):
    """(prediction for every MMLU row, for every varied row, chosen lambda, inner scores).

    Training rows get out-of-fold predictions (group CV over training categories, the
    lambda chosen on those same folds); all other rows the model fitted on all training rows.
    """
    w_all = train.astype(float)
    if balanced:  # every training category the same total weight
        for c in np.unique(cats[train]):
            m = train & (cats == c)
            w_all[m] = 1000.0 / m.sum()
    tt = demean(t, cats, w_all) if demeaned else t - np.average(t, weights=w_all)
    gid = inner_groups(cats, train, k)
    oof = {lam: np.zeros(len(t)) for lam in lams}
    for g in range(k):
        w = w_all * (gid != g)
        xg = x if generic is None else masked(x, generic_mask(x, cats, w > 0, *generic))
        tg = demean(t, cats, w) if demeaned else t - np.average(t, weights=w)
        b = None
        for lam in sorted(lams, reverse=True):
            b = ridge_cg(xg, tg, w, lam, b0=b)
            oof[lam][gid == g] = matvec(xg, b)[gid == g]
    score = {
        lam: (
            within_corr(oof[lam][train], tt[train], cats[train])
            if demeaned
            else float(np.corrcoef(oof[lam][train], tt[train])[0, 1])
        )
        for lam in lams
    }
    best = max(score, key=score.get)
    if generic is not None:
        keep = generic_mask(x, cats, train, *generic)
        x, xv = masked(x, keep), masked(xv, keep)
        if verbose:
            print("   generic buckets kept", int(keep.sum()), flush=True)
    b = ridge_cg(x, tt, w_all, best)
    full = matvec(x, b)
    pred = np.where(train, oof[best], full)
    if verbose:
        print("   inner CV", {k_: round(v, 4) for k_, v in score.items()}, "->", best, flush=True)
    return pred, matvec(xv, b), best, score


# ----------------------------------------------------------------------------- labels
NUM = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


def numeric_share(opt: str) -> float:
    """Share of an option's non-space characters that belong to numbers / units-free math."""
    s = re.sub(r"\s+", "", opt)
    if not s:
        return 0.0
    return sum(len(m) for m in NUM.findall(s)) / len(s)


def aux_labels(mmlu: list[dict]) -> dict[str, np.ndarray]:
    gold = [r["options"][ord(r["answer"]) - 65] for r in mmlu]
    return {
        "numeric_answer": np.array([float(numeric_share(g) >= 0.3) for g in gold]),
        "numeric_options": np.array(
            [np.mean([numeric_share(o) >= 0.3 for o in r["options"]]) for r in mmlu]
        ),
        "option_length": np.array(
            [np.mean([np.log1p(len(o)) for o in r["options"]]) for r in mmlu]
        ),
        "non_mmlu_source": np.array([float(not r["source"].startswith("ori_mmlu")) for r in mmlu]),
        "n_options": np.array([float(len(r["options"])) for r in mmlu]),
    }


def blend_fitter(
    d,
    n_struct: int = 24,
    alphas=(0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
    k: int = 5,
    l2: float = 3000.0,
):
    """Router (structural heads) score + alpha * standardised extra column(s) (their sum);
    alpha picked by group CV over the training categories (mean inner APGR, both pairs)."""
    from varied import PAIRS

    from laneway.router._linear import LinearHeads
    from laneway.router._metrics import pair_metrics

    def fit(xx, y, w, info):
        n_m = info["n_mmlu"]
        tm = info["train_mask"]
        cats = d["cats"][tm]
        gid = inner_groups(cats, np.ones(n_m, bool), k)
        gid = np.concatenate([gid, np.full(len(xx) - n_m, -1)])
        extra = xx[:, n_struct:].sum(axis=1)
        mu_e, sd_e = np.average(extra, weights=w), np.sqrt(np.cov(extra, aweights=w))
        ez = (extra - mu_e) / sd_e
        oof = np.zeros(len(xx))
        for g in range(k):
            m = gid != g
            h = LinearHeads.fit(xx[m, :n_struct], y[m], l2, w[m])
            oof[gid == g] = h.predict(xx[gid == g, :n_struct])[:, -1]
        sd_r = np.sqrt(np.cov(oof[:n_m]))
        outc = d["outc"][tm]
        res = {}
        for a in alphas:
            sc = oof[:n_m] + a * sd_r * ez[:n_m]
            vals = []
            for g in range(k):
                m = gid[:n_m] == g
                for strong, weak in PAIRS:
                    S = outc[m, d["models"].index(strong)]
                    W = outc[m, d["models"].index(weak)]
                    vals.append(pair_metrics(sc[m], S, W).apgr)
            res[a] = float(np.mean(vals))
        best = max(res, key=res.get)
        print(
            "   blend inner APGR", {a: round(v, 4) for a, v in res.items()}, "->", best, flush=True
        )
        h = LinearHeads.fit(xx[:, :n_struct], y, l2, w)
        return lambda z: (
            h.predict(z[:, :n_struct])[:, -1]
            + best * sd_r * (z[:, n_struct:].sum(axis=1) - mu_e) / sd_e
        )

    return fit


# ----------------------------------------------------------------------------- transforms
INNER_K = 5


def lexical_transform(d, x, xv, targets, cache: dict, verbose=True, generic=None, balanced=False):
    """fold_transform: structural signals + one stacked hashed-ridge prediction per target."""

    def tf(s, vs, train):
        key = train.tobytes()
        if key not in cache:
            cols, vcols = [], []
            for name, t, demeaned in targets:
                p, pv, lam, _ = stacked_lexical(
                    x,
                    xv,
                    t,
                    d["cats"],
                    train,
                    demeaned=demeaned,
                    generic=generic,
                    verbose=verbose,
                    k=INNER_K,
                    balanced=balanced,
                )
                if verbose:
                    held = sorted(set(d["cats"][~train & ~d["dev"]]))[:2]
                    print(f"   [{name}] held {held} lam {lam}", flush=True)
                cols.append(p)
                vcols.append(pv)
            cache[key] = (np.column_stack(cols), np.column_stack(vcols))
        a, av = cache[key]
        return np.hstack([s, a]), np.hstack([vs, av])

    return tf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--bits", type=int, default=D_BITS)
    ap.add_argument("--inner-k", type=int, default=5)
    args = ap.parse_args()
    global INNER_K
    INNER_K = args.inner_k
    r = args.rounds
    d = load_all()
    s, vs = d["s"], d["vs"]

    def want(name):
        return args.only is None or name in args.only

    t0 = time.time()
    x = hashed_rows([row["question"] for row in d["mmlu"]], args.bits)
    xv = hashed_rows(
        [c.system + "\n" + c.last_user for c in (v["conversation"] for v in d["var"])], args.bits
    )
    print(f"hashed: nnz {len(x['indices'])} in {time.time() - t0:.1f}s", flush=True)
    diff = d["y"][:, -1]
    labels = aux_labels(d["mmlu"])

    if want("base"):
        evaluate(d, s, vs, linear_fitter(), label="shipped: 24 struct", rounds=r)

    if want("upper"):
        # Upper bound: TRUE auxiliary labels as extra features (MMLU-Pro only, no varied set).
        evaluate(
            d,
            s,
            vs,
            linear_fitter(),
            label="24 struct, MMLU only",
            rounds=r,
            share=0.0,
            varied=False,
        )
        for name, v in labels.items():
            xx = np.column_stack([s, v])
            evaluate(
                d, xx, vs, linear_fitter(), label=f"TRUE {name}", rounds=r, share=0.0, varied=False
            )
        xx = np.column_stack([s, *labels.values()])
        evaluate(
            d, xx, vs, linear_fitter(), label="TRUE all 5 labels", rounds=r, share=0.0, varied=False
        )
        for name, v in labels.items():
            m = ~d["dev"]
            print(
                f"   {name}: corr with difficulty {np.corrcoef(v[m], diff[m])[0, 1]:+.3f}, "
                f"within-cat {within_corr(v[m], diff[m], d['cats'][m]):+.3f}",
                flush=True,
            )

    if want("lex"):
        tf = lexical_transform(d, x, xv, [("diff-demeaned", diff, True)], {})
        evaluate(
            d, s, vs, linear_fitter(), label="+ lex demeaned (stacked)", rounds=r, fold_transform=tf
        )
    if want("lexpool"):
        tf = lexical_transform(d, x, xv, [("diff-pooled", diff, False)], {})
        evaluate(
            d, s, vs, linear_fitter(), label="+ lex pooled (stacked)", rounds=r, fold_transform=tf
        )
    gain = gain_targets(d["outc"], d["models"], signed=True)
    variants = {
        "lex-gain": [("gain-demeaned", gain, True)],
        "lex-weak": [("simple-fail-demeaned", 1.0 - d["y"][:, 0], True)],
        "lex+aux": [
            ("diff-demeaned", diff, True),
            ("numeric_answer", labels["numeric_answer"], False),
            ("non_mmlu_source", labels["non_mmlu_source"], False),
        ],
        "lex+gain": [("diff-demeaned", diff, True), ("gain-demeaned", gain, True)],
    }
    for name, targets in variants.items():
        if want(name):
            tf = lexical_transform(d, x, xv, targets, {})
            evaluate(
                d,
                s,
                vs,
                linear_fitter(),
                label="+ " + name + " (stacked)",
                rounds=r,
                fold_transform=tf,
            )
    if want("lex-blend"):
        tf = lexical_transform(d, x, xv, [("diff-demeaned", diff, True)], {})
        evaluate(
            d,
            s,
            vs,
            blend_fitter(d),
            label="router + a*lex demeaned (inner CV a)",
            rounds=r,
            fold_transform=tf,
        )
    if want("lex-gain-blend"):
        tf = lexical_transform(d, x, xv, [("gain-demeaned", gain, True)], {})
        evaluate(
            d,
            s,
            vs,
            blend_fitter(d),
            label="router + a*lex-gain (inner CV a)",
            rounds=r,
            fold_transform=tf,
        )
    if want("lex-char") or want("lex-char-gain"):
        xc = hashed_rows([row["question"] for row in d["mmlu"]], chars=True)
        xcv = hashed_rows(
            [c.system + "\n" + c.last_user for c in (v["conversation"] for v in d["var"])],
            chars=True,
        )
        for name, t in (("lex-char", diff), ("lex-char-gain", gain)):
            if want(name):
                tf = lexical_transform(d, xc, xcv, [(name, t, True)], {})
                evaluate(
                    d,
                    s,
                    vs,
                    linear_fitter(),
                    label=f"+ {name} 4-grams demeaned (stacked)",
                    rounds=r,
                    fold_transform=tf,
                )
    if want("lex-weak-bal"):
        tf = lexical_transform(
            d, x, xv, [("simple-fail-demeaned", 1.0 - d["y"][:, 0], True)], {}, balanced=True
        )
        evaluate(
            d,
            s,
            vs,
            linear_fitter(),
            label="+ lex-weak category-balanced (stacked)",
            rounds=r,
            fold_transform=tf,
        )
    if want("lex-tiers"):
        tiers = [(f"tier{i}-fail-demeaned", 1.0 - d["y"][:, i], True) for i in range(4)]
        tf = lexical_transform(d, x, xv, tiers, {})
        evaluate(
            d,
            s,
            vs,
            linear_fitter(),
            label="+ lex 4 tier targets (stacked)",
            rounds=r,
            fold_transform=tf,
        )
    if want("lex-weak-wc"):
        xc = hashed_rows([row["question"] for row in d["mmlu"]], chars=True)
        xcv = hashed_rows(
            [c.system + "\n" + c.last_user for c in (v["conversation"] for v in d["var"])],
            chars=True,
        )
        wk = 1.0 - d["y"][:, 0]
        tf1 = lexical_transform(d, x, xv, [("weak-words", wk, True)], {})
        tf2 = lexical_transform(d, xc, xcv, [("weak-chars", wk, True)], {})

        def tf(s_, vs_, train):
            a, av = tf1(s_, vs_, train)
            b, bv = tf2(s_, vs_, train)
            return np.hstack([a, b[:, -1:]]), np.hstack([av, bv[:, -1:]])

        evaluate(
            d,
            s,
            vs,
            linear_fitter(),
            label="+ lex-weak words + char 4-grams",
            rounds=r,
            fold_transform=tf,
        )
    if want("lex-all"):
        tf = lexical_transform(
            d,
            x,
            xv,
            [
                ("diff-demeaned", diff, True),
                ("gain-demeaned", gain, True),
                ("simple-fail-demeaned", 1.0 - d["y"][:, 0], True),
            ],
            {},
        )
        evaluate(
            d,
            s,
            vs,
            linear_fitter(),
            label="+ lex diff+gain+weak (stacked)",
            rounds=r,
            fold_transform=tf,
        )
    for min_df, slack in ((0.005, 1), (0.02, 0)):
        name = f"lex-generic-{min_df}-{slack}"
        if want(name) or want("lex-generic"):
            tf = lexical_transform(
                d, x, xv, [("diff-demeaned", diff, True)], {}, generic=(min_df, slack)
            )
            evaluate(
                d,
                s,
                vs,
                linear_fitter(),
                label=f"+ lex demeaned generic {min_df}/{slack}",
                rounds=r,
                fold_transform=tf,
            )
    for name in ("numeric_answer", "option_length", "non_mmlu_source"):
        if want("aux-" + name):
            tf = lexical_transform(d, x, xv, [(name, labels[name], False)], {})
            evaluate(
                d, s, vs, linear_fitter(), label=f"+ predicted {name}", rounds=r, fold_transform=tf
            )


if __name__ == "__main__":
    main()
