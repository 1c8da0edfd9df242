"""What each structural feature group adds to the shipped recipe (numpy only).

    python scripts/router/exp_groups.py [--rounds 1000] [--json OUT]

Same harness, folds, pairs, target (difficulty) and varied-set share as the shipped model
(``exp_harness.py``); only the columns of the structural signals change. Rows: each
group alone, conversation size plus each group, and all signals minus each group.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from exp_harness import evaluate, linear_fitter, load_all

from laneway.router._features import STRUCTURAL_NAMES

GROUPS: dict[str, tuple[str, ...]] = {
    "size": (
        "log_conversation_chars",
        "log_user_words",
        "log_lines",
        "log_sentences",
        "log_system_chars",
        "log_earlier_turns",
        "non_text_parts",
    ),
    "numbers & math": ("digit_frac", "log_numbers", "log_units", "log_math", "latex"),
    "code": ("log_code",),
    "task wording": (
        "log_questions",
        "log_multi_step",
        "log_constraints",
        "log_negations",
        "log_writing",
        "log_list_items",
        "log_hard_terms",
    ),
    "register": ("log_chat", "log_first_person", "upper_frac", "mean_word_len"),
}


def columns(groups: list[str]) -> list[int]:
    return [STRUCTURAL_NAMES.index(n) for g in groups for n in GROUPS[g]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    assert sorted(n for g in GROUPS.values() for n in g) == sorted(STRUCTURAL_NAMES)
    d = load_all()
    names = list(GROUPS)
    plans: list[tuple[str, list[str]]] = [("all (shipped)", names)]
    plans += [(f"{g} alone", [g]) for g in names]
    plans += [(f"size + {g}", ["size", g]) for g in names if g != "size"]
    plans += [(f"all − {g}", [h for h in names if h != g]) for g in names]
    results = []
    for label, groups in plans:
        cols = columns(groups)
        out = evaluate(
            d, d["s"][:, cols], d["vs"][:, cols], linear_fitter(), rounds=args.rounds, label=label
        )
        results.append(out)
    if args.json:
        args.json.write_text(json.dumps(results, default=float, indent=1))


if __name__ == "__main__":
    main()
