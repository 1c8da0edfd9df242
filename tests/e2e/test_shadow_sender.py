"""``shadow.process: separate``: the copies are sent by a dedicated process that builds its
own adapters, governance and ledger writer from the gateway's settings; the gateway only
pickles and pipes each copy. The sender's outcomes reach the gateway's metrics, its crash
loses only the copies it held (counted ``lost``) and it is started again, and at shutdown
the queued copies are finished within ``drain_s`` or counted ``lost``."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from laneway.gateway import ShadowMirror
from laneway.providers import ChatRequest, ChatResult, Usage
from laneway.settings import Settings
from laneway.testing import FakeOpenAI, FakeReply, FakeTurn


@pytest.fixture
def candidate() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _settings(tmp_path: Path, url: str, **shadow: Any) -> Settings:
    def deployment(name: str, hosting: str) -> dict[str, Any]:
        return {"name": name, "model": f"{name}-model", "provider": "openai_compatible",
                "api_base": url + "/v1", "hosting": hosting,
                "price": {"input_per_mtok": "1", "output_per_mtok": "2"}}  # fmt: skip

    rule = {"name": "r", "match": {"model": ["primary"]}, "sample_rate": 1.0,
            "candidates": ["open", "closed"], "daily_budget_usd": "5"}  # fmt: skip
    return Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
            "deployments": [deployment("open", "self_hosted"), deployment("closed", "serverless")],
            "shadow": {"rules": [rule], "process": "separate", **shadow},
            "ledger": {"flush_interval": 0.05},
        }
    )


def _ctx(i: int, sensitive: bool = False) -> Any:
    request = ChatRequest(model="primary", messages=({"role": "user", "content": f"q {i}"},))
    admission = SimpleNamespace(sensitive=sensitive)
    return SimpleNamespace(
        source="api", request=request, request_id=f"req-{i}", admission=admission,
        key_id="k", task=None, trace=SimpleNamespace(served_by="open"), started=0.0,
        estimated_usage=None, resolution=None, requested_model="primary",
    )  # fmt: skip


RESULT = ChatResult(content="answer", finish_reason="stop", usage=Usage(3, 7), model="m")


def _mirror(settings: Settings, embedded: str | None = None) -> tuple[ShadowMirror, Any]:
    from laneway.ledger import open_database

    engine = open_database(settings.database.url)
    deployments = {
        d.name: SimpleNamespace(hosting="embedded" if d.name == embedded else d.hosting)
        for d in settings.deployments
    }
    gateway: Any = SimpleNamespace(
        settings=settings, metrics=SimpleNamespace(shadow=defaultdict(int)),
        deployments=deployments,
    )  # fmt: skip
    return ShadowMirror(settings.shadow, engine, gateway), gateway


@pytest.fixture
def spare_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine with a core beyond the gateway's workers and one more."""
    monkeypatch.setattr("laneway.gateway._shadow.spare_core", lambda workers: True)


def test_auto_needs_a_spare_core(
    tmp_path: Path, candidate: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a machine without a core beyond the workers and one more, ``auto`` sends copies
    from the worker's own loop (on 2 cores a sender process cost the clients more)."""
    from laneway.gateway._shadow import spare_core

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert not spare_core(1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert spare_core(1) and not spare_core(2)
    monkeypatch.setattr("laneway.gateway._shadow.spare_core", lambda workers: False)
    mirror, _ = _mirror(_settings(tmp_path, candidate.url, process="auto"))

    async def run() -> None:
        mirror.start()
        try:
            assert mirror.link is None and mirror._workers
        finally:
            await asyncio.wait_for(mirror.stop(), 30)

    asyncio.run(run())


@pytest.mark.usefixtures("spare_core")
def test_auto_uses_the_sender_process_unless_it_cannot(
    tmp_path: Path, candidate: FakeOpenAI
) -> None:
    """The default, ``auto``: a sender process for a database it can open; the gateway's own
    loop without one and for an embedded candidate (the sender would load the model a
    second time)."""
    assert Settings().shadow.process == "auto"
    settings = _settings(tmp_path, candidate.url, process="auto")

    async def run() -> None:
        with_db, gateway = _mirror(settings)
        without_db = ShadowMirror(settings.shadow, None, gateway)  # type: ignore[arg-type]
        embedded, _ = _mirror(settings, embedded="open")
        for mirror, separate in ((with_db, True), (without_db, False), (embedded, False)):
            mirror.start()
            try:
                assert (mirror.link is not None) is separate
                assert bool(mirror._workers) is not separate
            finally:  # right after start(): a sender still starting must not hang it
                await asyncio.wait_for(mirror.stop(), 30)

    asyncio.run(run())


def _count(tmp_path: Path, sql: str) -> int:
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_copies_are_sent_by_the_sender_process(tmp_path: Path, candidate: FakeOpenAI) -> None:
    mirror, gateway = _mirror(_settings(tmp_path, candidate.url))

    async def run() -> None:
        mirror.start()
        assert mirror.link is not None
        for i in range(20):
            mirror.offer(_ctx(i), RESULT, "answer", None)
        mirror.offer(_ctx(99, sensitive=True), RESULT, "answer", None)
        await asyncio.wait_for(mirror.drain(), 60)
        assert mirror.link.pid is not None and mirror.link.pid != os.getpid()
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, mirror.link.pid) == min(19, own + 19)
        await mirror.stop()

    asyncio.run(run())
    counts = gateway.metrics.shadow
    assert counts["r", "sent"] == 41  # 20 x 2 candidates, and the sensitive one to "open"
    assert counts["r", "skipped_sensitive"] == 1
    assert len(candidate.received) == 41
    assert _count(tmp_path, "SELECT count(*) FROM shadow_pairs") == 41
    rows = "SELECT count(*) FROM ledger WHERE source = 'shadow' AND mirror_of LIKE 'req-%'"
    assert _count(tmp_path, rows) == 41


def test_a_crashed_sender_is_restarted_and_its_copies_counted_lost(tmp_path: Path) -> None:
    hold = threading.Event()

    def slow(turn: FakeTurn) -> FakeReply:
        hold.wait(10)
        return FakeReply(text="late")

    with FakeOpenAI(responder=slow) as server:
        mirror, gateway = _mirror(_settings(tmp_path, server.url))

        async def run() -> None:
            mirror.start()
            assert mirror.link is not None
            mirror.offer(_ctx(1), RESULT, "answer", None)
            deadline = time.monotonic() + 30
            while not server.received:  # the sender holds the copy
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            pid = mirror.link.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            while gateway.metrics.shadow["r", "lost"] == 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            hold.set()
            mirror.offer(_ctx(2), RESULT, "answer", None)  # to the restarted sender
            await asyncio.wait_for(mirror.drain(), 60)
            assert mirror.link.starts == 2
            assert mirror.link.pid != pid
            await mirror.stop()

        asyncio.run(run())
    assert gateway.metrics.shadow["r", "lost"] == 1
    assert gateway.metrics.shadow["r", "sent"] == 2
    assert _count(tmp_path, "SELECT count(*) FROM shadow_pairs WHERE request_id = 'req-2'") == 2


def test_shutdown_finishes_queued_copies_or_counts_them_lost(tmp_path: Path) -> None:
    def slow(turn: FakeTurn) -> FakeReply:
        time.sleep(0.2)
        return FakeReply(text="slow")

    with FakeOpenAI(responder=slow) as server:
        mirror, gateway = _mirror(_settings(tmp_path, server.url, drain_s=1.0, workers=1))

        async def run() -> float:
            mirror.start()
            mirror.offer(_ctx(0), RESULT, "answer", None)
            await asyncio.wait_for(mirror.drain(), 60)  # the sender is up
            for i in range(1, 31):  # 60 calls of 0.2 s: far more than drain_s allows
                mirror.offer(_ctx(i), RESULT, "answer", None)
            started = time.monotonic()
            await mirror.stop()
            return time.monotonic() - started

        took = asyncio.run(run())
    counts = gateway.metrics.shadow
    assert took < 3.0
    assert counts["r", "lost"] > 0
    assert counts["r", "sent"] >= 2 + 4  # the first copy, and some during drain_s
    assert counts["r", "sent"] // 2 + counts["r", "lost"] == 31  # a lost copy may have had 1 call


def test_a_copy_crosses_the_pipe_whole(tmp_path: Path) -> None:
    from decimal import Decimal

    mirror, _ = _mirror(_settings(tmp_path, "http://127.0.0.1:9"))
    ctx = _ctx(7, sensitive=True)
    ctx.request = ChatRequest(
        model="primary",
        messages=({"role": "user", "content": [{"type": "text", "text": "hi"}]},),
        temperature=0.5,
        stop=("x",),
        tools=({"type": "function", "function": {"name": "f", "parameters": {}}},),
        cache_control={("tools", 0): {"type": "ephemeral"}},
    )
    rule = mirror.rules[0]
    name, frame = mirror.encode((rule, ctx, RESULT, "answer", Decimal("0.25"), 1.5))
    job = mirror.decode(frame)
    assert name == "r"
    assert job.rule is rule
    assert job.request == ctx.request
    assert job.admission is not None and job.admission.sensitive
    assert (job.request_id, job.key_id, job.primary_deployment, job.primary_model) == (
        "req-7",
        "k",
        "open",
        "m",
    )
    assert (job.primary_output, job.primary_cost, job.primary_tokens) == (
        "answer",
        Decimal("0.25"),
        7,
    )
    assert job.primary_latency_ms == 1500.0
    ctx.admission = None
    assert mirror.decode(mirror.encode((rule, ctx, None, None, None, 0.0))[1]).admission is None


def test_an_in_memory_database_keeps_the_copies_in_process(tmp_path: Path) -> None:
    import sqlalchemy as sa

    settings = _settings(tmp_path, "http://127.0.0.1:9")
    gateway: Any = SimpleNamespace(settings=settings, metrics=SimpleNamespace(shadow={}))
    mirror = ShadowMirror(settings.shadow, sa.create_engine("sqlite://"), gateway)

    async def run() -> None:
        mirror.start()
        assert mirror.link is None  # no file a sender process could open
        assert mirror._workers
        await mirror.stop()

    asyncio.run(run())


@pytest.mark.usefixtures("spare_core")
def test_only_a_gateway_built_from_its_settings_alone_sends_from_a_process(
    tmp_path: Path, candidate: FakeOpenAI
) -> None:
    """A sender process rebuilds the gateway from its settings: with an injected environment,
    HTTP client, catalog or model factory it would build another one, so ``auto`` keeps
    the copies on the gateway's loop there."""
    from laneway.gateway import build_gateway

    settings = _settings(tmp_path, candidate.url, process="auto")

    async def run(**injected: Any) -> bool:
        gateway = build_gateway(settings, **injected)
        assert gateway.shadow is not None
        gateway.shadow.start()
        try:
            return gateway.shadow.link is not None
        finally:
            await asyncio.wait_for(gateway.aclose(), 30)

    assert asyncio.run(run()) is True
    assert asyncio.run(run(env=dict(os.environ))) is False
