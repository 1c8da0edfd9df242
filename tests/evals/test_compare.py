"""Significance: a planted 10-point regression on 200 cases is flagged, identical runs
are not; the CLI exits 1 on a significant regression or an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from laneway.evals import (
    RunOptions,
    compare_runs,
    load_run,
    pass_hat_k,
    run_suite,
    wilson_interval,
    write_export,
)
from laneway.evals._runner import new_run
from laneway.testing import running
from tests.evals._cli import eval_cli
from tests.evals.conftest import Plan, PlantedFake, settings_for, write_planted_suite

N = 200
BASE_WRONG = frozenset(range(0, 40))  # 80% right
# The candidate loses 30 of the baseline's right cases and fixes 10 of its wrong ones:
# 70% right, a 10-point regression.
CAND_WRONG = frozenset(range(10, 40)) | frozenset(range(100, 130))


def test_pass_hat_k_and_wilson() -> None:
    assert pass_hat_k(3, 5, 2) == pytest.approx(3 / 10)
    assert pass_hat_k(5, 5, 5) == 1.0
    assert pass_hat_k(4, 5, 5) == 0.0
    low, high = wilson_interval(80, 100)
    assert low == pytest.approx(0.7112, abs=1e-4)
    assert high == pytest.approx(0.8666, abs=1e-4)


async def _run(engine: sa.Engine, tmp_path: Path, factory: Any, plan: Plan, run_id: str) -> Path:
    suite = write_planted_suite(tmp_path, N)
    # Text-only cases: every case's odd twin (i % 2 == 1) is text, so use the plan as is
    # with JSON cases answered correctly (no bad_json planted).
    with running(PlantedFake(plan)) as (fake,):
        gateway = await factory(settings_for(tmp_path, {"cand": fake}))  # type: ignore[dict-item]
        options = RunOptions(models=("cand",), concurrency=8)
        record = new_run(engine, suite, options, run_id=run_id)
        summary = await run_suite(gateway, suite, record, options)
        await gateway.aclose()
    assert summary.status == "complete"
    return write_export(record, tmp_path / f"{run_id}.json")


async def test_planted_regression_is_flagged_identical_runs_are_not(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    base = await _run(engine, tmp_path, gateway_factory, Plan(wrong=BASE_WRONG), "base")
    same = await _run(engine, tmp_path, gateway_factory, Plan(wrong=BASE_WRONG), "same")
    cand = await _run(engine, tmp_path, gateway_factory, Plan(wrong=CAND_WRONG), "cand")
    regression = compare_runs(load_run(str(base), None), load_run(str(cand), None))
    assert regression.baseline_rate == 0.8
    assert regression.candidate_rate == 0.7
    assert regression.test.method == "sign-test"
    assert (regression.test.worse, regression.test.better) == (30, 10)
    assert regression.test.p_value == pytest.approx(0.0022, abs=1e-4)  # exact, 30 vs 10
    assert regression.significantly_worse
    assert [r.case_id for r in regression.regressions] == [f"q{i:03d}" for i in range(100, 130)]
    identical = compare_runs(load_run("base", engine), load_run("same", engine))
    assert identical.test.p_value == 1.0
    assert not identical.significantly_worse
    runner = CliRunner()
    result = runner.invoke(eval_cli(), ["eval", "compare", str(base), str(cand)])
    assert result.exit_code == 1, result.output
    assert "SIGNIFICANTLY WORSE" in result.output
    assert "regression q100" in result.output
    result = runner.invoke(eval_cli(), ["eval", "compare", str(base), str(same), "--json"])
    assert result.exit_code == 0, result.output
    assert '"p_value": 1.0' in result.output
    result = runner.invoke(eval_cli(), ["eval", "compare", str(base), str(tmp_path / "nope.json")])
    assert result.exit_code == 1
    assert "run export not found" in result.output
