"""The fake upstream of the benchmark, run as its own process.

``python benchmarks/_upstream.py --latency 0.05 --chunk-delay 0.001`` starts
:class:`laneway.testing.FakeOpenAI` on a loopback port, prints ``READY <port>`` and serves
until it gets SIGTERM or SIGINT. It records nothing (the test fake keeps every request
in ``.received``, which would grow without bound under load).

Two options, both off by default, for ``benchmarks/shadow.py``: ``--timing`` appends the
fake's own handling time to each chat answer's text (:func:`timing_marker`: when its handler
began and when it rendered the answer, ``time.perf_counter_ns()``, the system's monotonic
clock, in letters so that no detector reads them as a number), so that a client can take
the upstream's time, and its jitter, out of the latency it measured; ``--spread S`` draws
each answer's delay uniformly from ``latency ± S`` (seeded by ``--seed``), so that closed-loop
clients do not stay in step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import random
import signal
import sys
import threading
import time
from typing import Any

from aiohttp import web

from laneway.testing import FakeOpenAI, FakeReply, FakeTurn, Fault, default_responder

__all__ = ["QuietFakeOpenAI", "TimedFakeOpenAI", "main", "read_marker", "timing_marker"]

_LETTERS = "abcdefghijklmnop"  # a nibble each: no digits in the text
_ENCODE = str.maketrans("0123456789abcdef", _LETTERS)
_DECODE = str.maketrans(_LETTERS, "0123456789abcdef")
_MARK = " [upstream "


def timing_marker(began_ns: int, answered_ns: int) -> str:
    """The text ``--timing`` appends to an answer: two ``perf_counter_ns`` stamps."""
    began, answered = (f"{ns:x}".translate(_ENCODE) for ns in (began_ns, answered_ns))
    return f"{_MARK}{began} {answered}]"


def read_marker(text: str) -> tuple[int, int] | None:
    """(began, answered) ns from an answer's text, or None when it carries no marker."""
    at = text.rfind(_MARK)
    if at < 0 or not text.endswith("]"):
        return None
    try:
        began, answered = text[at + len(_MARK) : -1].split(" ")
        return int(began.translate(_DECODE), 16), int(answered.translate(_DECODE), 16)
    except ValueError:
        return None


class QuietFakeOpenAI(FakeOpenAI):
    """:class:`FakeOpenAI` that parses the body but keeps no record of it."""

    async def record(self, request: web.Request) -> Any:
        import orjson

        raw = await request.read()
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return raw.decode("utf-8", "replace")


_BEGAN: contextvars.ContextVar[int] = contextvars.ContextVar("began")


class TimedFakeOpenAI(QuietFakeOpenAI):
    """:class:`QuietFakeOpenAI` whose chat answers end with :func:`timing_marker` (with
    ``timing``), and whose delay is drawn from ``latency ± spread`` (uniform, a seeded
    generator; this process is never scripted with faults, so they are not applied)."""

    def __init__(
        self, *, timing: bool = True, spread: float = 0.0, seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(responder=self._respond if timing else default_responder, **kwargs)
        self.spread = spread
        self._random = random.Random(seed)

    async def record(self, request: web.Request) -> Any:
        _BEGAN.set(time.perf_counter_ns())  # the handler's first step, before the body
        return await super().record(request)

    async def before_answer(self, request: web.Request, fault: Fault | None) -> None:
        delay = self.latency + self._random.uniform(-self.spread, self.spread)
        if delay > 0:
            await asyncio.sleep(delay)

    @staticmethod
    def _respond(turn: FakeTurn) -> FakeReply:
        reply = default_responder(turn)
        began = _BEGAN.get(time.perf_counter_ns())
        return FakeReply(
            reply.text + timing_marker(began, time.perf_counter_ns()), reply.tool_calls
        )


def _use_uvloop() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--timing", action="store_true", help="answers carry the fake's times")
    parser.add_argument("--spread", type=float, default=0.0, help="delay: latency ± seconds")
    parser.add_argument("--seed", type=int, default=0, help="--spread: the generator's seed")
    args = parser.parse_args(argv)
    _use_uvloop()
    server: QuietFakeOpenAI
    if args.timing or args.spread:
        server = TimedFakeOpenAI(
            api_key=None, latency=args.latency, chunk_delay=args.chunk_delay,
            timing=args.timing, spread=args.spread, seed=args.seed,
        )  # fmt: skip
    else:
        server = QuietFakeOpenAI(api_key=None, latency=args.latency, chunk_delay=args.chunk_delay)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    try:
        print(f"READY {server.port}", flush=True)
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
