"""Router v2 acceptance figures: gain routing, task identity, transfer and cascades.

    python benchmarks/router_v2.py [--rounds 1000] [--only halves,transfer,rubric,cascade]

Every figure is APGR (CPT(50%) where the cascade is compared) with a 95% percentile
bootstrap interval over prompts, and paired intervals for differences (the same
resampled prompts for both methods). Sections:

* ``halves``: MMLU-Pro split into halves by a hash of the question text; per
  strong/weak pair, a router trained on the train half's outcomes of that pair (text
  only, then with the category as the task) against prompt length and a per-category
  gain table learned on the train half.
* ``transfer``: the shipped recipe retrained with four groups of MMLU-Pro categories
  held out in turn (never trained on), scored per held-out category against length:
  without the length prior, with the prior chosen on the other groups only (nested)
  and with the shipped prior (chosen on all four groups' cells).
* ``rubric``: the shipped router on the independent rubric sets (each scored once
  before this revision: a second look, reported as such).
* ``cascade``: the answers data split into halves by a hash of the prompt id; per
  pair, the learned verifier (its L2 and signal set chosen on five folds of the train
  half, then trained on the whole train half) reading the weak model's answer, against
  the best pre-routing router for the pair (length, the text gain router, the text +
  task gain router, all trained on the train half; the best picked on the test half,
  which favours the baseline), with paired intervals for APGR and CPT(50%).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from laneway.router import (
    DEFAULT_TIERS,
    Verifier,
    load_router,
    pair_metrics,
    train_scorer,
)
from laneway.router._fit import feature_matrix
from laneway.router._promote import gain_scores
from router_data import (
    INDEPENDENT,
    LENGTH_PRIOR,
    VARIED,
    answer_rows,
    bucket,
    mmlu_rows,
    rubric_rows,
    shipped_training_rows,
    tier_models,
)

FloatArray = npt.NDArray[np.float64]
Row = dict[str, Any]

MMLU_PAIRS = (
    ("gpt-4o-2024-05-13", "llama-3.1-8b-instruct"),
    ("gemini-1.5-pro-002", "mixtral-8x7b-instruct-v0.1"),
    ("gpt-4o-2024-05-13", "mistral-7b-instruct-v0.2"),
    ("llama-3.1-70b-instruct", "phi-3-mini-4k-instruct"),
)
TRANSFER_PAIRS = MMLU_PAIRS[:2]
FOLDS = (
    ("math", "law", "biology", "history"),
    ("physics", "economics", "philosophy", "engineering"),
    ("chemistry", "business", "health", "computer science"),
    ("other", "psychology"),
)
ANSWER_PAIRS = (
    ("gpt-4o-2024-08-06", "gpt-3.5-turbo-0125"),
    ("Meta-Llama-3.1-405B-Instruct", "Meta-Llama-3.1-8B-Instruct"),
    ("Qwen2.5-72B-Instruct", "Qwen2.5-7B-Instruct"),
    ("claude-3-5-sonnet-20241022", "claude-3-haiku-20240307"),
    ("gpt-4o-2024-05-13", "gemma-2-9b-it"),
)


class Boot:
    """Shared bootstrap resamples so that differences are paired."""

    def __init__(self, n: int, rounds: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.idx = [rng.integers(0, n, n) for _ in range(rounds)]

    def stat(
        self, fn: Callable[[npt.NDArray[np.intp]], float]
    ) -> tuple[float, float, float, FloatArray]:
        values = np.array([fn(i) for i in self.idx])
        lo, hi = np.percentile(values, [2.5, 97.5])
        return fn(np.arange(len(self.idx[0]))), float(lo), float(hi), values


def apgr_fn(score: FloatArray, strong: FloatArray, weak: FloatArray) -> Callable[..., float]:
    return lambda i: pair_metrics(score[i], strong[i], weak[i]).apgr


def cpt_fn(score: FloatArray, strong: FloatArray, weak: FloatArray) -> Callable[..., float]:
    return lambda i: pair_metrics(score[i], strong[i], weak[i]).cpt50


def fmt(v: float, lo: float, hi: float, sign: bool = False) -> str:
    f = "{:+.3f}" if sign else "{:.3f}"
    return f"{f.format(v)} [{f.format(lo)}, {f.format(hi)}]"


def compare(
    scores: Mapping[str, FloatArray],
    strong: FloatArray,
    weak: FloatArray,
    diffs: Sequence[tuple[str, str]],
    rounds: int,
) -> tuple[dict[str, str], dict[str, str], dict[str, tuple[float, float, float]]]:
    """(APGR cells, difference cells, differences as numbers)."""
    boot = Boot(len(strong), rounds)
    stats = {n: boot.stat(apgr_fn(s, strong, weak)) for n, s in scores.items()}
    cells = {n: fmt(*st[:3]) for n, st in stats.items()}
    out: dict[str, str] = {}
    nums: dict[str, tuple[float, float, float]] = {}
    for a, b in diffs:
        d = stats[a][3] - stats[b][3]
        lo, hi = np.percentile(d, [2.5, 97.5])
        nums[f"{a} − {b}"] = (stats[a][0] - stats[b][0], float(lo), float(hi))
        out[f"{a} − {b}"] = fmt(*nums[f"{a} − {b}"], sign=True)
    return cells, out, nums


def pair_rows(rows: Sequence[Row], strong: str, weak: str) -> list[Row]:
    return [
        {**r, "outcomes": {"w": r["outcomes"][weak], "s": r["outcomes"][strong]},
         "answers": {"w": r["answers"][weak]} if weak in r.get("answers", {}) else {}}
        for r in rows
        if strong in r["outcomes"] and weak in r["outcomes"]
    ]  # fmt: skip


def outcome(rows: Sequence[Row], key: str) -> FloatArray:
    return np.array([r["outcomes"][key] for r in rows], dtype=np.float64)


def length(rows: Sequence[Row]) -> FloatArray:
    return np.array([r["conversation"].total_chars for r in rows], dtype=np.float64)


PAIR_TIERS = ("weak", "strong")
PAIR_MAP = {"weak": ("w",), "strong": ("s",)}


def halves(rounds: int) -> None:
    print("## MMLU-Pro halves (split by question-text hash; train half → test half)\n")
    rows = mmlu_rows()
    for r in rows:
        r["category_task"] = f"mmlu-pro/{r['category']}"
    train_all = [r for r in rows if bucket(r["question"], 2) == 0]
    test_all = [r for r in rows if bucket(r["question"], 2) == 1]
    print(f"train {len(train_all)} / test {len(test_all)} questions\n")
    head = "| pair | length | table | gain (text) | gain + task | text − length | "
    head += "task − length | task − table |"
    print(head)
    print("|" + " --- |" * 8)
    for strong, weak in MMLU_PAIRS:
        train, test = pair_rows(train_all, strong, weak), pair_rows(test_all, strong, weak)
        text = train_scorer(train, PAIR_TIERS, PAIR_MAP, None, use_embedding=False)
        tasked = [{**r, "task": r["category_task"]} for r in train]
        with_task = train_scorer(tasked, PAIR_TIERS, PAIR_MAP, None, use_embedding=False)
        s, w = outcome(test, "s"), outcome(test, "w")
        gains: dict[str, list[float]] = {}
        for r in train:
            gains.setdefault(r["category_task"], []).append(r["outcomes"]["s"] - r["outcomes"]["w"])
        table = np.array([float(np.mean(gains.get(r["category_task"], [0.0]))) for r in test])
        scores = {
            "length": length(test),
            "table": table,
            "text": gain_scores(text, test),
            "task": gain_scores(with_task, [{**r, "task": r["category_task"]} for r in test]),
        }
        cells, diffs, _ = compare(
            scores, s, w, [("text", "length"), ("task", "length"), ("task", "table")], rounds
        )
        print(f"| {strong} / {weak} | " + " | ".join(cells.values()) + " | "
              + " | ".join(diffs.values()) + " |")  # fmt: skip
    print()


PRIORS = (0.0, 0.5, 0.8, 1.2, 2.0, 3.0)


class _Recipe:
    """The shipped recipe's rows and their features, computed once."""

    def __init__(self) -> None:
        self.mmlu = mmlu_rows()
        self.rest = [
            *(r for r in answer_rows() if bucket(r["id"], 10) != 0),
            *(r for r in rubric_rows(VARIED) if bucket(r["id"], 3) != 0),
        ]
        self.n_answers = sum(1 for r in self.rest if "prompt" in r)
        self.x_mmlu = feature_matrix([r["conversation"] for r in self.mmlu], None, False)
        self.x_rest = feature_matrix([r["conversation"] for r in self.rest], None, False)

    def scorer(self, held: Sequence[str], prior: float) -> Any:
        """Trained without the MMLU-Pro categories ``held`` (and the dev split)."""
        keep = [r["category"] not in held and bucket(r["id"], 10) != 0 for r in self.mmlu]
        train = [r for r, k in zip(self.mmlu, keep, strict=True) if k]
        answers, varied = self.rest[: self.n_answers], self.rest[self.n_answers :]
        rows = shipped_training_rows(train, answers, varied)
        x = np.vstack([self.x_mmlu[np.array(keep)], self.x_rest])
        return train_scorer(rows, DEFAULT_TIERS, tier_models(), None, use_embedding=False,
                            verifier=False, length_prior=prior, features=x)  # fmt: skip

    def category(self, name: str) -> list[Row]:
        return [r for r in self.mmlu if r["category"] == name]


def _diffs(scorer: Any, recipe: _Recipe, cats: Sequence[str]) -> list[float]:
    """Point estimates of router − length APGR per (category, pair)."""
    out = []
    for category in cats:
        test = recipe.category(category)
        gain, size = gain_scores(scorer, test), length(test)
        for strong, weak in TRANSFER_PAIRS:
            s, w = outcome(test, strong), outcome(test, weak)
            out.append(pair_metrics(gain, s, w).apgr - pair_metrics(size, s, w).apgr)
    return out


def transfer(rounds: int) -> None:
    print("## Transfer: the shipped recipe, MMLU-Pro categories held out in groups\n")
    recipe = _Recipe()
    # Nested: each held-out group's prior is the best mean over the other three groups,
    # each left out in turn from a fit on the remaining two (the held-out group unseen).
    nested: dict[tuple[str, ...], float] = {}
    for fold in FOLDS:
        inner: dict[float, list[float]] = {p: [] for p in PRIORS}
        for other in FOLDS:
            if other != fold:
                for p in PRIORS:
                    inner[p] += _diffs(recipe.scorer(fold + other, p), recipe, other)
        nested[fold] = max(PRIORS, key=lambda p: float(np.mean(inner[p])))
        means = ", ".join(f"{p:g}: {np.mean(v):+.4f}" for p, v in inner.items())
        print(f"- {', '.join(fold)} held out: prior chosen on the other groups "
              f"{nested[fold]:g} (inner means {means})")  # fmt: skip
    outer = {(f, p): recipe.scorer(f, p) for f in FOLDS for p in PRIORS}
    search = {p: [d for f in FOLDS for d in _diffs(outer[f, p], recipe, f)] for p in PRIORS}
    print("- the shipped prior's search (these cells; the shipped value is chosen on them): "
          + ", ".join(f"{p:g}: {np.mean(v):+.4f}" for p, v in search.items()))  # fmt: skip
    print(f"- shipped prior: {LENGTH_PRIOR:g}\n")
    print("| held-out category | pair | n | length | no prior − length | nested − length | "
          "shipped − length |")  # fmt: skip
    print("|" + " --- |" * 7)
    below = {"none": 0, "nested": 0, "shipped": 0}
    for fold in FOLDS:
        for category in fold:
            test = recipe.category(category)
            scores = {
                "length": length(test),
                "none": gain_scores(outer[fold, 0.0], test),
                "nested": gain_scores(outer[fold, nested[fold]], test),
                "shipped": gain_scores(outer[fold, LENGTH_PRIOR], test),
            }
            for strong, weak in TRANSFER_PAIRS:
                s, w = outcome(test, strong), outcome(test, weak)
                cells, diffs, nums = compare(scores, s, w, [(n, "length") for n in below], rounds)
                for n in below:
                    below[n] += nums[f"{n} − length"][2] < 0
                print(f"| {category} | {strong} / {weak} | {len(test)} | {cells['length']} | "
                      + " | ".join(diffs.values()) + " |")  # fmt: skip
    print("\ncells whose upper bound is below 0 (router significantly below length): "
          + ", ".join(f"{n} {k}" for n, k in below.items()) + "\n")  # fmt: skip


def rubric(rounds: int) -> None:
    print("## The shipped router on the independent rubric sets (second look)\n")
    router = load_router(None, environ={})
    print("| set | weak answers iff grade ≤ | length | shipped router | router − length |")
    print("|" + " --- |" * 5)
    for path in INDEPENDENT:
        rows = rubric_rows(path)
        grade = np.array([r["grade"] for r in rows])
        gain = np.array([router.route_conversation(r["conversation"]).score for r in rows])
        for cut in (1, 2, 3):
            s, w = np.ones(len(rows)), (grade <= cut).astype(np.float64)
            cells, diffs, _ = compare(
                {"length": length(rows), "router": gain}, s, w, [("router", "length")], rounds
            )
            print(f"| {path.name} | {cut} | {cells['length']} | {cells['router']} | "
                  f"{next(iter(diffs.values()))} |")  # fmt: skip
    print()


# The verifier's choices, made per pair on five folds of the train half only (nested):
# L2, and all answer signals or all but the last four (added after a first look at
# the test half in the previous revision).
VERIFIER_L2S = (30.0, 300.0, 3000.0)
_N_VERIFIER = 24 + 25
SIGNAL_SETS = {
    "all": np.ones(_N_VERIFIER),
    "all but the last 4": np.r_[np.ones(_N_VERIFIER - 4), np.zeros(4)],
}


def _verifier_escalation(
    train: tuple[FloatArray, FloatArray, list[Any]],
    test: tuple[FloatArray, list[Any]],
    mask: FloatArray,
    l2: float,
) -> FloatArray:
    """A verifier fitted on ``train`` (features, targets, tasks), read on ``test``; masked
    signals are zeroed (constant: they get no weight)."""
    x, y, tasks = train
    v = Verifier.fit(x * mask, y, np.ones(len(y)), tasks, l2=l2)
    return v.escalation_matrix(test[0] * mask, test[1])


def _choose_verifier(
    x: FloatArray, y: FloatArray, tasks: list[Any], folds: npt.NDArray[np.intp]
) -> tuple[str, float]:
    """The (signal set, L2) with the best mean APGR over the train half's folds."""
    means: dict[tuple[str, float], float] = {}
    for name, mask in SIGNAL_SETS.items():
        for l2 in VERIFIER_L2S:
            vals = []
            for k in np.unique(folds):
                a, b = folds != k, folds == k
                sub = [t for t, keep in zip(tasks, a, strict=True) if keep]
                held = [t for t, keep in zip(tasks, b, strict=True) if keep]
                e = _verifier_escalation((x[a], y[a], sub), (x[b], held), mask, l2)
                vals.append(pair_metrics(e, y[b, 1], y[b, 0]).apgr)
            means[(name, l2)] = float(np.mean(vals))
    return max(means, key=lambda k: means[k])


def cascade(rounds: int) -> None:
    print("## Cascade on the answers data (halves by prompt id hash)\n")
    rows = answer_rows()
    train_all = [r for r in rows if bucket(r["id"], 2) == 0]
    test_all = [r for r in rows if bucket(r["id"], 2) == 1]
    print("| pair | n | verifier chosen on the train half | length | gain (text) | gain + task "
          "| verifier | verifier − best pre-routing | CPT(50%) best pre-routing | CPT(50%) "
          "verifier | CPT(50%) verifier − best |")  # fmt: skip
    print("|" + " --- |" * 11)
    for strong, weak in ANSWER_PAIRS:
        train = [r for r in pair_rows(train_all, strong, weak) if r["answers"]]
        test = [r for r in pair_rows(test_all, strong, weak) if r["answers"]]
        text = train_scorer([{**r, "task": None} for r in train], PAIR_TIERS, PAIR_MAP, None,
                            use_embedding=False, verifier=False)  # fmt: skip
        full = train_scorer(train, PAIR_TIERS, PAIR_MAP, None, use_embedding=False,
                            verifier=False)  # fmt: skip
        x = np.stack([Verifier.feature_row(r["conversation"], r["answers"]["w"]) for r in train])
        y = np.array([[r["outcomes"]["w"], r["outcomes"]["s"]] for r in train])
        tasks = [r["task"] for r in train]
        folds = np.array([bucket(r["id"], 5) for r in train])
        chosen = _choose_verifier(x, y, tasks, folds)
        xt = np.stack([Verifier.feature_row(r["conversation"], r["answers"]["w"]) for r in test])
        s, w = outcome(test, "s"), outcome(test, "w")
        scores = {
            "length": length(test),
            "text": gain_scores(text, [{**r, "task": None} for r in test]),
            "task": gain_scores(full, test),
            "verifier": _verifier_escalation(
                (x, y, tasks), (xt, [r["task"] for r in test]), SIGNAL_SETS[chosen[0]], chosen[1]
            ),
        }
        best = max(
            ("length", "text", "task"), key=lambda n: pair_metrics(scores[n], s, w).apgr
        )  # fmt: skip (chosen on the test half: favours the baseline)
        cells, diffs, _ = compare(scores, s, w, [("verifier", best)], rounds)
        boot = Boot(len(s), rounds, seed=1)
        cpt = {n: boot.stat(cpt_fn(scores[n], s, w)) for n in (best, "verifier")}
        d = cpt["verifier"][3] - cpt[best][3]
        lo, hi = np.percentile(d, [2.5, 97.5])
        cpt_diff = fmt(cpt["verifier"][0] - cpt[best][0], float(lo), float(hi), sign=True)
        print(f"| {strong} / {weak} | {len(test)} | {chosen[0]}, L2 {chosen[1]:g} | "
              f"{cells['length']} | {cells['text']} | {cells['task']} | {cells['verifier']} | "
              f"{next(iter(diffs.values()))} ({best}) | {fmt(*cpt[best][:3])} | "
              f"{fmt(*cpt['verifier'][:3])} | {cpt_diff} |")  # fmt: skip
    print()


SECTIONS: dict[str, Callable[[int], None]] = {
    "halves": halves,
    "transfer": transfer,
    "rubric": rubric,
    "cascade": cascade,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    args = ap.parse_args()
    for name in args.only.split(","):
        SECTIONS[name.strip()](args.rounds)


if __name__ == "__main__":
    main()
