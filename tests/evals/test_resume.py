"""A provider outage or an interruption mid-run leaves a resumable run: completed cases
are not called (or billed) again, and the resumed run equals an uninterrupted one."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from laneway.evals import ResultRow, RunOptions, RunRecord, compute_metrics, run_suite
from laneway.evals._runner import new_run
from tests.evals.conftest import Plan, PlantedFake, settings_for, write_planted_suite

N = 40
PLAN = Plan(wrong=frozenset(range(0, N, 4)))


def _key_count(engine: sa.Engine, run_id: str) -> tuple[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT COUNT(*), COUNT(DISTINCT case_id || model || repeat) "
                "FROM eval_results WHERE run_id = :r"
            ),
            {"r": run_id},
        ).one()
    return rows[0], rows[1]


async def test_outage_mid_run_then_resume(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    suite = write_planted_suite(tmp_path, N)
    options = RunOptions(models=("cand",), concurrency=2, retries=1, retry_delay=0.0, flush_every=4)
    first = PlantedFake(PLAN).start()
    gateway = await gateway_factory(settings_for(tmp_path, {"cand": first}))  # type: ignore[dict-item]
    record = new_run(engine, suite, options, run_id="outage")
    seen: list[ResultRow] = []

    def on_result(row: ResultRow) -> None:
        seen.append(row)
        if len(seen) == 15:
            first.stop()  # the provider goes down mid-run

    try:
        summary = await run_suite(gateway, suite, record, options, on_result=on_result)
    finally:
        first.stop()
    await gateway.aclose()
    assert summary.status == "incomplete"
    assert summary.errors > 0
    done_before = record.completed_keys()
    assert 15 <= len(done_before) < N
    assert RunRecord(engine, "outage").info().status == "incomplete"
    assert _key_count(engine, "outage") == (N, N)  # one row per key, errors included

    with PlantedFake(PLAN) as second:
        gateway = await gateway_factory(settings_for(tmp_path, {"cand": second}))  # type: ignore[dict-item]
        resumed = await run_suite(gateway, suite, record, options)
        await gateway.aclose()
        calls = len(second.received)
    assert resumed.status == "complete"
    assert resumed.skipped == len(done_before)
    assert calls == N - len(done_before)  # completed cases were not called again
    assert _key_count(engine, "outage") == (N, N)
    metrics = compute_metrics(record.results(), suite.to_dict(), ("cand",))[0]
    assert metrics.errors == 0
    assert metrics.pass_rate == 1 - len(PLAN.wrong) / N


async def test_interrupted_run_is_consistent_and_resumes(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    suite = write_planted_suite(tmp_path, N)
    options = RunOptions(models=("cand",), concurrency=2, flush_every=3)
    with PlantedFake(PLAN, latency=0.01) as fake:
        gateway = await gateway_factory(settings_for(tmp_path, {"cand": fake}))  # type: ignore[dict-item]
        record = new_run(engine, suite, options, run_id="cancel")
        ten_done = asyncio.Event()

        def on_result(_row: ResultRow) -> None:
            if len(fake.received) >= 10:
                ten_done.set()

        task = asyncio.create_task(run_suite(gateway, suite, record, options, on_result))
        await ten_done.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await gateway.aclose()
    assert record.info().status == "interrupted"
    stored, distinct = _key_count(engine, "cancel")
    assert stored == distinct
    done_before = record.completed_keys()
    assert 0 < len(done_before) < N
    # A fresh upstream for the resumed run: requests cut by the cancel can still reach
    # the first one late, and must not be counted as the resumed run's calls.
    with PlantedFake(PLAN, latency=0.01) as second:
        gateway = await gateway_factory(settings_for(tmp_path, {"cand": second}))  # type: ignore[dict-item]
        resumed = await run_suite(gateway, suite, record, options)
        await gateway.aclose()
        calls = len(second.received)
    assert resumed.status == "complete"
    assert resumed.skipped == len(done_before)
    assert calls == N - len(done_before)  # completed cases were not called again
    assert _key_count(engine, "cancel") == (N, N)


async def test_a_cancelled_run_stops_at_once(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    # Ctrl-C cancels the run's task. The gateway answers each cancelled call with a
    # `shutting_down` outcome and un-cancels the task, so every worker went on to its
    # next call: the run made all N calls (minus the ones cut) before it ended
    # "interrupted". Now no call starts after the cancel, and none is recorded as failed.
    suite = write_planted_suite(tmp_path, N)
    options = RunOptions(models=("cand",), concurrency=2, flush_every=3)
    with PlantedFake(PLAN, latency=0.05) as fake:
        gateway = await gateway_factory(settings_for(tmp_path, {"cand": fake}))  # type: ignore[dict-item]
        record = new_run(engine, suite, options, run_id="stop")
        five_done = asyncio.Event()

        def on_result(_row: ResultRow) -> None:
            if len(fake.received) >= 5:
                five_done.set()

        task = asyncio.create_task(run_suite(gateway, suite, record, options, on_result))
        await five_done.wait()
        started = len(fake.received)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)
        assert task.cancelled()
        await asyncio.sleep(0.2)
        assert len(fake.received) <= started + options.concurrency
        await gateway.aclose()
    assert record.info().status == "interrupted"
    rows = list(record.results())
    assert all(r.error_code is None for r in rows), {r.error_code for r in rows}
    assert len(rows) < 5 + 2 * options.concurrency
