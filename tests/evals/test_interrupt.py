"""Ctrl-C during a run: errors that callbacks raise while the run is being cancelled (the
embedded model's worker finishing a cancelled request) print nothing; before it, they are
reported as usual. Measured with the embedded model: 163 lines of tracebacks before the
friendly line, now only the line."""

from __future__ import annotations

import asyncio
import logging

import pytest

from laneway.cli._eval import quiet_when_cancelled


def _boom(_future: object) -> None:
    raise RuntimeError("a callback failed")


async def _run(cancel_first: bool) -> None:
    quiet_when_cancelled()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    future.add_done_callback(_boom)
    if cancel_first:
        task = asyncio.current_task()
        assert task is not None
        loop.call_soon(task.cancel)
        try:
            await asyncio.sleep(5)
        finally:
            future.cancel()  # its callback raises while the task is being cancelled
            await asyncio.sleep(0)
    else:
        future.cancel()
        await asyncio.sleep(0)


def test_errors_while_cancelling_are_quiet(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="asyncio"), pytest.raises(asyncio.CancelledError):
        asyncio.run(_run(cancel_first=True))
    assert not [r for r in caplog.records if "Exception in callback" in r.getMessage()]


def test_errors_before_a_cancel_are_still_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(_run(cancel_first=False))
    assert [r for r in caplog.records if "Exception in callback" in r.getMessage()]
