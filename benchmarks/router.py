"""Router scoring latency (p50/p99) and the memory the loaded router adds.

    python benchmarks/router.py [--iterations 2000] [--gateway-rounds 300]

Times ``Router.route`` on a mix of requests (short chat, exam question, code
review with a 3 kB file, a 20-turn conversation with a system prompt), after a
warm-up, on one thread. RSS is read from /proc before importing numpy + the
router and after loading it. Then ``_routing_gateway.py`` measures, through a real
``laneway serve`` on a 0 ms fake upstream, the latency routing adds end to end
(``model: "auto"`` against naming the chosen tier's deployment, alternated).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any


def rss_mib() -> float:
    status = Path("/proc/self/status")
    if not status.is_file():
        return float("nan")
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


CODE = "def handler(event):\n    items = [x for x in event['items'] if x]\n    return items\n" * 40

REQUESTS: list[list[dict[str, Any]]] = [
    [{"role": "user", "content": "hi! what's a good name for a cat?"}],
    [
        {
            "role": "user",
            "content": "A 0.5 kg ball is thrown upward at 12 m/s. Calculate the maximum height "
            "and the time to reach it, then determine its speed at half that height.",
        }
    ],
    [
        {"role": "system", "content": "You are a senior Python reviewer. Answer in JSON."},
        {"role": "user", "content": f"Review this code for bugs:\n```python\n{CODE}```"},
    ],
    [{"role": "system", "content": "You are a helpful assistant for an insurance company."}]
    + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}: " + "words " * 60}
        for i in range(20)
    ],
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument(
        "--gateway-rounds", type=int, default=300, help="rounds through the gateway (0: skip)"
    )
    args = parser.parse_args()
    before = rss_mib()
    from laneway.router import load_router

    started = time.perf_counter()
    router = load_router()
    load_s = time.perf_counter() - started
    after = rss_mib()
    for messages in REQUESTS:
        for _ in range(50):
            router.route(messages)
    timings: list[float] = []
    for i in range(args.iterations):
        messages = REQUESTS[i % len(REQUESTS)]
        t0 = time.perf_counter()
        router.route(messages)
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[int(0.99 * (len(timings) - 1))]
    added = after - before
    print(f"router load: {load_s * 1000:.0f} ms; RSS added (numpy + router): {added:.1f} MiB")
    print(f"route() over {args.iterations} requests: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    for messages in REQUESTS:
        per: list[float] = []
        for _ in range(200):
            t0 = time.perf_counter()
            decision = router.route(messages)
            per.append((time.perf_counter() - t0) * 1000)
        chars = sum(len(str(m.get("content", ""))) for m in messages)
        print(
            f"  {chars:6d} chars, {len(messages):2d} msgs: p50 {statistics.median(per):.3f} ms"
            f" → {decision.tier} (score {decision.score:.2f})"
        )
    if args.gateway_rounds > 0:
        from _routing_gateway import gateway_on_off

        for line in gateway_on_off(REQUESTS, args.gateway_rounds):
            print(line, flush=True)


if __name__ == "__main__":
    main()
