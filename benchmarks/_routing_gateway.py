"""The gateway's added latency with routing on (``model: "auto"``) versus off.

Starts a fake OpenAI upstream (``_upstream.py``, 0 ms) and ``laneway serve`` with four
tiers on it, then sends the same requests one at a time over one keep-alive
connection, alternating ``auto`` with the tier's deployment named directly, so that
both modes see the same machine noise. The difference of the medians is what routing
adds end to end (scoring, profile lookup, the route headers, the ledger's route
columns); the upstream and the rest of the request path are the same in both.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from _procs import Processes, free_port, wait_http
from gateway_overhead import _LANEWAY_MAIN, _clean_env

__all__ = ["gateway_on_off"]

HERE = Path(__file__).resolve().parent
TIERS = ("simple", "standard", "complex", "frontier")


def _config(upstream: str, port: int, tmp: Path) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": port, "workers": 1},
        "database": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "deployments": [
            {
                "name": f"{tier}-dep",
                "model": "gpt-4o-mini",
                "provider": "openai_compatible",
                "api_base": f"{upstream}/v1",
                "upstream_model": "fake-model",
                "api_key": "env:LANEWAY_BENCH_KEY",
            }
            for tier in TIERS
        ],
        "tiers": {tier: [f"{tier}-dep"] for tier in TIERS},
        "default_tier": "simple",
        "router": {"enabled": True},
    }


def _start(procs: Processes, tmp: Path) -> int:
    env = _clean_env() | {"LANEWAY_BENCH_KEY": "sk-bench"}
    upstream = procs.start("upstream", [sys.executable, str(HERE / "_upstream.py")], cpus=None,
                           env=env, capture_stdout=True)  # fmt: skip
    assert upstream.stdout is not None
    ready = upstream.stdout.readline().decode().split()
    if len(ready) != 2 or ready[0] != "READY":
        raise RuntimeError(f"the fake upstream did not start (see {tmp})")
    port = free_port()
    path = tmp / "laneway-router-bench.yaml"
    path.write_text(yaml.safe_dump(_config(f"http://127.0.0.1:{ready[1]}", port, tmp)))
    argv = [sys.executable, "-c", _LANEWAY_MAIN, "serve", "--config", str(path)]
    gateway = procs.start("laneway", [*argv, "--log-level", "warning"], cpus=None, env=env)
    wait_http(f"http://127.0.0.1:{port}/health/live", gateway, 60.0, tmp / "laneway.log")
    return port


def _post(conn: http.client.HTTPConnection, body: bytes) -> tuple[float, str]:
    """(milliseconds, the tier that answered) for one request."""
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise RuntimeError(f"gateway answered {response.status}")
    return elapsed, response.getheader("x-laneway-tier") or "?"


def _measure(port: int, requests: Sequence[list[dict[str, Any]]], rounds: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    per: dict[str, dict[str, list[float]]] = {}
    try:
        auto = [json.dumps({"model": "auto", "messages": m}).encode() for m in requests]
        tiers = [_post(conn, body)[1] for body in auto]
        direct = [
            json.dumps({"model": f"{tier}-dep", "messages": m}).encode()
            for tier, m in zip(tiers, requests, strict=True)
        ]
        for i in range(rounds + 20):  # the first 20 rounds warm up
            for n, tier in enumerate(tiers):
                pair = [("on", auto[n]), ("off", direct[n])]
                for mode, body in pair if i % 2 else pair[::-1]:
                    ms, _ = _post(conn, body)
                    if i >= 20:
                        per.setdefault(f"{n + 1}→{tier}", {}).setdefault(mode, []).append(ms)
    finally:
        conn.close()
    return per


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


def gateway_on_off(requests: Sequence[list[dict[str, Any]]], rounds: int) -> list[str]:
    """Lines to print: per request kind and overall, p50/p99 with routing on and off."""
    with tempfile.TemporaryDirectory(prefix="laneway-router-bench-") as name:
        tmp = Path(name)
        with Processes(tmp) as procs:
            per = _measure(_start(procs, tmp), requests, rounds)
    lines = [f"gateway, c=1, 0 ms upstream, {rounds} rounds (auto and direct alternated):"]
    on_all: list[float] = []
    off_all: list[float] = []
    paired: list[float] = []
    for key, modes in per.items():
        on, off = modes["on"], modes["off"]
        on_all += on
        off_all += off
        paired += [a - b for a, b in zip(on, off, strict=True)]
        added = statistics.median(on) - statistics.median(off)
        lines.append(
            f"  request {key:12s} routing on p50 {statistics.median(on):.3f} ms / off "
            f"{statistics.median(off):.3f} ms → added {added:+.3f} ms"
        )
    lines.append(
        f"  all: on p50 {statistics.median(on_all):.3f} p99 {_p(on_all, 0.99):.3f} ms; "
        f"off p50 {statistics.median(off_all):.3f} p99 {_p(off_all, 0.99):.3f} ms; "
        f"added (median of paired differences) {statistics.median(paired):+.3f} ms"
    )
    return lines
