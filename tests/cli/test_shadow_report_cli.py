"""``laneway shadow report`` / ``export`` from the command line: a failed gate or judge
says why in an ``error:`` line, ``--json`` is strict JSON, small costs are not shown as
$0, and a bad ``--out`` is one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from laneway.cli import build_app
from laneway.gateway import SHADOW_PAIRS
from laneway.ledger import open_database


def _db(tmp_path: Path, n: int, verdicts: int = 0) -> str:
    """``n`` pairs, the candidate's answer different from the primary's on every third,
    the first ``verdicts`` judged for the candidate; each call costs $0.000001."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = open_database(url)
    rows = [
        {
            "request_id": f"r{i}",
            "ts": datetime.now(UTC),
            "rule": "r",
            "prompt": [{"role": "user", "content": f"question {i}"}],
            "primary_deployment": "p",
            "primary_output": f"answer {i}",
            "primary_latency_ms": 100.0 + i,
            "primary_cost_nusd": 1000,
            "primary_tokens": 10,
            "candidate": "c",
            "candidate_output": f"answer {i}" if i % 3 else f"other {i}",
            "candidate_latency_ms": 90.0 + i,
            "candidate_cost_nusd": 0,
            "candidate_tokens": 10,
            "verdict": "a" if i < verdicts else None,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(SHADOW_PAIRS.insert(), rows)
    engine.dispose()
    return url


def _cli(*args: str) -> Result:
    return CliRunner().invoke(build_app(), ["shadow", *args])


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_gate_with_nothing_to_gate_on_says_why(tmp_path: Path) -> None:
    # It exited 1 without a word: no gate line, no error.
    url = _db(tmp_path, 10)
    for extra in ([], ["--json"]):
        result = _cli("report", "--gate", "--database", url, *extra)
        assert result.exit_code == 1, result.output
        assert result.stderr.splitlines() == [
            "error: --gate: candidate c has no judged pair and no pair scored on both sides; "
            "run with --judge MODEL"
        ]


def test_too_few_pairs_print_no_nan_and_json_is_strict(tmp_path: Path) -> None:
    # 9 judged pairs (< 30): the gate printed "estimate +nan, lower bound +nan" and
    # --json wrote NaN, which is not JSON; the candidate's $0 cost was "0E-9".
    url = _db(tmp_path, 9, verdicts=9)
    text = _cli("report", "--gate", "--database", url)
    assert text.exit_code == 1
    assert "nan" not in text.stdout.lower(), text.stdout
    assert "gate judge_preference at margin 0.05: FAIL (estimate –, lower bound –" in text.stdout
    assert "error: --gate: candidate c is not shown non-inferior" in text.stderr
    result = _cli("report", "--gate", "--json", "--database", url)
    assert result.exit_code == 1
    report = _strict(result.stdout)["c"]
    assert report["gates"][0]["estimate"] is None
    assert report["candidate"]["cost_usd"] == "0"
    assert report["primary"]["cost_usd"] == "0.000009"


def test_a_cost_under_a_cent_is_not_shown_as_zero(tmp_path: Path) -> None:
    # 12 calls at $0.000001: "$0.0000" read as free.
    result = _cli("report", "--database", _db(tmp_path, 12))
    assert result.exit_code == 0, result.output
    cost = next(line for line in result.stdout.splitlines() if line.strip().startswith("cost"))
    assert cost.split() == ["cost", "$0.000012", "$0.00"]


def test_export_to_a_directory_is_one_error_line(tmp_path: Path) -> None:
    # It was a traceback (IsADirectoryError).
    url = _db(tmp_path, 3, verdicts=3)
    (tmp_path / "out").mkdir()
    result = _cli("export", "--out", str(tmp_path / "out"), "--database", url)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {tmp_path / 'out'} is a directory, not a file"]
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def dead_judge(tmp_path: Path, monkeypatch: Any) -> Path:
    monkeypatch.setenv("FAKE_KEY", "sk-fake")
    config = {
        "deployments": [
            {
                "name": "judge",
                "model": "gpt-4o",
                "provider": "openai",
                "api_base": "http://127.0.0.1:9/v1",
                "api_key": "env:FAKE_KEY",
            }
        ],
        "retry": {"max_retries": 0, "base_delay": 0.0},
    }
    path = tmp_path / "laneway.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    return path


def test_a_judge_that_fails_is_an_error_not_a_silent_report(
    tmp_path: Path, dead_judge: Path
) -> None:
    # An unknown judge, or one whose every call failed, left the pairs unjudged and
    # exited 0 with "judge: no verdicts yet".
    url = _db(tmp_path, 6)
    unknown = _cli("report", "--judge", "nosuch", "-c", str(dead_judge), "--database", url)
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: judge 'nosuch': model 'nosuch' is not served here")
    assert len(unknown.stderr.splitlines()) == 1
    failed = _cli("report", "--judge", "judge", "-c", str(dead_judge), "--database", url)
    assert failed.exit_code == 1, failed.output
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: judge judge failed on 2 pair(s), left unjudged (")
    assert "candidate c: 6 pairs" in failed.stdout  # the report is still printed


def test_a_tiny_p_value_is_not_printed_as_zero(tmp_path: Path) -> None:
    # 1,200 pairs where every candidate call failed: the exact test's p underflowed to
    # 0.0 and printed "p=0".
    url = _db(tmp_path, 1200)
    engine = open_database(url)
    with engine.begin() as conn:
        conn.execute(SHADOW_PAIRS.update().values(candidate_error="upstream_error"))
    engine.dispose()
    result = _cli("report", "--database", url)
    assert result.exit_code == 0, result.output
    failed = next(line for line in result.stdout.splitlines() if "failed rate" in line)
    assert failed.endswith("p < 1e-4"), failed
    report = _strict(_cli("report", "--json", "--database", url).stdout)["c"]
    failed_json = next(r for r in report["rates"] if r["name"] == "failed")
    assert 0 < failed_json["test"]["p_value"] < 1e-300


def test_ctrl_c_while_judging_says_what_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It exited 130 without a word.
    from laneway.cli import _shadow

    async def interrupted(*_args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(_shadow, "_judge", interrupted)
    result = _cli("report", "--judge", "j", "--database", _db(tmp_path, 3))
    assert result.exit_code == 130
    assert result.stderr.startswith("interrupted; the verdicts so far are saved")
