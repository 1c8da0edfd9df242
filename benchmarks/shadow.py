"""What shadow traffic adds to the client's latency and CPU: ``laneway serve`` with a
shadow rule mirroring 10% of requests to a candidate, against the same gateway without it.

    python benchmarks/shadow.py [--rate 0.1] [--pairs 20] [--seconds 2] [--concurrency 16]
    python benchmarks/shadow.py --control        # both arms without the rule: the noise
    python benchmarks/shadow.py --upstream-ms 100 # a model's latency: arms run together
    python benchmarks/shadow.py --process inline # copies sent on the gateway's own loop
    python benchmarks/shadow.py --instructions   # valgrind: instructions per request
    python benchmarks/shadow.py --offer          # in-process: the cost of offer() itself

**Timed** (default). Fake OpenAI upstreams serve the primary and, in another process
under ``nice 19``, the candidate (another provider: on a machine with free cores its work
would cost the client nothing; sharing the primary's upstream process instead made every
copy delay the primary's own answers). Two gateways run side by side (one with the rule, one
without). The load generator runs ``--pairs`` pairs of short phases at the same concurrency
and takes, per phase and arm, the median of each request's **added time**: its latency minus
the upstream's own handling time, which each answer carries (``_upstream.py --timing``), so
that the fake's sleep, rounded to whole milliseconds by its event loop, and its scheduling
jitter drop out. The figure is the median of the per-pair differences (on − off) with a 95%
bootstrap interval of that median; the earlier statistic, the phases' latency p50, is
printed beside it. The load average is printed before and after.

How the arms share the machine. At 0 ms upstream (``--apart``, the default there) each
gateway is saturated by construction and needs a core, so the arms run one after the other
in ABBA order (off, on, on, off, …) and a drift of the machine's load falls on both alike
only as far as it is linear. With ``--upstream-ms`` the gateways use a fraction of a core,
and both arms of a pair run at the same time (``--together``, the default there), each with
its own ``--concurrency`` clients, so that whatever else the machine does falls on both
arms alike. The cost of that: the copies' CPU competes with the other arm too, which on a
machine without a core to spare makes the difference slightly smaller (at 100 ms upstream
a 10% rule adds about 0.02 of a core). The pairs are split into ``--blocks`` (2) of freshly
started processes, the rule on the gateway started second in even blocks and first in odd
ones, so that whatever goes with a gateway's position falls on both arms alike; the median
difference of each block is printed.

A/A controls at 100 ms upstream on the shared 2-core machine (other sessions' tests running,
load 4–6), 20 pairs of 2 s each, run back to back: the earlier procedure (``--lockstep
--apart``, latency p50) gave intervals 4.6 and 3.0 ms wide (per-pair differences' SD 4.6 and
5.5 ms); in step but together, 2.0 and 3.7; apart but out of step, 1.1; together and out of
step, the p50 1.2 and 1.3, the added time 0.57 and 0.61 (SD 0.82 and 0.63). 40 pairs in 8
blocks (about 2 min 40 s): added time +0.034 ms [−0.113, +0.191] and +0.049 [−0.171, +0.163]
at load 3–4, −0.009 [−0.083, +0.071] at load 1.3–2.2 (the p50 beside it: 0.59 ms wide).

Closed-loop clients that start together stay in step when the upstream's latency is
fixed: every round the ``--concurrency`` requests reach the gateway as one burst and queue
behind each other (at 100 ms upstream, 76–81% of requests sent within 1 ms of another,
and a median added time of 9–12 ms, against 4.5–6.4 ms out of step in the same rounds), and
a phase's median depends on how its bursts were ordered. So with ``--upstream-ms`` client
``i`` starts ``i/concurrency`` of a round late, and each answer's delay is drawn from
``upstream ± --spread-ms`` (a tenth of it by default; seeded); ``--lockstep`` restores the
earlier traffic (neither). The share of requests sent within 1 ms of another is printed.

The gateway's own CPU time per request (user + system from /proc, threads included) is
reported the same way: it is much less sensitive to the machine's load than latency, and
it includes the copies. ``--control`` runs the same procedure with two gateways *without*
the rule: its intervals show what "no difference" looks like on this machine at this
moment. ``--json PATH`` keeps every pair's figures.

**Instructions** (``--instructions``). Each gateway runs under ``valgrind --tool=
cachegrind`` twice, serving one request and then 1 + ``--requests``; the difference per
request is the gateway process's CPU per client request: with ``--process inline`` the
copies to the candidate included (they run on its event loop); with ``separate`` (and
``auto``, the default) only their handing-off (pickling and a pipe write), since valgrind
does not follow the sender process. Noise-free where the timed figure is not.

**offer()** (``--offer``). The only shadow work done on a request's own path, before its
response is sent: ``ShadowMirror.offer`` in a loop against stub objects, matched by the
rule and sampled at ``--rate``, ns per call.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from _procs import Processes, free_port, wait_http
from _shadow_timing import Sample, phase, summarise
from gateway_overhead import _LANEWAY_MAIN, _clean_env

HERE = Path(__file__).resolve().parent


def _config(
    upstreams: tuple[str, str],
    port: int,
    tmp: Path,
    rate: float | None,
    process: str,
    nice: int | None = None,
    max_lag: str | None = None,
) -> dict[str, Any]:
    def deployment(name: str, upstream: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": "gpt-4o-mini",
            "provider": "openai_compatible",
            "api_base": f"{upstream}/v1",
            "upstream_model": "fake-model",
            "api_key": "env:LANEWAY_BENCH_KEY",
        }

    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port, "workers": 1},
        "database": {"url": f"sqlite:///{tmp / f'ledger-{port}.db'}"},
        "deployments": [
            deployment("primary", upstreams[0]),
            deployment("candidate", upstreams[1]),
        ],
    }
    if rate is not None:
        rule = {"name": "bench", "match": {"model": ["primary"]}, "sample_rate": rate,
                "candidates": ["candidate"], "daily_budget_usd": "1000"}  # fmt: skip
        config["shadow"] = {"rules": [rule], "process": process}
        if nice is not None:
            config["shadow"]["sender_nice"] = nice
        if max_lag is not None:
            config["shadow"]["inline_max_lag_ms"] = None if max_lag == "none" else float(max_lag)
    return config


def _upstreams(
    procs: Processes,
    env: dict[str, str],
    tmp: Path,
    latency_ms: float = 0.0,
    spread_ms: float | None = None,
) -> tuple[str, str]:
    """The primary's fake upstream, and the candidate's: another provider, so another
    process, under ``nice 19`` (on a machine with free cores it would cost the client
    nothing; here it only gets the CPU time the rest leaves). With ``spread_ms`` (0
    included) they report their own times in each answer and draw each delay from
    ``latency_ms ± spread_ms`` (``_upstream.py --timing --spread``)."""
    urls = []
    for seed, (name, prefix) in enumerate(
        (("upstream", []), ("candidate-upstream", ["nice", "-n", "19"])), start=1
    ):
        argv = [*prefix, sys.executable, str(HERE / "_upstream.py")]
        argv += ["--latency", str(latency_ms / 1000)]
        if spread_ms is not None:
            argv += ["--timing", "--spread", str(spread_ms / 1000), "--seed", str(seed)]
        proc = procs.start(name, argv, cpus=None, env=env, capture_stdout=True)
        assert proc.stdout is not None
        ready = proc.stdout.readline().decode().split()
        if len(ready) != 2 or ready[0] != "READY":
            raise RuntimeError(f"the fake upstream did not start (see {tmp})")
        urls.append(f"http://127.0.0.1:{ready[1]}")
    return urls[0], urls[1]


def _start(
    procs: Processes,
    tmp: Path,
    rates: tuple[float | None, float | None],
    process: str,
    nice: int | None = None,
    latency_ms: float = 0.0,
    max_lag: str | None = None,
    spread_ms: float | None = None,
) -> list[tuple[int, int]]:
    """(port, pid) of each gateway."""
    env = _clean_env() | {"LANEWAY_BENCH_KEY": "sk-bench"}
    upstreams = _upstreams(procs, env, tmp, latency_ms, spread_ms)
    ports = []
    for i, sample in enumerate(rates):
        port = free_port()
        path = tmp / f"laneway-shadow-{i}.yaml"
        config = _config(upstreams, port, tmp, sample, process, nice, max_lag)
        path.write_text(yaml.safe_dump(config))
        argv = [sys.executable, "-c", _LANEWAY_MAIN, "serve", "--config", str(path)]
        proc = procs.start(f"laneway-{i}", [*argv, "--log-level", "warning"], cpus=None, env=env)
        wait_http(f"http://127.0.0.1:{port}/health/live", proc, 60.0, tmp / f"{i}.log")
        ports.append((port, proc.pid))
    return ports


def _cpu_s(pid: int, descendants: bool = True) -> float:
    """User + system CPU seconds of ``pid`` (its threads) and, with ``descendants``, of its
    child processes (the shadow sender) so far."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
        if descendants:
            todo += _children(current)
    return total


async def _measure(
    off: tuple[int, int], on: tuple[int, int], args: argparse.Namespace, count: int
) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Per pair of phases (ABBA order, or together): each arm's p50 (ms), median added time
    (latency − the upstream's own time, ms), and the gateway process's CPU per request (ms,
    from /proc: user + system, its threads included); and the copies' outcomes."""
    pairs: list[dict[str, float]] = []
    connector = aiohttp.TCPConnector(limit=0)
    stagger = args.upstream_ms / 1000 if args.stagger else 0.0
    async with aiohttp.ClientSession(connector=connector) as session:
        for port, _ in (off, on):  # warm-up: connections, caches, the first ledger flushes
            await phase(session, port, 1.0, args.concurrency, stagger)
        if not args.control and _children(on[1]):  # a sender process: its start-up (seconds
            await _first_copy(session, on[0], args.concurrency)  # of CPU) is no copy's
        for i in range(count):
            order = (("off", off), ("on", on)) if i % 2 == 0 else (("on", on), ("off", off))
            pair: dict[str, float] = {}
            if args.together:  # both arms at once: the machine's load falls on both alike
                cpu = {mode: _cpu_pair(pid) for mode, (_, pid) in order}
                both = await asyncio.gather(*(
                    phase(session, port, args.seconds, args.concurrency, stagger, k / 2)
                    for k, (_, (port, _)) in enumerate(order)
                ))  # fmt: skip
                for (mode, (_, pid)), samples in zip(order, both, strict=True):
                    _record(pair, mode, pid, cpu[mode], samples, args.seconds)
            else:
                for mode, (port, pid) in order:
                    cpu_before = _cpu_pair(pid)
                    samples = await phase(session, port, args.seconds, args.concurrency, stagger)
                    _record(pair, mode, pid, cpu_before, samples, args.seconds)
            pairs.append(pair)
        await asyncio.sleep(1.0)  # the copies still queued: sent by now, or never
        async with session.get(f"http://127.0.0.1:{on[0]}/metrics") as r:
            copies = _copies(await r.text())
    return pairs, copies


def _cpu_pair(pid: int) -> tuple[float, float]:
    """CPU seconds of the gateway with its sender process, and of the gateway alone."""
    return _cpu_s(pid), _cpu_s(pid, descendants=False)


def _record(
    pair: dict[str, float],
    mode: str,
    pid: int,
    cpu_before: tuple[float, float],
    samples: list[Sample],
    seconds: float,
) -> None:
    """One arm's figures of a phase into ``pair``, keys suffixed ``_off`` or ``_on``."""
    cpu, own = (after - before for after, before in zip(_cpu_pair(pid), cpu_before, strict=True))
    stats = summarise(samples)
    pair[f"cpu_{mode}"] = cpu * 1000 / len(samples)
    pair[f"own_{mode}"] = own * 1000 / len(samples)
    pair[f"p50_{mode}"] = stats.p50
    pair[f"added_{mode}"] = math.nan if stats.added is None else stats.added
    pair[f"in_{mode}"] = math.nan if stats.inbound is None else stats.inbound
    pair[f"bunched_{mode}"] = stats.bunched
    pair[f"n_{mode}"] = stats.n
    pair[f"share_{mode}"] = own / seconds


async def _first_copy(session: aiohttp.ClientSession, port: int, concurrency: int) -> None:
    """Warm up until the gateway with the rule reports a copy sent (its sender process,
    at the lowest CPU priority, can take a while to start on a busy machine)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
            if _copies(await r.text()).get("sent", 0) > 0:
                await phase(session, port, 1.0, concurrency)
                return
        await phase(session, port, 0.5, concurrency)
    raise RuntimeError("no shadow copy was sent within 120 s")


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (a gateway's shadow sender)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        return []
    return found


def _copies(metrics: str) -> dict[str, float]:
    """``laneway_shadow_copies_total`` by outcome, from a Prometheus text page."""
    out: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("laneway_shadow_copies_total{"):
            labels, value = line.rsplit(" ", 1)
            outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = out.get(outcome, 0.0) + float(value)
    return out


def bootstrap_median(
    values: list[float], rounds: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the median of ``values``."""
    rng = random.Random(seed)
    n = len(values)
    medians = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(rounds))
    return medians[int(0.025 * rounds)], medians[int(0.975 * rounds) - 1]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs"


def timed(args: argparse.Namespace) -> int:
    rates = (None, None) if args.control else (None, args.rate)
    if args.lockstep:
        args.spread_ms, args.stagger = 0.0, False
    elif args.spread_ms is None:
        args.spread_ms = args.upstream_ms / 10
    args.stagger = args.stagger and args.upstream_ms > 0
    if args.together is None:
        args.together = args.upstream_ms > 0
    load_before = _load()
    pairs: list[dict[str, float]] = []
    copies: dict[str, float] = {}
    for block in range(args.blocks):
        count = args.pairs // args.blocks + (block < args.pairs % args.blocks)
        first = block % 2 == 1  # odd blocks: the gateway started first has the rule
        with tempfile.TemporaryDirectory(prefix="laneway-shadow-bench-") as name:
            tmp = Path(name)
            with Processes(tmp) as procs:
                off, on = _start(
                    procs, tmp, rates[::-1] if first else rates, args.process, args.nice,
                    args.upstream_ms, args.max_lag, args.spread_ms,
                )[:: -1 if first else 1]  # fmt: skip
                found, sent = asyncio.run(_measure(off, on, args, count))
        pairs += [p | {"block": block} for p in found]
        copies = {k: copies.get(k, 0.0) + sent.get(k, 0.0) for k in copies.keys() | sent.keys()}
    what = "control: both arms WITHOUT the rule" if args.control else f"shadow at {args.rate:.0%}"
    what += f" (shadow.process: {args.process}"
    what += f", sender_nice {args.nice}" if args.nice is not None else ""
    what += f", inline_max_lag_ms {args.max_lag})" if args.max_lag is not None else ")"
    traffic = "clients in step (--lockstep)" if args.lockstep else (
        f"delay ± {args.spread_ms:g} ms, clients' starts staggered" if args.stagger
        else f"delay ± {args.spread_ms:g} ms"
    )  # fmt: skip
    print(
        f"{what}, c={args.concurrency}, {args.upstream_ms:g} ms upstream ({traffic}), "
        f"{args.pairs} {'pairs' if args.together else 'ABBA pairs'} of {args.seconds:g} s "
        f"phases{', both arms at once' if args.together else ''} in {args.blocks} "
        f"block{'s' if args.blocks > 1 else ''} of fresh processes; load average (1/5/15 "
        f"min) before {load_before}, after {_load()}"
    )
    _print_latency(pairs)
    _print_cpu(pairs)
    if not args.control:
        served = sum(p["n_on"] for p in pairs)
        outcomes = ", ".join(f"{k} {v:.0f}" for k, v in sorted(copies.items())) or "none"
        print(
            f"  copies ({served} requests served with the rule in the timed phases, so about "
            f"{served * args.rate:.0f} sampled, plus the warm-up's): {outcomes}"
        )
    if args.json:
        Path(args.json).write_bytes(orjson.dumps({"args": vars(args), "pairs": pairs}))
    return 0


def _difference(pairs: list[dict[str, float]], key: str) -> str:
    """Median of the per-pair differences (on − off) of ``key``, its 95% bootstrap
    interval, and how many pairs were higher with the rule."""
    diffs = [p[f"{key}_on"] - p[f"{key}_off"] for p in pairs]
    low, high = bootstrap_median(diffs)
    return (
        f"{statistics.median(diffs):+.3f} ms, 95% bootstrap CI [{low:+.3f}, {high:+.3f}] "
        f"(width {high - low:.3f}); {sum(d > 0 for d in diffs)} of {len(diffs)} pairs higher"
    )


def _print_latency(pairs: list[dict[str, float]]) -> None:
    def both(key: str, digits: int = 3) -> str:
        off, on = (statistics.median(p[f"{key}_{m}"] for p in pairs) for m in ("off", "on"))
        return f"off {off:.{digits}f}, on {on:.{digits}f}"

    print(
        f"  medians of phases: p50 {both('p50')} ms; added time (latency - the upstream's "
        f"own) {both('added')} ms, of it the way in {both('in')} ms; requests sent within 1 "
        f"ms of another {both('bunched', 2)}; the gateway process used {both('share', 2)} of "
        f"a core"
    )
    if not any(math.isnan(p["added_on"]) or math.isnan(p["added_off"]) for p in pairs):
        print(
            f"  added time per request (median per phase; target <= +0.2): "
            f"{_difference(pairs, 'added')}"
        )
    print(f"  added p50 of latency (the earlier statistic): {_difference(pairs, 'p50')}")
    key = "added" if not math.isnan(pairs[0]["added_on"]) else "p50"
    blocks = sorted({int(p["block"]) for p in pairs})
    if len(blocks) > 1:
        each = [
            statistics.median(p[f"{key}_on"] - p[f"{key}_off"] for p in pairs if p["block"] == b)
            for b in blocks
        ]
        print(
            "  by block (the rule on the gateway started second, first, second, ...): "
            + ", ".join(f"{x:+.3f}" for x in each) + " ms"
        )  # fmt: skip


def _print_cpu(pairs: list[dict[str, float]]) -> None:
    cpu = [p["cpu_on"] - p["cpu_off"] for p in pairs]
    cpu_low, cpu_high = bootstrap_median(cpu)
    cpu_off = statistics.median(p["cpu_off"] for p in pairs)
    own = [p["own_on"] - p["own_off"] for p in pairs]
    own_low, own_high = bootstrap_median(own)
    own_off = statistics.median(p["own_off"] for p in pairs)
    print(
        f"  gateway CPU per request: off {cpu_off * 1000:.0f} us; added "
        f"{statistics.median(cpu) * 1000:+.1f} us ({statistics.median(cpu) / cpu_off:+.1%}), "
        f"95% bootstrap CI [{cpu_low * 1000:+.1f}, {cpu_high * 1000:+.1f}] us "
        f"(the sender process included)"
    )
    print(
        f"  gateway process alone: off {own_off * 1000:.0f} us; added "
        f"{statistics.median(own) * 1000:+.1f} us ({statistics.median(own) / own_off:+.1%}), "
        f"95% bootstrap CI [{own_low * 1000:+.1f}, {own_high * 1000:+.1f}] us"
    )


def instructions(args: argparse.Namespace) -> int:
    import shutil

    from gateway_instructions import _count

    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH (apt install valgrind)", file=sys.stderr)
        return 2
    env = _clean_env() | {"LANEWAY_BENCH_KEY": "sk-bench"}
    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="laneway-shadow-ir-") as name:
        tmp = Path(name)
        os.environ.update(LANEWAY_BENCH_KEY="sk-bench")
        with Processes(tmp) as procs:
            upstreams = _upstreams(procs, env, tmp)
            for label, rate in (("off", None), ("on", args.rate)):
                port = free_port()
                path = tmp / f"laneway-{label}.yaml"
                config = _config(upstreams, port, tmp, rate, args.process)
                path.write_text(yaml.safe_dump(config))
                argv = [sys.executable, "-c", _LANEWAY_MAIN, "serve", "--config", str(path)]
                argv += ["--log-level", "warning"]
                health = f"http://127.0.0.1:{port}/health/live"
                chat = f"http://127.0.0.1:{port}/v1/chat/completions"
                ns = argparse.Namespace(tmp=tmp, concurrency=args.concurrency, stream=False)
                base = _count(argv, health, chat, "primary", 0, ns)
                loaded = _count(argv, health, chat, "primary", args.requests, ns)
                per_request[label] = (loaded - base) / args.requests
                print(f"shadow {label:3} {per_request[label] / 1000:8.1f} k instructions/request")
    added = per_request["on"] - per_request["off"]
    print(
        f"added by the rule at {args.rate:.0%}: {added / 1000:+.1f} k instructions per client "
        f"request ({added / per_request['off']:+.1%}), in the gateway process "
        f"(shadow.process: {args.process}; valgrind does not follow the sender process)"
    )
    return 0


def offer(args: argparse.Namespace) -> int:
    """ns per ``ShadowMirror.offer`` call on stub objects (the client-path cost)."""
    from collections import defaultdict
    from types import SimpleNamespace

    from laneway.gateway import ShadowMirror
    from laneway.providers import ChatRequest, ChatResult, Usage
    from laneway.settings import ShadowSettings

    rule = {"name": "bench", "match": {"model": ["primary"]}, "sample_rate": args.rate,
            "candidates": ["candidate"], "daily_budget_usd": "1000"}  # fmt: skip
    settings = ShadowSettings.model_validate({"rules": [rule], "queue": 1_000_000})
    gateway: Any = SimpleNamespace(metrics=SimpleNamespace(shadow=defaultdict(int)))
    usage = Usage(prompt_tokens=10, completion_tokens=5)
    request = ChatRequest(model="primary", messages=({"role": "user", "content": "hi"},))
    ctx: Any = SimpleNamespace(
        source="api", request=request, request_id="r", admission=None, key_id=None,
        task=None, trace=SimpleNamespace(served_by="primary"), started=time.perf_counter(),
        estimated_usage=None, resolution=None, requested_model="primary",
    )  # fmt: skip
    result: Any = ChatResult(content="hello", finish_reason="stop", usage=usage, model="fake-model")

    async def run() -> float:
        mirror = ShadowMirror(settings, engine=None, gateway=gateway)  # type: ignore[arg-type]
        mirror._queue = asyncio.Queue(settings.queue)  # no workers: measure the offer alone
        n = args.calls
        started = time.perf_counter_ns()
        for _ in range(n):
            mirror.offer(ctx, result, "hello", None)
        return (time.perf_counter_ns() - started) / n

    runs = [asyncio.run(run()) for _ in range(5)]
    print(
        f"ShadowMirror.offer at {args.rate:.0%}: {statistics.median(runs):.0f} ns per request "
        f"(median of 5 x {args.calls} calls; min {min(runs):.0f}, max {max(runs):.0f})"
    )
    handoffs = [_handoff(ShadowMirror(settings, None, gateway), (settings.rules[0], ctx, result))]
    handoffs += [_handoff(ShadowMirror(settings, None, gateway), (settings.rules[0], ctx, result))
                 for _ in range(4)]  # fmt: skip
    size, _ = handoffs[0]
    times = [t for _, t in handoffs]
    print(
        f"handing a sampled copy to the sender process (shadow.process: separate): "
        f"{statistics.median(times):.1f} us per copy (build the job, pickle {size} bytes, one "
        f"pipe write; median of 5 x 20000; min {min(times):.1f}, max {max(times):.1f})"
    )
    return 0


def _handoff(mirror: Any, parts: tuple[Any, Any, Any]) -> tuple[int, float]:
    """(frame bytes, us per copy) of ``mirror.encode`` + the frame's write to a pipe that
    another thread empties: the gateway process's whole cost of one sampled copy."""
    import threading

    from laneway.gateway._shadow_link import write_frame_header

    rule, ctx, result = parts
    offered = (rule, ctx, result, "hello", None, time.perf_counter())
    read, write = os.pipe()
    reader = threading.Thread(
        target=lambda: [None for _ in iter(lambda: os.read(read, 1 << 16), b"")]
    )
    reader.start()
    n, size = 20_000, 0
    started = time.perf_counter_ns()
    for _ in range(n):
        _, payload = mirror.encode(offered)
        size = len(payload) + 4
        os.write(write, write_frame_header(len(payload)) + payload)
    took = (time.perf_counter_ns() - started) / n / 1000
    os.close(write)
    reader.join()
    os.close(read)
    return size, took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.1, help="the rule's sample rate")
    parser.add_argument("--pairs", type=int, default=20, help="ABBA pairs of phases")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one phase")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument("--control", action="store_true", help="both arms without the rule")
    parser.add_argument(
        "--upstream-ms", type=float, default=0.0,
        help="the fake upstreams' latency (0: the gateway is saturated by construction; a "
        "model's latency leaves it CPU to spare)",
    )  # fmt: skip
    parser.add_argument(
        "--spread-ms", type=float, default=None,
        help="each upstream answer's delay is drawn from --upstream-ms ± this (default: a "
        "tenth of --upstream-ms), so that the clients do not stay in step",
    )  # fmt: skip
    parser.add_argument(
        "--no-stagger", dest="stagger", action="store_false",
        help="start all clients of a phase at once (default with --upstream-ms: client i "
        "starts i/concurrency of the upstream's latency late)",
    )  # fmt: skip
    parser.add_argument(
        "--lockstep", action="store_true",
        help="the earlier traffic: no spread, no stagger (the clients stay in step)",
    )  # fmt: skip
    arms = parser.add_mutually_exclusive_group()
    arms.add_argument(
        "--together", action="store_true", default=None,
        help="both arms of a pair at the same time, each with its own clients (the default "
        "with --upstream-ms: the machine's load then falls on both alike)",
    )  # fmt: skip
    arms.add_argument(
        "--apart", dest="together", action="store_false",
        help="the arms one after the other, in ABBA order (the default at 0 ms upstream, "
        "where each gateway needs a core of its own)",
    )  # fmt: skip
    parser.add_argument(
        "--blocks", type=int, default=2,
        help="split the pairs into blocks, each with freshly started gateways and upstreams; "
        "the rule goes to the gateway started second, then first, and so on",
    )  # fmt: skip
    parser.add_argument("--json", default=None, help="write every pair's figures here")
    parser.add_argument(
        "--process", choices=("auto", "separate", "inline"), default="auto",
        help="shadow.process: copies sent by a sender process or on the gateway's loop "
        "(auto, the default: a sender process only on a machine with a core to spare)",
    )  # fmt: skip
    parser.add_argument(
        "--nice", type=int, default=None,
        help="shadow.sender_nice for the sender process (default: the setting's default)",
    )  # fmt: skip
    parser.add_argument(
        "--max-lag", default=None, metavar="MS|none",
        help="shadow.inline_max_lag_ms: inline copies wait while the gateway's loop is later "
        "(default: the setting's default; none: never wait)",
    )  # fmt: skip
    parser.add_argument("--instructions", action="store_true", help="valgrind counts instead")
    parser.add_argument("--requests", type=int, default=3000, help="--instructions: requests")
    parser.add_argument("--offer", action="store_true", help="time offer() in-process")
    parser.add_argument("--calls", type=int, default=200_000, help="--offer: calls per run")
    args = parser.parse_args(argv)
    if not 1 <= args.blocks <= args.pairs:
        parser.error("--blocks must be between 1 and --pairs")
    if args.instructions:
        return instructions(args)
    if args.offer:
        return offer(args)
    return timed(args)


if __name__ == "__main__":
    raise SystemExit(main())
