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
  held out in turn (never trained on), scored per held-out category against length.
* ``rubric``: the shipped router on the independent rubric sets (each scored once
  before this revision: a second look, reported as such).
* ``cascade``: the answers data split into halves by a hash of the prompt id; per
  pair, the learned verifier (trained on the train half's answers) reading the weak
  model's answer, against the best pre-routing router for the pair (length, the text
  gain router, the text + task gain router, all trained on the train half).
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

from laneway.router import DEFAULT_TIERS, Verifier, load_router, pair_metrics, train_scorer
from laneway.router._promote import gain_scores
from router_data import (
    INDEPENDENT,
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


def transfer(rounds: int) -> None:
    print("## Transfer: the shipped recipe, MMLU-Pro categories held out in groups\n")
    mmlu, answers, varied = mmlu_rows(), answer_rows(), rubric_rows(VARIED)
    answers_train = [r for r in answers if bucket(r["id"], 10) != 0]
    varied_train = [r for r in varied if bucket(r["id"], 3) != 0]
    print("| held-out category | pair | n | length | router | router − length |")
    print("|" + " --- |" * 6)
    below = 0
    for fold in FOLDS:
        train = [r for r in mmlu if r["category"] not in fold and bucket(r["id"], 10) != 0]
        rows = shipped_training_rows(train, answers_train, varied_train)
        scorer = train_scorer(
            rows, DEFAULT_TIERS, tier_models(), None, use_embedding=False, verifier=False
        )
        for category in fold:
            test = [r for r in mmlu if r["category"] == category]
            gain = gain_scores(scorer, test)
            for strong, weak in TRANSFER_PAIRS:
                s, w = outcome(test, strong), outcome(test, weak)
                cells, diffs, nums = compare(
                    {"length": length(test), "router": gain}, s, w, [("router", "length")], rounds
                )
                diff = next(iter(diffs.values()))
                below += next(iter(nums.values()))[2] < 0
                print(f"| {category} | {strong} / {weak} | {len(test)} | {cells['length']} | "
                      f"{cells['router']} | {diff} |")  # fmt: skip
    print(f"\ncells whose upper bound is below 0 (router significantly below length): {below}\n")


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


def cascade(rounds: int) -> None:
    print("## Cascade on the answers data (halves by prompt id hash)\n")
    rows = answer_rows()
    train_all = [r for r in rows if bucket(r["id"], 2) == 0]
    test_all = [r for r in rows if bucket(r["id"], 2) == 1]
    print("| pair | n | length | gain (text) | gain + task | verifier | "
          "verifier − best pre-routing | CPT(50%) best pre / verifier |")  # fmt: skip
    print("|" + " --- |" * 8)
    for strong, weak in ANSWER_PAIRS:
        train = [r for r in pair_rows(train_all, strong, weak) if r["answers"]]
        test = [r for r in pair_rows(test_all, strong, weak) if r["answers"]]
        untasked = [{**r, "task": None} for r in train]
        text = train_scorer(untasked, PAIR_TIERS, PAIR_MAP, None, use_embedding=False,
                            verifier=False)  # fmt: skip
        full = train_scorer(train, PAIR_TIERS, PAIR_MAP, None, use_embedding=False)
        assert isinstance(full.verifier, Verifier)
        x = np.stack([Verifier.feature_row(r["conversation"], r["answers"]["w"]) for r in test])
        s, w = outcome(test, "s"), outcome(test, "w")
        scores = {
            "length": length(test),
            "text": gain_scores(text, [{**r, "task": None} for r in test]),
            "task": gain_scores(full, test),
            "verifier": full.verifier.escalation_matrix(x, [r["task"] for r in test]),
        }
        best = max(
            ("length", "text", "task"), key=lambda n: pair_metrics(scores[n], s, w).apgr
        )  # fmt: skip (chosen on the test half: favours the baseline)
        cells, diffs, _ = compare(scores, s, w, [("verifier", best)], rounds)
        boot = Boot(len(s), rounds, seed=1)
        cpts = [fmt(*boot.stat(cpt_fn(scores[n], s, w))[:3]) for n in (best, "verifier")]
        print(f"| {strong} / {weak} | {len(test)} | {cells['length']} | {cells['text']} | "
              f"{cells['task']} | {cells['verifier']} | {next(iter(diffs.values()))} ({best}) | "
              f"{cpts[0]} / {cpts[1]} |")  # fmt: skip
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
