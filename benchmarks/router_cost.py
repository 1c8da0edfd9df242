"""Router v2 serving cost: CPU time per scoring call and per verifier call.

    python benchmarks/router_cost.py [--repeats 3000]

CPU time of the calling thread (``time.thread_time_ns``, so other processes on a
busy machine do not count) for ``Router.route`` on short prompts and on 4 kB
prompts, and for the answer verifier on typical answers; p50 and p99 over
``--repeats`` calls per kind after a warm-up. Budgets (issue #14): scoring ≤ 1 ms p50
for short prompts, ≤ 2 ms p99 for 4 kB prompts; the verifier ≤ 1 ms p50 per answer.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from laneway.router import conversation_from_prompt, load_router

SHORT = (
    "hi! what's a good name for a cat?",
    "What is the capital of Italy?",
    "Write a Python function to check whether a string is a palindrome.",
    "Prove that the square root of 2 is irrational.",
)
PARAGRAPH = (
    "Our quarterly report shows revenue of $4.2M (up 12% on Q2), churn of 3.1% and a "
    "gross margin of 61%. The APAC region grew fastest; EMEA was flat. Please check the "
    "numbers below, flag anything inconsistent, and propose three actions.\n"
)
CODE = "def handler(event):\n    items = [x for x in event['items'] if x]\n    return items\n"
LONG = (
    (PARAGRAPH * 20)[:4096],
    ("Review this code for bugs:\n```python\n" + CODE * 60)[:4093] + "```",
    ("| id | amount | date |\n" + "| 17 | 42.50 | 2026-01-03 |\n" * 200)[:4096],
)
ANSWERS = (
    '```json\n{"reasoning": "3x + 7 = 22 so 3x = 15 and x = 5.", "answer": "5"}\n```',
    "Sure! Here are three ideas:\n\n1. **Mochi** — soft and sweet.\n2. **Pixel**\n3. Biscuit\n" * 8,
    "I'm sorry, but I can't help with that.",
)


def cpu_times(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    for _ in range(50):
        fn()
    samples = np.empty(repeats)
    for i in range(repeats):
        start = time.thread_time_ns()
        fn()
        samples[i] = time.thread_time_ns() - start
    p50, p99 = np.percentile(samples, [50, 99]) / 1e6
    return float(p50), float(p99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3000, help="calls per kind")
    args = parser.parse_args()
    router = load_router(None, environ={})
    verifier = router.scorer.verifier
    assert verifier is not None, "the shipped router has a verifier"
    print("| call | input | CPU p50 (ms) | CPU p99 (ms) |")
    print("| --- | --- | --- | --- |")
    for label, prompts in (("route, short", SHORT), ("route, 4 kB", LONG)):
        for prompt in prompts:
            conv = conversation_from_prompt(prompt)
            p50, p99 = cpu_times(partial(router.route_conversation, conv), args.repeats)
            print(f"| {label} | {len(prompt)} chars: {prompt[:28]!r} | {p50:.3f} | {p99:.3f} |")
    conv = conversation_from_prompt(SHORT[3])
    for answer in ANSWERS:
        p50, p99 = cpu_times(partial(verifier.judge, conv, answer, None), args.repeats)
        print(f"| verifier | {len(answer)} chars: {answer[:28]!r} | {p50:.3f} | {p99:.3f} |")


if __name__ == "__main__":
    main()
