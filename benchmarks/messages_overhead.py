"""What Anthropic Messages translation costs: Laneway ``/v1/messages`` vs the bare passthrough.

    python benchmarks/messages_overhead.py [--quick] [--rounds N] [--chat] [--json out.json]

#13's bar: ``/v1/messages`` translated to an OpenAI-compatible upstream keeps >= 0.5 of the
bare passthrough's req/s per core, streaming and not. One run, one fake upstream
(``laneway.testing.FakeOpenAI`` via ``_upstream.py``, 0 ms latency, streamed chunks 1 ms
apart), concurrency 16, closed loop. Side by side, alternated:

* ``bare``: ``_passthrough.py`` relaying OpenAI chat completions (``_loadgen.chat_body``);
* ``laneway``: ``laneway serve`` (the config of ``gateway_overhead.py``: an
  ``openai_compatible`` deployment, ledger on, 1 worker) answering ``POST /v1/messages``
  with an ``anthropic-version`` header and the same prompt in Anthropic's shape (``system``
  + one user turn, ``max_tokens`` 64); streamed answers are read to ``message_stop``.

Both gateways stay up for the whole run, pinned to the same core; they are loaded one at a
time, in the order bare, laneway in even rounds and laneway, bare in odd ones, non-streaming
then streaming. req/s per core = requests ÷ the gateway process tree's user+system CPU
seconds in the measured window (``/proc/<pid>/stat``, as ``gateway_overhead.py``); the
ratio per mode is Laneway's pooled req/s per core ÷ bare's (each round's ratio is printed
too). The load generator runs in this process, on the other core with the upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import Tally, chat_body, percentile, read_stream, sample_cpu, send, worker
from _procs import Processes
from gateway_overhead import (
    Bench,
    Gateway,
    Plan,
    _cpu_sets,
    _loadavg,
    bare,
    laneway,
    start_upstreams,
)

CONCURRENCY = 16
THRESHOLD = 0.5
ANTHROPIC_VERSION = "2023-06-01"
_MODES = (False, True)  # stream


def messages_body(model: str, *, stream: bool, max_tokens: int = 64) -> dict[str, Any]:
    """``_loadgen.chat_body``'s request in Anthropic Messages' shape."""
    chat = chat_body(model, stream=False, max_tokens=max_tokens)
    system, user = chat["messages"]
    body: dict[str, Any] = {
        "model": model,
        "system": system["content"],
        "messages": [{"role": "user", "content": user["content"]}],
        "max_tokens": max_tokens,
        "temperature": chat["temperature"],
    }
    if stream:
        body["stream"] = True
    return body


async def read_messages_stream(
    response: aiohttp.ClientResponse, started: float
) -> tuple[float, int]:
    """Drain an Anthropic SSE answer to ``message_stop``; (seconds to the first text delta,
    text deltas). Raises when the stream ends without ``message_stop`` or carries an error."""
    first, count, buffer, stopped = -1.0, 0, b"", False
    async for chunk in response.content.iter_any():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if not line.startswith(b"event:"):
                continue
            name = line[6:].strip()
            if name == b"content_block_delta":
                count += 1
                if first < 0:
                    first = time.perf_counter() - started
            elif name == b"message_stop":
                stopped = True
            elif name == b"error":
                raise RuntimeError("stream carried an error event")
    if not stopped:
        raise RuntimeError("stream ended without message_stop")
    return first, count


@dataclass
class Target:
    """One side of the comparison: where and what to send."""

    name: str
    url: str
    payload: dict[bool, bytes]
    headers: dict[str, str]
    pid: int
    anthropic: bool


async def _cell(
    target: Target, stream: bool, upstream_pid: int, duration: float, warmup: float
) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as session:
        now = time.perf_counter()
        tally = Tally(warm_end=now + warmup, end=now + warmup + duration)
        watch = {"gateway": target.pid, "upstream": upstream_pid}
        sampler = asyncio.ensure_future(sample_cpu(watch, tally))
        reader = read_messages_stream if target.anthropic else read_stream
        payload = target.payload[stream]

        def call() -> Awaitable[float]:
            return send(
                session, target.url, payload, stream=stream, headers=target.headers, reader=reader
            )

        await asyncio.gather(*(worker(tally, call) for _ in range(CONCURRENCY)))
        cpu = await sampler
    gw = cpu["gateway"]
    p50 = percentile(tally.latencies, 50)
    return {
        "target": target.name,
        "stream": stream,
        "window_s": duration,
        "completed": tally.completed,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "rps": round(tally.completed / duration, 1),
        "p50_ms": None if p50 is None else round(p50 * 1000, 2),
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "gateway_util": round(gw / duration, 3),
        "core0_util": round((cpu["upstream"] + cpu["loadgen"]) / duration, 3),
        "rps_per_core": round(tally.completed / gw, 1) if gw else None,
    }


def run_cell(target: Target, stream: bool, upstream_pid: int, plan: Plan) -> dict[str, Any]:
    try:
        import uvloop

        return uvloop.run(_cell(target, stream, upstream_pid, plan.duration, plan.warmup))
    except ImportError:
        return asyncio.run(_cell(target, stream, upstream_pid, plan.duration, plan.warmup))


def targets(bench: Bench, with_chat: bool) -> tuple[Target, ...]:
    """Start the bare passthrough and Laneway (``gateway_overhead``'s ways) on the gateway core."""
    json_headers = {"content-type": "application/json"}
    b: Gateway = bare(bench)
    assert b.pid is not None
    chat = {s: orjson.dumps(chat_body(b.models[0.0], stream=s)) for s in _MODES}
    bare_target = Target(
        "bare",
        b.urls[0.0],
        chat,
        json_headers | {"authorization": "Bearer sk-bench"},
        b.pid,
        anthropic=False,
    )
    lw: Gateway = laneway(bench)
    assert lw.pid is not None
    url = lw.urls[0.0].replace("/v1/chat/completions", "/v1/messages")
    body = {s: orjson.dumps(messages_body(lw.models[0.0], stream=s)) for s in _MODES}
    headers = json_headers | {"x-api-key": "sk-bench", "anthropic-version": ANTHROPIC_VERSION}
    lane = Target("laneway", url, body, headers, lw.pid, anthropic=True)
    if not with_chat:
        return bare_target, lane
    lane_chat = {s: orjson.dumps(chat_body(lw.models[0.0], stream=s)) for s in _MODES}
    chat_headers = json_headers | {"authorization": "Bearer sk-bench"}
    return (
        bare_target,
        lane,
        Target("lw-chat", lw.urls[0.0], lane_chat, chat_headers, lw.pid, False),
    )


def _check(target: Target, upstream_pid: int) -> None:
    """One answer checked for its shape, then one short cell per mode: warms the gateway
    and fails early on a wrong answer."""
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        target.url, target.payload[False], target.headers
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - 127.0.0.1
        answer = orjson.loads(response.read())
    if target.anthropic:
        ok = answer.get("type") == "message" and answer["content"][0].get("text")
    else:
        ok = bool(answer["choices"][0]["message"].get("content"))
    if not ok:
        raise RuntimeError(f"{target.name}: unexpected answer {str(answer)[:200]}")
    for stream in _MODES:
        cell = run_cell(target, stream, upstream_pid, Plan(duration=1.0, warmup=0.5))
        if cell["errors"] or not cell["completed"]:
            mode = "streaming" if stream else "non-streaming"
            raise RuntimeError(f"{target.name} {mode}: {cell['first_error'] or 'no answers'}")


def _pooled(cells: list[dict[str, Any]], name: str, stream: bool) -> dict[str, float | None]:
    mine = [c for c in cells if c["target"] == name and c["stream"] == stream]
    completed = sum(c["completed"] for c in mine)
    cpu = sum(c["cpu_s"]["gateway"] for c in mine)
    window = sum(c["window_s"] for c in mine)
    return {
        "rps": round(completed / window, 1) if window else None,
        "gateway_util": round(cpu / window, 3) if window else None,
        "cpu_us_per_req": round(cpu / completed * 1e6, 1) if completed else None,
        "rps_per_core": round(completed / cpu, 1) if cpu else None,
    }


def summarise(cells: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stream in _MODES:
        bare_p, lane_p = _pooled(cells, "bare", stream), _pooled(cells, "laneway", stream)
        per_round = []
        for r in range(rounds):
            pair = {c["target"]: c for c in cells if c["stream"] == stream and c["round"] == r}
            b, lw = pair["bare"]["rps_per_core"], pair["laneway"]["rps_per_core"]
            if b and lw:
                per_round.append(round(lw / b, 3))
        ratio, verdict = None, "NOT MEASURED"
        if lane_p["rps_per_core"] and bare_p["rps_per_core"]:
            ratio = round(lane_p["rps_per_core"] / bare_p["rps_per_core"], 3)
            verdict = "PASS" if ratio >= THRESHOLD else "FAIL"
        chat_p = _pooled(cells, "lw-chat", stream)
        chat_ratio = None
        if chat_p["rps_per_core"] and bare_p["rps_per_core"]:
            chat_ratio = round(chat_p["rps_per_core"] / bare_p["rps_per_core"], 3)
        out["stream" if stream else "json"] = {
            "bare": bare_p,
            "laneway": lane_p,
            "lw-chat": chat_p,
            "chat_ratio": chat_ratio,
            "ratio": ratio,
            "ratio_per_round": per_round,
            "ratio_median": round(statistics.median(per_round), 3) if per_round else None,
            "verdict": verdict,
        }
    return out


def render(summary: dict[str, Any]) -> str:
    lines = [
        f"\n{'mode':14} {'target':8} {'req/s':>8} {'gw CPU':>7} {'CPU µs/req':>11}"
        f" {'req/s/core':>11}"
    ]
    for mode, figures in summary.items():
        kind = "streaming" if mode == "stream" else "non-streaming"
        for name in ("bare", "laneway", "lw-chat"):
            f = figures[name]
            if f["rps"] is None:
                continue
            lines.append(
                f"{kind:14} {name:8} {f['rps'] or 0:8.1f} {f['gateway_util'] or 0:7.2f}"
                f" {f['cpu_us_per_req'] or 0:11.1f} {f['rps_per_core'] or 0:11.1f}"
            )
    lines.append(f"\nLaneway /v1/messages ÷ bare chat completions, req/s per core (>= {THRESHOLD})")
    for mode, f in summary.items():
        kind = "streaming" if mode == "stream" else "non-streaming"
        lines.append(
            f"  {f['verdict']:12} {kind:14} pooled {f['ratio']}  median of rounds"
            f" {f['ratio_median']}  rounds {f['ratio_per_round']}"
        )
        if f["chat_ratio"] is not None:
            lines.append(
                f"  {'(reference)':12} {kind:14} Laneway chat completions {f['chat_ratio']}"
            )
    return "\n".join(lines)


def _measure(bench: Bench, rounds: int, with_chat: bool) -> list[dict[str, Any]]:
    start_upstreams(bench)
    upstream_pid = bench.upstreams[0.0][1]
    pair = targets(bench, with_chat)
    for target in pair:
        _check(target, upstream_pid)
    cells: list[dict[str, Any]] = []
    for r in range(rounds):
        for stream in _MODES:
            for target in pair if r % 2 == 0 else pair[::-1]:
                cell = run_cell(target, stream, upstream_pid, bench.plan) | {"round": r}
                cells.append(cell)
                mode = "stream" if stream else "json"
                print(
                    f"  round {r} {target.name:8} {mode:6} {cell['rps']:8.1f} req/s"
                    f"  gw CPU {cell['gateway_util']:.2f}  {cell['rps_per_core']} req/s/core"
                    f"  core0 {cell['core0_util']:.2f}  errors {cell['errors']}",
                    flush=True,
                )
                if cell["errors"]:
                    print(f"    first error: {cell['first_error']}", flush=True)
    return cells


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="#13's bar: Laneway /v1/messages >= 0.5 of bare's req/s per core (c=16, 0 ms).",
    )
    parser.add_argument("--quick", action="store_true", help="short cells, 2 rounds (~1 minute)")
    parser.add_argument("--rounds", type=int, help="alternated rounds (default 4; 2 with --quick)")
    parser.add_argument(
        "--chat",
        action="store_true",
        help="also load Laneway's /v1/chat/completions (same process) as a reference",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    plan = Plan(duration=3.0, warmup=1.0) if args.quick else Plan(duration=6.0, warmup=1.5)
    rounds = args.rounds or (2 if args.quick else 4)
    gw_cpus, load_cpus = _cpu_sets()
    if load_cpus:
        os.sched_setaffinity(0, load_cpus)
    tmp = Path(tempfile.mkdtemp(prefix="laneway-msgbench-"))
    started, load_before = time.monotonic(), _loadavg()
    if load_before > 1.0:
        print(f"warning: load average {load_before:.1f} before the run; figures will be noisy")
    try:
        with Processes(tmp) as procs:
            cells = _measure(Bench(plan, procs, tmp, gw_cpus, load_cpus), rounds, args.chat)
    except KeyboardInterrupt:
        print("\ninterrupted; every process started here was stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep_logs:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = summarise(cells, rounds)
    load_after = _loadavg()
    print(render(summary))
    wall = round(time.monotonic() - started, 1)
    print(
        f"\nwall time {wall} s; 1-minute load average {load_before:.1f} before,"
        f" {load_after:.1f} after (the run itself adds about 2)"
    )
    if args.json:
        report = {
            "plan": vars(plan) | {"rounds": rounds, "concurrency": CONCURRENCY},
            "cells": cells,
            "summary": summary,
            "loadavg_1m": {"before": load_before, "after": load_after},
            "wall_s": wall,
        }
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
