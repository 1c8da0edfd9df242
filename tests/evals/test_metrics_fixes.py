"""Metrics: the pass-rate interval is clustered by case, agreement is over answers only
(failed calls are not agreeing empty answers; unscored answers count), failed calls
count in latency, and a p95 over few calls is flagged."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from laneway.evals import compute_metrics, wilson_interval
from laneway.evals._store import _export_dict
from tests.evals._cli import eval_cli
from tests.evals._runs import make_run, planted, row


def _suite(cases: list[str]) -> dict[str, object]:
    return {"name": "s", "cases": [{"id": c, "prompt": c} for c in cases]}


def test_interval_is_clustered_by_case() -> None:
    run = make_run("r", {"m": planted(10, {0, 1}, repeats=10)})
    m = compute_metrics(run.results, run.info.suite, ("m",))[0]
    assert m.pass_rate == pytest.approx(0.8)
    # Ten repeats of 10 deterministic cases: as uncertain as 10 cases, not 100 calls.
    assert m.pass_ci == pytest.approx(wilson_interval(8, 10))
    assert m.pass_ci[0] < wilson_interval(80, 100)[0] - 0.15


def test_agreement_excludes_failed_calls_and_includes_unscored_answers() -> None:
    rows = [
        # Two failed calls and one answer: no two answers, no agreement to measure (the
        # old code saw three "" answers, two agreeing).
        row("c1", "m", 0, error="upstream_timeout"),
        row("c1", "m", 1, error="upstream_timeout"),
        row("c1", "m", 2, output="Paris"),
        # Unscored answers (no check): two of three agree.
        row("c2", "m", 0, output="Rome"),
        row("c2", "m", 1, output="rome."),
        row("c2", "m", 2, output="Milan"),
    ]
    m = compute_metrics(rows, _suite(["c1", "c2"]), ("m",))[0]
    assert m.agreement == pytest.approx(2 / 3)
    assert m.errors == 2
    assert m.cases == 2


def test_failed_calls_count_in_latency() -> None:
    fast = [row(f"c{i}", "m", 0, output="ok", latency_ms=100.0) for i in range(10)]
    timeouts = [
        row(f"c{i}", "m", 0, error="upstream_timeout", latency_ms=30_000.0) for i in range(10, 20)
    ]
    m = compute_metrics(fast + timeouts, _suite([f"c{i}" for i in range(20)]), ("m",))[0]
    assert m.latency_samples == 20
    assert m.latency_p50_ms == pytest.approx(15_050.0)
    assert m.latency_p95_ms == pytest.approx(30_000.0)


def test_a_p95_over_few_calls_is_flagged(tmp_path: Path) -> None:
    few = make_run("few", {"m": planted(10, set())})
    path = tmp_path / "few.json"
    path.write_bytes(orjson.dumps(_export_dict(few.info, few.results, few.pairs)))
    out = CliRunner().invoke(eval_cli(), ["eval", "show", str(path)])
    assert out.exit_code == 0, out.output
    assert "100*" in out.output
    assert "p95 over fewer than 20 calls" in out.output
    many = make_run("many", {"m": planted(25, set())})
    path = tmp_path / "many.json"
    path.write_bytes(orjson.dumps(_export_dict(many.info, many.results, many.pairs)))
    out = CliRunner().invoke(eval_cli(), ["eval", "show", str(path)])
    assert "p95 over fewer" not in out.output
    data = orjson.loads(
        CliRunner().invoke(eval_cli(), ["eval", "show", str(path), "--json"]).stdout
    )
    assert data[0]["latency_samples"] == 25


def test_no_scored_case_shows_no_interval(tmp_path: Path) -> None:
    # A run of unscored cases (no check: from-ledger suites without a judge) showed the
    # pass rate "–" next to a 95% interval "0.0%-100.0%" (and [0, 1] in --json, and in
    # the HTML report).
    run = make_run("u", {}, extra=[row("c1", "m", 0), row("c2", "m", 0)])
    path = tmp_path / "u.json"
    path.write_bytes(orjson.dumps(_export_dict(run.info, run.results, run.pairs)))
    table = CliRunner().invoke(eval_cli(), ["eval", "show", str(path)])
    assert table.exit_code == 0, table.output
    assert "100.0%" not in table.output
    shown = CliRunner().invoke(eval_cli(), ["eval", "show", str(path), "--json"])
    assert orjson.loads(shown.stdout)[0]["pass_ci"] is None
    report = tmp_path / "u.html"
    written = CliRunner().invoke(eval_cli(), ["eval", "report", str(path), "--out", str(report)])
    assert written.exit_code == 0, written.output
    assert "100.0%" not in report.read_text("utf-8")
