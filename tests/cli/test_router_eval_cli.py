"""``laneway router eval``: a --plot path that cannot be written and a --rounds that
cannot be are one line before the work, not a traceback after it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from laneway.cli import build_app


@pytest.fixture
def outcomes(tmp_path: Path) -> Path:
    rng = random.Random(0)
    path = tmp_path / "outcomes.jsonl"
    rows = [
        {
            "id": f"x{i}",
            "prompt": f"question {i} " + "word " * rng.randint(1, 50),
            "outcomes": {"weak": rng.randint(0, 1), "strong": 1},
        }
        for i in range(40)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def _eval(outcomes: Path, *extra: str) -> Result:
    args = ["router", "eval", "--data", str(outcomes), "--strong", "strong", "--weak", "weak"]
    return CliRunner().invoke(build_app(), [*args, *extra])


def test_a_plot_path_that_cannot_be_written_is_one_line(outcomes: Path, tmp_path: Path) -> None:
    missing = _eval(outcomes, "--plot", str(tmp_path / "no" / "curve.png"))
    assert missing.exit_code == 1
    assert missing.stderr == f"error: directory {tmp_path / 'no'} does not exist\n"
    folder = _eval(outcomes, "--plot", str(tmp_path))
    assert folder.exit_code == 1
    assert folder.stderr == f"error: {tmp_path} is a directory, not a file\n"


@pytest.mark.parametrize("rounds", ["0", "-5"])
def test_rounds_that_cannot_be_are_a_wrong_command_line(outcomes: Path, rounds: str) -> None:
    result = _eval(outcomes, "--rounds", rounds)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Invalid value for '--rounds'")


@pytest.mark.parametrize(
    "goal", [("--target-strong-share", "5"), ("--quality-floor", "-1"), ("--quality-floor", "nan")]
)
def test_calibrate_refuses_a_share_outside_0_to_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, goal: tuple[str, str]
) -> None:
    # They were accepted and wrote a profile sending everything to one tier.
    monkeypatch.setenv("LANEWAY_DATA_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(build_app(), ["router", "calibrate", "--profile", "p", *goal])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: Invalid value for {goal[0]}: "), result.stderr
    assert not list((tmp_path / "state").rglob("p.json"))
