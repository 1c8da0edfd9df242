"""``shadow report/review --candidate NAME`` with no pair of that candidate names the
candidates that have pairs; it said "configure shadow.rules" although the rule was
collecting pairs (a mistyped name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from laneway.cli import build_app
from tests.cli.test_shadow_review_cli import _db


@pytest.mark.parametrize("command", [["report"], ["review", "--no-browser"]])
def test_an_unknown_candidate_names_the_ones_with_pairs(tmp_path: Path, command: list[str]) -> None:
    url = _db(tmp_path, [("a", "b"), ("c", "d")])
    args = ["shadow", *command, "--candidate", "llama", "--database", url]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: no shadow pairs of candidate 'llama' since ")
    assert lines[0].endswith("; candidates with pairs: c")
    # Without pairs at all, the advice stays.
    empty = CliRunner().invoke(
        build_app(), ["shadow", *command, "--database", _db(tmp_path / "e", [])]
    )
    assert empty.stderr.strip().endswith("(configure shadow.rules)")
