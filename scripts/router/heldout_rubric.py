"""Score routers on rubric-graded prompt sets that no router is trained on (numpy only).

    python scripts/router/heldout_rubric.py [--router DIR ...] [--data FILE ...]

Each line of a data file is ``{"id", "grade": 1-4, "prompt" | "messages", ...}`` (a
``kind`` or ``category`` field is optional); grade g = the cheapest tier expected to
answer well (1 simple … 4 frontier). Prints, per router and file: the mean score by
grade, the tiers the default profile picks by grade, and APGR of frontier against a
weak tier (a weak model answers well iff grade ≤ 1, 2 or 3) next to prompt length —
for all prompts and split by long context (``kind``/``category`` "long" or
"long_context"; without one, ≥ 1,500 characters) versus short.

Files: ``long_context_prompts.jsonl`` (27 prompts written with the long-context
experiment of the model card) and ``independent_prompts.jsonl`` (60 prompts of
chat, code, math, writing and long context, written and graded by a separate agent
that had not seen the router, its features or its training prompts), and
``independent_prompts_2.jsonl`` (60 more, by another such agent, hard long-context tasks
worded the way a busy professional asks, without "prove" or "rigorous").
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from laneway.router import load_router
from laneway.router._conversation import conversation_from_messages
from laneway.router._metrics import pair_metrics

HERE = Path(__file__).resolve().parent
FILES = tuple(
    HERE / n
    for n in (
        "long_context_prompts.jsonl",
        "independent_prompts.jsonl",
        "independent_prompts_2.jsonl",
    )
)
LONG = 1500


def _messages(rec: dict) -> list[dict]:
    return rec["messages"] if "messages" in rec else [{"role": "user", "content": rec["prompt"]}]


def _apgrs(score: np.ndarray, size: np.ndarray, grade: np.ndarray) -> str:
    parts = []
    for cut in (1, 2, 3):
        strong, weak = np.ones(len(grade)), (grade <= cut).astype(float)
        if weak.all() or not weak.any():
            continue  # the weak tier is always or never right: no gain to route for
        a = pair_metrics(score, strong, weak).apgr
        b = pair_metrics(size, strong, weak).apgr
        parts.append(f"weak≤{cut} {a:.3f} (length {b:.3f})")
    return ", ".join(parts) or "-"


def report(router_dir: Path | None, path: Path) -> None:
    router = load_router(router_dir)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    decisions = [router.route(_messages(r)) for r in rows]
    score = np.array([d.score for d in decisions])
    grade = np.array([int(r["grade"]) for r in rows])
    size = np.array([float(conversation_from_messages(_messages(r)).total_chars) for r in rows])
    print(f"== {router_dir or 'shipped router'} on {path.name} ({len(rows)} prompts)")
    means = [f"{score[grade == g].mean():.3f}" if (grade == g).any() else "-" for g in (1, 2, 3, 4)]
    print("  mean score by grade 1/2/3/4:", " / ".join(means))
    for g in (1, 2, 3, 4):
        tiers = Counter(d.tier for d, gg in zip(decisions, grade, strict=True) if gg == g)
        print(f"  grade {g} → {dict(sorted(tiers.items()))}")
    kinds = [r.get("kind") or r.get("category") for r in rows]
    long = np.array([k in ("long", "long_context") for k in kinds])
    if not long.any():
        long = size >= LONG
    for name, mask in (("all", np.ones(len(rows), bool)), ("long", long), ("short", ~long)):
        if mask.sum() >= 4 and len(set(grade[mask])) > 1:
            figures = _apgrs(score[mask], size[mask], grade[mask])
            print(f"  {name:5s} n={int(mask.sum()):2d}: {figures}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--router", type=Path, action="append", help="router directory (default: shipped)"
    )
    ap.add_argument("--data", type=Path, action="append", help="rubric-graded prompts (.jsonl)")
    args = ap.parse_args()
    for router_dir in args.router or [None]:
        for path in args.data or FILES:
            report(router_dir, path)


if __name__ == "__main__":
    main()
