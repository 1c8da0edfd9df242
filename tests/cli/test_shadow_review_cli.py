"""``laneway shadow review`` from the command line, without a browser: exit 1 with one
``error:`` line when there is nothing collected, 2 for a wrong value, 0 and a plain message
when every pair is identical or already reviewed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from laneway.cli import build_app
from laneway.gateway import SHADOW_PAIRS
from laneway.ledger import open_database


def _db(tmp_path: Path, outputs: list[tuple[str, str]]) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = open_database(url)
    rows = [
        {
            "request_id": f"r{i}",
            "ts": datetime.now(UTC),
            "rule": "r",
            "prompt": [],
            "candidate": "c",
            "primary_output": p,
            "candidate_output": c,
        }
        for i, (p, c) in enumerate(outputs)
    ]
    if rows:
        with engine.begin() as conn:
            conn.execute(SHADOW_PAIRS.insert(), rows)
    engine.dispose()
    return url


def test_no_pairs_is_an_error_line_and_exit_1(tmp_path: Path) -> None:
    url = _db(tmp_path, [])
    result = CliRunner().invoke(
        build_app(), ["shadow", "review", "--no-browser", "--database", url]
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no shadow pairs since")


def test_a_sample_of_zero_is_a_wrong_command_line(tmp_path: Path) -> None:
    url = _db(tmp_path, [("a", "b")])
    args = ["shadow", "review", "--sample", "0", "--database", url]
    assert CliRunner().invoke(build_app(), args).exit_code == 2


def test_identical_answers_leave_nothing_to_review(tmp_path: Path) -> None:
    url = _db(tmp_path, [("Same.", "same"), ("x", "x ")])
    args = ["shadow", "review", "--no-browser", "--database", url]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "nothing to review" in result.stdout
