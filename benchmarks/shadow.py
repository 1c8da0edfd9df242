"""What shadow traffic adds to the client's latency: ``laneway serve`` with a shadow rule
mirroring 10% of requests to a candidate, against the same gateway without the rule.

    python benchmarks/shadow.py [--rate 0.1] [--phases 6] [--seconds 4] [--concurrency 16]

One fake OpenAI upstream (0 ms) serves the primary and the candidate. Two gateways run
side by side (one with the rule, one without); the load generator alternates between
them in short phases (off, on, off, on …) at the same concurrency, so that both see the
same machine noise, and reports the median of the phases' p50 and p99 latencies.
"""

from __future__ import annotations

import argparse
import asyncio
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
from gateway_overhead import _LANEWAY_MAIN, _clean_env

HERE = Path(__file__).resolve().parent


def _config(upstream: str, port: int, tmp: Path, rate: float | None) -> dict[str, Any]:
    def deployment(name: str) -> dict[str, Any]:
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
        "deployments": [deployment("primary"), deployment("candidate")],
    }
    if rate is not None:
        rule = {"name": "bench", "match": {"model": ["primary"]}, "sample_rate": rate,
                "candidates": ["candidate"], "daily_budget_usd": "1000"}  # fmt: skip
        config["shadow"] = {"rules": [rule]}
    return config


def _start(procs: Processes, tmp: Path, rate: float) -> tuple[int, int]:
    env = _clean_env() | {"LANEWAY_BENCH_KEY": "sk-bench"}
    upstream = procs.start("upstream", [sys.executable, str(HERE / "_upstream.py")], cpus=None,
                           env=env, capture_stdout=True)  # fmt: skip
    assert upstream.stdout is not None
    ready = upstream.stdout.readline().decode().split()
    if len(ready) != 2 or ready[0] != "READY":
        raise RuntimeError(f"the fake upstream did not start (see {tmp})")
    ports = []
    for name, sample in (("off", None), ("on", rate)):
        port = free_port()
        path = tmp / f"laneway-shadow-{name}.yaml"
        path.write_text(yaml.safe_dump(_config(f"http://127.0.0.1:{ready[1]}", port, tmp, sample)))
        argv = [sys.executable, "-c", _LANEWAY_MAIN, "serve", "--config", str(path)]
        proc = procs.start(f"laneway-{name}", [*argv, "--log-level", "warning"], cpus=None, env=env)
        wait_http(f"http://127.0.0.1:{port}/health/live", proc, 60.0, tmp / f"{name}.log")
        ports.append(port)
    return ports[0], ports[1]


async def _phase(port: int, seconds: float, concurrency: int) -> list[float]:
    body = orjson.dumps(
        {"model": "primary", "messages": [{"role": "user", "content": "hello there"}]}
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(
                url, data=body, headers={"content-type": "application/json"}
            ) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"gateway answered {r.status}")
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return latencies


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


async def _measure(off: int, on: int, args: argparse.Namespace) -> dict[str, list[float]]:
    await _phase(off, 1.0, args.concurrency)  # warm-up
    await _phase(on, 1.0, args.concurrency)
    p50: dict[str, list[float]] = {"off": [], "on": []}
    p99: dict[str, list[float]] = {"off": [], "on": []}
    for i in range(args.phases):
        order = [("off", off), ("on", on)] if i % 2 == 0 else [("on", on), ("off", off)]
        for mode, port in order:
            values = await _phase(port, args.seconds, args.concurrency)
            p50[mode].append(statistics.median(values))
            p99[mode].append(_p(values, 0.99))
    return {"p50_off": p50["off"], "p50_on": p50["on"], "p99_off": p99["off"], "p99_on": p99["on"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.1, help="the rule's sample rate")
    parser.add_argument("--phases", type=int, default=6, help="phases per gateway")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one phase")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="laneway-shadow-bench-") as name:
        tmp = Path(name)
        with Processes(tmp) as procs:
            off, on = _start(procs, tmp, args.rate)
            result = asyncio.run(_measure(off, on, args))
    p50_off, p50_on = statistics.median(result["p50_off"]), statistics.median(result["p50_on"])
    p99_off, p99_on = statistics.median(result["p99_off"]), statistics.median(result["p99_on"])
    print(
        f"shadow at {args.rate:.0%}, c={args.concurrency}, 0 ms upstream, {args.phases} "
        f"phases of {args.seconds:g} s per gateway (medians of phases):"
    )
    added = p50_on - p50_off
    print(f"  p50 off {p50_off:.3f} ms, on {p50_on:.3f} ms → added {added:+.3f} ms (target ≤ +0.2)")
    print(f"  p99 off {p99_off:.3f} ms, on {p99_on:.3f} ms → added {p99_on - p99_off:+.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
