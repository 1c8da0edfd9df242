"""Memory stays bounded as a run grows: work is pulled from an iterator and results go
to the database in batches, so answers are not accumulated in memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from laneway.evals import RunOptions, load_suite, run_suite
from laneway.evals._runner import new_run
from laneway.testing import FakeOpenAI, FakeReply, FakeTurn
from tests.evals.conftest import ENV, settings_for

ANSWER = "x" * 16_000  # 16 KB per answer: 200 answers kept in memory would be ~3 MiB


def _big(turn: FakeTurn) -> FakeReply:
    return FakeReply(text=ANSWER)


async def _peak(tmp_path: Path, engine: sa.Engine, factory: Any, cases: int) -> int:
    path = tmp_path / f"mem{cases}.yaml"
    lines = ["name: mem", "cases:"] + [
        f'  - {{id: c{i}, prompt: "say x {i}", contains: [x]}}' for i in range(cases)
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    suite = load_suite(path)
    with FakeOpenAI(responder=_big, api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await factory(settings_for(tmp_path, {"big": fake}))  # type: ignore[dict-item]
        options = RunOptions(models=("big",), concurrency=4, flush_every=8)
        record = new_run(engine, suite, options, run_id=f"mem{cases}")
        tracemalloc.start()
        summary = await run_suite(gateway, suite, record, options)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await gateway.aclose()
    assert summary.status == "complete"
    assert len(record.completed_keys()) == cases
    return peak


async def test_peak_memory_does_not_grow_with_the_number_of_cases(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    small = await _peak(tmp_path, engine, gateway_factory, 40)
    large = await _peak(tmp_path, engine, gateway_factory, 200)
    grown = large - small
    # 160 more answers of 16 KB would be 2.5 MiB if they were kept.
    assert grown < 1.0 * 2**20, (small, large)
