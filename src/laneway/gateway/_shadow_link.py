"""The gateway's side of the shadow sender process (``shadow.process: separate``).

The sender (``laneway.gateway._shadow_sender``, started with the same Python) builds its own
adapters, governance and ledger writer from the gateway's settings and sends the copies; the
gateway's event loop only pickles each sampled copy and writes it to the sender's stdin as one
length-prefixed frame. The sender answers on its stdout with frames of counts: copies done
per rule and the ``laneway_shadow_copies`` outcomes (sent, failed, skipped_*), which are
added to the gateway's metrics.

Bounds: the mirror's queue (``shadow.queue``) plus the pipe; when the sender falls behind,
the pipe fills, the writer waits, the queue fills and ``offer`` drops (counted). A sender
that dies is started again (after a pause); the copies it had not finished are counted as
``lost``. At shutdown the queued copies are written, stdin is closed and the sender has
``shadow.drain_s`` to finish them; what is left is killed and counted ``lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import struct
import sys
import time
from collections import defaultdict
from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = ["SenderLink", "read_frame", "write_frame_header"]

log = logging.getLogger("laneway.shadow")

_HEADER = struct.Struct(">I")
RESTART_AFTER_S = 1.0


def write_frame_header(size: int) -> bytes:
    return _HEADER.pack(size)


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """One frame's payload, or ``None`` at the end of the stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
        return await reader.readexactly(_HEADER.unpack(header)[0])
    except asyncio.IncompleteReadError:
        return None


class SenderLink:
    """Feeds queued copies to the sender process; restarts it when it dies."""

    def __init__(
        self,
        boot: bytes,
        queue: asyncio.Queue[Any],
        encode: Callable[[Any], tuple[str, bytes]],
        counts: MutableMapping[tuple[str, str], int],
        drain_s: float,
    ) -> None:
        self._boot = boot  # the first frame: what the sender builds itself from
        self._queue = queue
        self._encode = encode  # an offered copy -> (its rule, the frame's payload)
        self._counts = counts
        self._drain_s = drain_s
        self._inflight: defaultdict[str, int] = defaultdict(int)  # written, not done
        self._idle = asyncio.Event()
        self._idle.set()
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.starts = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="laneway-shadow-link")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self._serve_one()
            except Exception:  # never let the link die: copies would pile up unseen
                log.exception("shadow sender link failed")
            self._lose_inflight()
            if self._stopping:
                return
            log.error("shadow sender exited; starting it again")
            await asyncio.sleep(max(0.0, RESTART_AFTER_S - (time.monotonic() - started)))

    async def _serve_one(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "laneway.gateway._shadow_sender",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        self.starts += 1
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(write_frame_header(len(self._boot)) + self._boot)
        if self._stopping:  # stop() came while the process was starting: nothing to send
            proc.stdin.close()
        reader = asyncio.create_task(self._read_counts(proc.stdout))
        pump = asyncio.create_task(self._pump(proc.stdin))
        try:
            await asyncio.wait({reader, pump}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            if proc.returncode is None and not self._stopping:
                proc.kill()
            await reader  # the sender's last counts, up to its exit
            await proc.wait()

    async def _pump(self, stdin: asyncio.StreamWriter) -> None:
        queue = self._queue
        while True:
            offered = await queue.get()
            try:
                rule, payload = self._encode(offered)
                self._inflight[rule] += 1
                self._idle.clear()
                stdin.write(write_frame_header(len(payload)) + payload)
                await stdin.drain()  # a full pipe waits here; the queue then fills
            except (ConnectionError, BrokenPipeError):
                return  # the sender is gone: _run counts what it had
            except Exception:
                log.exception("shadow copy could not be handed to the sender")
            finally:
                queue.task_done()

    async def _read_counts(self, stdout: asyncio.StreamReader) -> None:
        while (frame := await read_frame(stdout)) is not None:
            done, counts = pickle.loads(frame)  # noqa: S301 - our own child process
            for key, n in counts.items():
                self._counts[key] += n
            for rule, n in done.items():
                self._inflight[rule] -= n
            if not any(self._inflight.values()):
                self._idle.set()

    def _lose_inflight(self) -> None:
        for rule, n in self._inflight.items():
            if n > 0:
                self._counts[rule, "lost"] += n
        self._inflight.clear()
        self._idle.set()

    async def drain(self) -> None:
        """Wait until every queued copy was written and done by the sender."""
        await self._queue.join()
        await self._idle.wait()

    async def stop(self) -> None:
        """Hand over what is queued, close the sender's stdin and give it ``drain_s`` to
        finish; kill it after that (its unfinished copies are counted ``lost``)."""
        deadline = time.monotonic() + self._drain_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), self._drain_s)
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.stdin is not None and proc.returncode is None:
            proc.stdin.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(
                    asyncio.shield(self._task), max(0.0, deadline - time.monotonic())
                )
            except TimeoutError:
                proc = self._proc  # perhaps started after stop() began
                if proc is not None and proc.returncode is None:
                    proc.kill()
                else:
                    self._task.cancel()  # still starting it
                await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():  # never handed over
            rule, _ = self._encode(self._queue.get_nowait())
            self._counts[rule, "lost"] += 1
            self._queue.task_done()
