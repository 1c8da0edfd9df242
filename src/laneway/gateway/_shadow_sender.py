"""The shadow sender process: ``python -m laneway.gateway._shadow_sender``, started by the
gateway (:class:`~laneway.gateway._shadow_link.SenderLink`), never by hand.

stdin: a first frame with the pickled ``(settings, database url)``, then one frame per copy
(:func:`~laneway.gateway._shadow.ShadowMirror.encode`); frames are a 4-byte big-endian length
and the payload. The sender builds a gateway from the settings (its own adapters, governance,
ledger writer; environment variables are inherited) and runs its mirror inline: governance on
every copy, the daily spend caps, ``source=shadow`` ledger rows, the pairs. stdout: frames of
``(done per rule, laneway_shadow_copies count increments)`` every 50 ms while there is news.
At the end of stdin it finishes the queued copies, flushes, reports and exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

from laneway.gateway._build import build_gateway
from laneway.gateway._shadow_link import read_frame, write_frame_header
from laneway.ledger import open_database
from laneway.settings import Settings

__all__ = ["main"]

REPORT_EVERY_S = 0.05

log = logging.getLogger("laneway.shadow")


def _inline(settings: Settings) -> Settings:
    # the sender's loop serves only copies (at sender_nice: the OS gives the clients' worker
    # the CPU first), so its mirror never waits for its own loop to be idle
    update = {"process": "inline", "inline_max_lag_ms": None}
    shadow = settings.shadow.model_copy(update=update)
    return settings.model_copy(update={"shadow": shadow})


class _Reporter:
    def __init__(self, done: Counter[str], counts: Any) -> None:
        self._done, self._counts = done, counts
        self._seen_done: Counter[str] = Counter()
        self._seen_counts: Counter[tuple[str, str]] = Counter()

    def report(self) -> None:
        done = self._done - self._seen_done
        counts = Counter(dict(self._counts)) - self._seen_counts
        if not done and not counts:
            return
        self._seen_done.update(done)
        self._seen_counts.update(counts)
        payload = pickle.dumps((dict(done), dict(counts)))
        os.write(1, write_frame_header(len(payload)) + payload)


async def _serve() -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    boot = await read_frame(reader)
    if boot is None:
        return 1
    settings, url = pickle.loads(boot)  # noqa: S301 - from the gateway that started us
    if settings.shadow.sender_nice:
        os.nice(settings.shadow.sender_nice)  # copies wait; clients do not
    gateway = build_gateway(_inline(settings), engine=open_database(url))
    mirror = gateway.shadow
    assert mirror is not None
    if gateway.ledger is not None:
        gateway.ledger.start()
    for name in {c for rule in mirror.rules for c in rule.candidates}:
        load = getattr(gateway.deployments[name].adapter, "load", None)
        if load is not None:  # an embedded candidate
            await loop.run_in_executor(None, load)
    mirror.start()
    reporter = _Reporter(mirror.done, gateway.metrics.shadow)

    async def report() -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            reporter.report()

    ticker = asyncio.create_task(report())
    try:
        while (frame := await read_frame(reader)) is not None:
            await mirror.submit(mirror.decode(frame))  # waits while the mirror's queue is full
        await mirror.drain()
        await mirror.stop()
    finally:
        ticker.cancel()
        await gateway.aclose()  # flushes the ledger
        reporter.report()
    return 0


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # Ctrl-C reaches the whole process group: the gateway stops us by closing stdin (after
    # its graceful shutdown), so that the queued copies are finished first
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve())


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed, as the gateway's server uses (each copy's HTTP
    call costs the sender less CPU on it); asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    raise SystemExit(main())
