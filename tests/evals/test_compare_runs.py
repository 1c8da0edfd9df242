"""``compare``: unscored cases are not failures, a judge in one run only invents no
regression, two candidates of one run compare, an incomplete run is flagged, and p is
never printed as 0."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from laneway.errors import ConfigError
from laneway.evals import LoadedRun, compare_runs
from laneway.evals._store import _export_dict
from tests.evals._cli import eval_cli
from tests.evals._runs import answer_check, make_run, planted, row, rubric_check


def _export(run: LoadedRun, path: Path) -> Path:
    path.write_bytes(orjson.dumps(_export_dict(run.info, run.results, run.pairs)))
    return path


def test_unscored_cases_are_not_failures() -> None:
    base = make_run("a", {"m": planted(10, set())})
    # The candidate's first 6 answers have no check at all (unscored), the rest pass.
    unscored = tuple(row(f"c{i:03d}", "m", 0) for i in range(6))
    scored = {f"c{i:03d}": [True] for i in range(6, 10)}
    cand = make_run("b", {"m": scored}, extra=unscored)
    result = compare_runs(base, cand)
    assert result.unscored == 6
    assert result.test.n == 4
    assert result.candidate_rate == 1.0
    assert result.regressions == ()
    assert result.test.p_value == 1.0


def test_a_judge_in_one_run_only_invents_no_regression() -> None:
    """Run A had a judge: each answer carries its rubric grade (here 3/10, a fail) next to
    the exact-answer check. Run B had none. Compared on the checks both have, nothing
    changed."""
    cases = [f"c{i:03d}" for i in range(12)]
    judged = tuple(row(c, "m", 0, [answer_check(True), rubric_check(3)]) for c in cases)
    plain = tuple(row(c, "m", 0, [answer_check(True)]) for c in cases)
    a = make_run("a", {"m": {}}, extra=judged)
    b = make_run("b", {"m": {}}, extra=plain)
    for first, second in ((a, b), (b, a)):
        result = compare_runs(first, second)
        assert result.dropped_checks == ("rubric",)
        assert result.regressions == () and result.improvements == ()
        assert result.test.p_value == 1.0
        assert result.baseline_rate == result.candidate_rate == 1.0


def test_two_candidates_of_one_run(tmp_path: Path) -> None:
    run = make_run("r", {"base": planted(30, set()), "cand": planted(30, set(range(12)))})
    result = compare_runs(run, run, model_a="base", model_b="cand")
    assert (result.model_a, result.model_b) == ("base", "cand")
    assert (result.test.worse, result.test.better) == (12, 0)
    assert result.significantly_worse
    with pytest.raises(ConfigError, match="--model-a and --model-b"):
        compare_runs(run, run)
    with pytest.raises(ConfigError, match="no model 'nope'"):
        compare_runs(run, run, model_a="base", model_b="nope")
    path = _export(run, tmp_path / "r.json")
    out = CliRunner().invoke(
        eval_cli(), ["eval", "compare", str(path), "--model-a", "base", "--model-b", "cand"]
    )
    assert out.exit_code == 1, out.output
    assert "base (A, r) vs cand (B, r)" in out.output
    # p = 2 / 2**12 = 0.00049: printed with its digits, never "0".
    assert "p = 0.00049" in out.output
    assert "SIGNIFICANTLY WORSE" in out.output


def test_a_tiny_p_is_printed_below_a_bound(tmp_path: Path) -> None:
    run = make_run("r", {"base": planted(200, set()), "cand": planted(200, set(range(60)))})
    out = CliRunner().invoke(
        eval_cli(),
        [
            "eval",
            "compare",
            str(_export(run, tmp_path / "r.json")),
            "--model-a",
            "base",
            "--model-b",
            "cand",
        ],
    )
    assert out.exit_code == 1
    assert "sign-test over cases: p < 1e-4 (alpha 0.05)" in out.output  # was "p = < 1e-4"
    assert "p = 0 " not in out.output and "p = 0.0 " not in out.output


def test_an_incomplete_run_is_flagged(tmp_path: Path) -> None:
    base = make_run("a", {"m": planted(10, set())})
    failed = tuple(row(f"c{i:03d}", "m", 0, error="upstream_timeout") for i in range(8, 10))
    cand = make_run(
        "b", {"m": {f"c{i:03d}": [True] for i in range(8)}}, status="incomplete", extra=failed
    )
    result = compare_runs(base, cand)
    assert len(result.incomplete) == 1
    assert "run B (b) is incomplete: 2 failed" in result.incomplete[0]
    assert compare_runs(base, base).incomplete == ()
    out = CliRunner().invoke(
        eval_cli(),
        [
            "eval",
            "compare",
            str(_export(base, tmp_path / "a.json")),
            str(_export(cand, tmp_path / "b.json")),
            "--json",
        ],
    )
    assert "warning: run B (b) is incomplete" in out.stderr
    assert orjson.loads(out.stdout)["incomplete"] == list(result.incomplete)
