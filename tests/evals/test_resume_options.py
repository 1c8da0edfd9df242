"""A resumed run keeps its candidates and repeats: giving others on the command line is
a wrong command line (exit 2, one ``error:`` line). They used to be ignored without a
word: ``--resume ID --repeats 3`` on a run of 2 repeats printed "2 repeats", exit 0."""

from __future__ import annotations

from pathlib import Path

from tests.evals.test_run_cli import _run, fakes, home

__all__ = ["fakes", "home"]  # the fixtures this module uses


def test_resume_refuses_other_candidates_or_repeats(home: Path) -> None:
    first = _run("s.yaml", "--models", "good,half", "--repeats", "2", "--run-id", "r1")
    assert first.exit_code == 0, first.output
    for option, value, why in (
        ("--repeats", "3", "run r1 has 2 repeats, not 3"),
        ("--models", "good", "run r1 has candidates good,half, not good"),
        ("--models", "good,down", "run r1 has candidates good,half, not good,down"),
    ):
        out = _run("s.yaml", "--resume", "r1", option, value)
        assert out.exit_code == 2, out.output
        assert out.stderr.splitlines() == [f"error: {why}: {_KEEPS[option]}"], out.stderr
        assert "repeats" not in out.stdout  # refused before the run started
    # The run's own values, in any order, are fine.
    same = _run("s.yaml", "--resume", "r1", "--models", "half,good", "--repeats", "2")
    assert same.exit_code == 0, same.output
    assert "run r1: 20 cases x 2 models x 2 repeats" in same.stdout


_KEEPS = {
    "--repeats": "a resumed run keeps its repeats (start a new run for others)",
    "--models": "a resumed run keeps its candidates (start a new run for others)",
}
