"""The closed-loop load generator of the benchmark, run as its own process.

``python benchmarks/_loadgen.py --url URL --model M --concurrency N --duration S --warmup W
[--stream] [--watch NAME=PID ...]`` runs ``N`` workers, each sending one chat request after
the other, for ``W`` seconds of warm-up and then ``S`` measured seconds, and prints one JSON
object: requests completed in the measured window, errors, and percentiles in ms of the
latency (and with ``--stream`` the time to the first content token) of those requests,
and the CPU seconds that each watched process tree (``/proc/<pid>/stat`` utime + stime,
children included) spent in the window.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

__all__ = [
    "Tally",
    "chat_body",
    "cpu_seconds",
    "main",
    "percentile",
    "read_stream",
    "sample_cpu",
    "send",
    "worker",
]

_TICK = os.sysconf("SC_CLK_TCK")


def chat_body(model: str, *, stream: bool, max_tokens: int = 64) -> dict[str, Any]:
    """A small, realistic chat request."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise, helpful assistant."},
            {
                "role": "user",
                "content": "Summarise the main causes of the French Revolution in two "
                "sentences, for a reader who knows little history.",
            },
        ],
        "max_tokens": max_tokens,
        "temperature": 0.2,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(p) for p in task.read_text().split())
            except OSError:
                continue
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants."""
    total = 0
    for member in _tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _TICK


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _has_content(line: bytes) -> bool:
    if not line.startswith(b"data:"):
        return False
    data = line[5:].strip()
    if not data or data == b"[DONE]":
        return False
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return any((choice.get("delta") or {}).get("content") for choice in event.get("choices") or ())


async def read_stream(response: aiohttp.ClientResponse, started: float) -> tuple[float, int]:
    """Drain an SSE answer; returns (seconds to the first content delta, content deltas)."""
    first = -1.0
    count = 0
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if _has_content(line.rstrip(b"\r")):
                count += 1
                if first < 0:
                    first = time.perf_counter() - started
    return first, count


@dataclass
class Tally:
    """One cell's answers and errors that finished in the measured window
    (``warm_end``..``end``, ``time.perf_counter()`` seconds)."""

    warm_end: float
    end: float
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    completed: int = 0
    errors: int = 0
    first_error: str | None = None


Reader = Callable[[aiohttp.ClientResponse, float], Awaitable[tuple[float, int]]]
_BENCH_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


async def send(
    session: aiohttp.ClientSession,
    url: str,
    payload: bytes,
    *,
    stream: bool,
    headers: dict[str, str] = _BENCH_HEADERS,
    reader: Reader = read_stream,
) -> float:
    """One request; a streamed answer is drained by ``reader`` (default: OpenAI chunks).
    Seconds to the first content delta (-1 unstreamed); ``RuntimeError`` on a status
    other than 200 or a stream without content."""
    started = time.perf_counter()
    async with session.post(url, data=payload, headers=headers) as response:
        if response.status != 200:
            text = (await response.read())[:200].decode("utf-8", "replace")
            raise RuntimeError(f"HTTP {response.status}: {text}")
        if not stream:
            await response.read()
            return -1.0
        ttft, count = await reader(response, started)
        if count == 0:
            raise RuntimeError("stream carried no content")
        return ttft


async def worker(tally: Tally, call: Callable[[], Awaitable[float]]) -> None:
    """``call`` (one :func:`send`) again and again until the window ends, counting what
    finished inside it (an error waits 10 ms before the next call)."""
    while (started := time.perf_counter()) < tally.end:
        try:
            ttft = await call()
        except (TimeoutError, aiohttp.ClientError, RuntimeError) as exc:
            done = time.perf_counter()
            if tally.warm_end <= done <= tally.end:
                tally.errors += 1
                tally.first_error = tally.first_error or f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.01)
            continue
        done = time.perf_counter()
        if tally.warm_end <= done <= tally.end:
            tally.completed += 1
            tally.latencies.append(done - started)
            if ttft >= 0:
                tally.ttfts.append(ttft)


async def sample_cpu(watch: dict[str, int], tally: Tally) -> dict[str, float]:
    """CPU seconds each watched process tree (and this process: ``loadgen``) used in the
    measured window."""
    await asyncio.sleep(max(0.0, tally.warm_end - time.perf_counter()))
    before = {name: cpu_seconds(pid) for name, pid in watch.items()}
    own_before = time.process_time()
    await asyncio.sleep(max(0.0, tally.end - time.perf_counter()))
    after = {name: cpu_seconds(pid) for name, pid in watch.items()}
    used = {name: after[name] - before[name] for name in watch}
    used["loadgen"] = time.process_time() - own_before
    return used


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    payload = orjson.dumps(chat_body(args.model, stream=args.stream))
    watch = dict(item.split("=", 1) for item in args.watch)
    pids = {name: int(pid) for name, pid in watch.items()}
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        now = time.perf_counter()
        tally = Tally(warm_end=now + args.warmup, end=now + args.warmup + args.duration)
        sampler = asyncio.ensure_future(sample_cpu(pids, tally))

        def call() -> Awaitable[float]:
            return send(session, args.url, payload, stream=args.stream)

        await asyncio.gather(*(worker(tally, call) for _ in range(args.concurrency)))
        cpu = await sampler
    return {
        "concurrency": args.concurrency,
        "stream": args.stream,
        "window_s": args.duration,
        "completed": tally.completed,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "rps": tally.completed / args.duration,
        "p50_ms": _ms(percentile(tally.latencies, 50)),
        "p99_ms": _ms(percentile(tally.latencies, 99)),
        "ttft_p50_ms": _ms(percentile(tally.ttfts, 50)),
        "ttft_p99_ms": _ms(percentile(tally.ttfts, 99)),
        "cpu_s": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--watch", action="append", default=[], metavar="NAME=PID")
    args = parser.parse_args(argv)
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    print(orjson.dumps(result).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
