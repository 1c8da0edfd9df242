"""The fake upstream of the benchmark, run as its own process.

``python benchmarks/_upstream.py --latency 0.05 --chunk-delay 0.001`` starts
:class:`laneway.testing.FakeOpenAI` on a loopback port, prints ``READY <port>`` and serves
until it gets SIGTERM or SIGINT. It records nothing (the test fake keeps every request
in ``.received``, which would grow without bound under load).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from aiohttp import web

from laneway.testing import FakeOpenAI

__all__ = ["QuietFakeOpenAI", "main"]


class QuietFakeOpenAI(FakeOpenAI):
    """:class:`FakeOpenAI` that parses the body but keeps no record of it."""

    async def record(self, request: web.Request) -> Any:
        import orjson

        raw = await request.read()
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return raw.decode("utf-8", "replace")


def _use_uvloop() -> None:
    try:
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    args = parser.parse_args(argv)
    _use_uvloop()
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
