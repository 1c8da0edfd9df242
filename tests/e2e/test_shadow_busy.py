"""Copies sent from the worker's own loop wait while that loop is busy: a copy costs
about as much CPU as a request, so on a saturated worker the clients go first, the queue
holds the copies, and what it cannot hold is shed (counted ``outcome="shed"``)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest

from laneway.gateway import ShadowMirror
from laneway.gateway._shadow import loop_lag
from laneway.gateway._shadow_sender import _inline
from laneway.providers import ChatRequest, ChatResult, Usage
from laneway.settings import Settings, ShadowSettings

RESULT = ChatResult(content="answer", finish_reason="stop", usage=Usage(3, 7), model="m")


def test_the_lag_probe_reads_how_late_a_timer_fires_on_a_busy_loop() -> None:
    async def run() -> None:
        idle = await loop_lag()
        assert 0.0 <= idle < 0.2  # nothing else on this loop

        # a callback that holds the loop 50 ms (a turn serving a heavy request), due while
        # the probe's timer is pending
        asyncio.get_running_loop().call_later(0.001, time.sleep, 0.05)
        busy = await loop_lag()
        assert busy >= 0.04  # the timer ran only after the 50 ms callback

    asyncio.run(run())


class _Lag:
    """A stand-in for ``loop_lag``: reads ``value`` seconds, after a real turn of the loop."""

    def __init__(self, value: float) -> None:
        self.value = value

    async def __call__(self) -> float:
        await asyncio.sleep(0)
        return self.value


def _mirror(delay: float = 0.0, **shadow: Any) -> tuple[Any, Any, list[str]]:
    """A mirror with one rule and ``shadow`` settings whose candidate calls take ``delay``
    seconds and record the request id; its loop reads idle until a test says otherwise."""
    rule = {"name": "r", "match": {"model": ["primary"]}, "sample_rate": 1.0,
            "candidates": ["cand"], "daily_budget_usd": "1"}  # fmt: skip
    settings = ShadowSettings.model_validate({"rules": [rule], **shadow})
    gateway = SimpleNamespace(metrics=SimpleNamespace(shadow=defaultdict(int)))
    mirror: Any = ShadowMirror(settings, engine=None, gateway=gateway)  # type: ignore[arg-type]
    mirror.lag = _Lag(0.0)
    sent: list[str] = []

    async def send(job: Any, candidate: str) -> None:
        if delay:
            await asyncio.sleep(delay)
        sent.append(job.request_id)

    mirror._mirror = send
    return mirror, gateway, sent


def _ctx(request_id: str) -> Any:
    request = ChatRequest(model="primary", messages=({"role": "user", "content": "hi"},))
    return SimpleNamespace(
        source="api", request=request, request_id=request_id, admission=None, key_id=None,
        task=None, trace=SimpleNamespace(served_by="prim"), started=0.0,
        estimated_usage=None, resolution=None, requested_model="primary",
    )  # fmt: skip


def test_a_busy_worker_holds_its_copies_and_sheds_what_the_queue_cannot_hold() -> None:
    async def run() -> None:
        mirror, gateway, sent = _mirror(queue=3, workers=1, inline_max_lag_ms=1.0)
        mirror.lag = _Lag(0.004)  # 4 ms late: the clients keep the loop busy
        mirror.start()
        try:
            for i in range(5):
                mirror.offer(_ctx(f"req-{i}"), RESULT, "answer", None)
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            assert sent == []  # nothing went out while the worker was busy
            assert mirror.holding
            # the worker took one copy and waits with it; the queue holds three more
            assert gateway.metrics.shadow["r", "shed"] == 1
            assert gateway.metrics.shadow["r", "dropped"] == 0
            mirror.lag.value = 0.0002  # the clients leave the loop time to spare
            await asyncio.wait_for(mirror.drain(), 5)
            assert sent == [f"req-{i}" for i in range(4)]
            assert not mirror.holding
            mirror.offer(_ctx("req-5"), RESULT, "answer", None)
            await asyncio.wait_for(mirror.drain(), 5)
            assert sent[-1] == "req-5"
        finally:
            await mirror.stop()

    asyncio.run(run())


def test_a_full_queue_on_an_idle_worker_still_counts_dropped() -> None:
    async def run() -> None:
        mirror, gateway, _ = _mirror(queue=1, workers=1, inline_max_lag_ms=1.0)
        mirror._queue = asyncio.Queue(1)  # no workers: the queue only fills
        mirror.offer(_ctx("a"), RESULT, "answer", None)
        mirror.offer(_ctx("b"), RESULT, "answer", None)
        assert gateway.metrics.shadow["r", "dropped"] == 1
        assert gateway.metrics.shadow["r", "shed"] == 0

    asyncio.run(run())


def test_without_a_limit_copies_go_out_however_busy_the_worker_is() -> None:
    async def run() -> None:
        mirror, _, sent = _mirror(workers=1, inline_max_lag_ms=None)
        mirror.lag = _Lag(5.0)
        mirror.start()
        try:
            mirror.offer(_ctx("x"), RESULT, "answer", None)
            await asyncio.wait_for(mirror.drain(), 5)
            assert sent == ["x"]
            assert not mirror.holding
        finally:
            await mirror.stop()

    asyncio.run(run())


def test_the_default_limit_and_the_sender_process_never_waiting_for_itself() -> None:
    assert ShadowSettings().inline_max_lag_ms == 1.0
    settings = Settings.model_validate({"shadow": {"inline_max_lag_ms": 3}})
    # the sender's loop serves only copies (at sender_nice): waiting for it to be idle
    # would stall them
    assert _inline(settings).shadow.inline_max_lag_ms is None
    assert _inline(settings).shadow.process == "inline"
    with pytest.raises(ValueError, match="greater than 0"):
        ShadowSettings.model_validate({"inline_max_lag_ms": 0})


def test_copies_wait_on_their_candidates_concurrently() -> None:
    """A copy waits on the candidate's whole answer (seconds for a real model): with the
    default workers the copies of a busy hour keep up instead of filling the queue."""

    async def run() -> None:
        assert ShadowSettings().workers == 16
        mirror, gateway, _ = _mirror()
        in_flight, most = 0, 0

        async def slow_candidate(job: Any, candidate: str) -> None:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.2)
            in_flight -= 1

        mirror._mirror = slow_candidate
        mirror.start()
        try:
            for i in range(40):
                mirror.offer(_ctx(f"req-{i}"), RESULT, "answer", None)
            await asyncio.wait_for(mirror.drain(), 10)
            assert most == 16
            assert gateway.metrics.shadow["r", "dropped"] == 0
        finally:
            await mirror.stop()

    asyncio.run(run())


def test_one_sending_task_at_a_time_probes_a_busy_loop() -> None:
    """Sixteen tasks holding copies on a busy loop would each wake it every 50 ms: one
    probes, the others wait their turn; once the loop is idle they all go."""

    async def run() -> None:
        mirror, _, sent = _mirror()
        probes = 0

        class _Counting(_Lag):
            async def __call__(self) -> float:
                nonlocal probes
                probes += 1
                return await super().__call__()

        mirror.lag = _Counting(0.01)
        mirror.start()
        try:
            for i in range(16):
                mirror.offer(_ctx(f"req-{i}"), RESULT, "answer", None)
            await asyncio.sleep(0.5)
            assert sent == []
            assert probes <= 0.5 / 0.05 + 2  # one probe per 50 ms, not one per task
            mirror.lag.value = 0.0
            await asyncio.wait_for(mirror.drain(), 5)
            assert sorted(sent) == sorted(f"req-{i}" for i in range(16))
        finally:
            await mirror.stop()

    asyncio.run(run())


def test_stopping_gives_queued_copies_drain_s_to_go_out() -> None:
    async def run() -> None:
        mirror, gateway, sent = _mirror(0.1, workers=1, drain_s=5, process="inline")
        mirror.start()
        for i in range(5):
            mirror.offer(_ctx(f"req-{i}"), RESULT, "answer", None)
        await mirror.stop()  # before: cancelled at once, 0 of 5 sent
        assert sent == [f"req-{i}" for i in range(5)]
        assert gateway.metrics.shadow["r", "lost"] == 0

    asyncio.run(run())


def test_copies_still_queued_after_drain_s_are_counted_lost() -> None:
    async def run() -> None:
        mirror, gateway, sent = _mirror(0.1, workers=1, drain_s=0.15, process="inline")
        mirror.start()
        for i in range(10):
            mirror.offer(_ctx(f"req-{i}"), RESULT, "answer", None)
        await mirror.stop()
        queued_lost = gateway.metrics.shadow["r", "lost"]
        assert 1 <= len(sent) < 10
        # the one in flight when the workers were cancelled is neither sent nor queued
        assert len(sent) + queued_lost in (9, 10)

    asyncio.run(run())
