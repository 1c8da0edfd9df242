"""One timed phase of ``benchmarks/shadow.py``: closed-loop clients, each request's latency
and the gateway's own share of it.

The fake upstreams run with ``--timing`` (``benchmarks/_upstream.py``): each answer's text
ends with the times (``perf_counter_ns``, the system's monotonic clock, which this process
reads too) at which the upstream's handler began and rendered it. A request's **added
time** is its latency minus that upstream time: what the gateway, the loopback and the
client's own loop took. The upstream's sleep, which an event loop's timers round to whole
milliseconds, and its own scheduling jitter drop out of it.

With a model's latency (say 100 ms) closed-loop clients that all start at once stay in
step: every round, ``concurrency`` requests reach the gateway together and queue behind
each other, so a phase's median depends on how each burst was ordered. ``stagger`` starts
client ``i`` ``i / concurrency`` of a round late, and the upstream's ``--spread`` keeps
them apart; :attr:`PhaseStats.bunched` shows how many requests started within 1 ms of
another.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import time
from dataclasses import dataclass

import aiohttp
import orjson

from _upstream import read_marker

__all__ = ["PhaseStats", "Sample", "phase", "summarise"]

_BODY = orjson.dumps({"model": "primary", "messages": [{"role": "user", "content": "hello there"}]})
_HEADERS = {"content-type": "application/json"}


@dataclass(frozen=True, slots=True)
class Sample:
    """One request: when it was sent (``perf_counter`` s), its latency, and the upstream's
    part of it (ms; None when the answer carried no times)."""

    started: float
    latency_ms: float
    upstream_ms: float | None
    inbound_ms: float | None  # sent by the client .. the upstream's handler began


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """A phase's figures: ``p50`` of latency (the old statistic), ``added`` the median of
    latency − upstream time, ``inbound`` the median of its way in, ``bunched`` the share of
    requests sent within 1 ms of another, ``n`` requests."""

    p50: float
    added: float | None
    inbound: float | None
    bunched: float
    n: int


async def _one(session: aiohttp.ClientSession, url: str) -> Sample:
    started = time.perf_counter()
    began_ns = time.perf_counter_ns()
    async with session.post(url, data=_BODY, headers=_HEADERS) as r:
        raw = await r.read()
        if r.status != 200:
            raise RuntimeError(f"gateway answered {r.status}")
    latency_ms = (time.perf_counter() - started) * 1000
    choices = orjson.loads(raw).get("choices") or [{}]
    marker = read_marker((choices[0].get("message") or {}).get("content") or "")
    if marker is None:
        return Sample(started, latency_ms, None, None)
    up_began, up_answered = marker
    return Sample(started, latency_ms, (up_answered - up_began) / 1e6, (up_began - began_ns) / 1e6)


async def phase(
    session: aiohttp.ClientSession,
    port: int,
    seconds: float,
    concurrency: int,
    stagger_s: float = 0.0,
    offset: float = 0.0,
) -> list[Sample]:
    """``concurrency`` clients, one request after the other, for ``seconds``; client ``i``
    starts ``(i + offset) * stagger_s / concurrency`` late."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    samples: list[Sample] = []
    deadline = time.perf_counter() + seconds

    async def client(i: int) -> None:
        if stagger_s:
            await asyncio.sleep((i + offset) * stagger_s / concurrency)
        while time.perf_counter() < deadline:
            samples.append(await _one(session, url))

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return samples


def summarise(samples: list[Sample]) -> PhaseStats:
    """The phase's :class:`PhaseStats`."""
    added = [s.latency_ms - s.upstream_ms for s in samples if s.upstream_ms is not None]
    inbound = [s.inbound_ms for s in samples if s.inbound_ms is not None]
    starts = sorted(s.started for s in samples)
    gaps = [math.inf, *(b - a for a, b in itertools.pairwise(starts)), math.inf]
    near = sum(min(before, after) < 0.001 for before, after in itertools.pairwise(gaps))
    return PhaseStats(
        p50=statistics.median(s.latency_ms for s in samples),
        added=statistics.median(added) if added else None,
        inbound=statistics.median(inbound) if inbound else None,
        bunched=near / len(starts),
        n=len(samples),
    )
