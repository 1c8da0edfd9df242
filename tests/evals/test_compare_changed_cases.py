"""``eval compare`` of runs of two versions of a suite: a case defined differently (its
expected answer changed) is left out and named. It was paired by id and its answers held
to different checks: a fixed expected answer read as a regression of the candidate."""

from __future__ import annotations

from dataclasses import replace

import pytest

from laneway.errors import ConfigError
from laneway.evals import compare_runs
from laneway.evals._store import LoadedRun
from tests.evals._runs import make_run, planted


def _edited(run: LoadedRun, case_id: str, **fields: object) -> LoadedRun:
    cases = [{**c, **fields} if c["id"] == case_id else c for c in run.info.suite["cases"]]
    info = replace(run.info, suite={**run.info.suite, "cases": cases}, suite_digest="d2")
    return replace(run, info=info)


def test_a_case_changed_between_the_suites_is_left_out() -> None:
    a = make_run("a", {"m": planted(10, set())})
    b = _edited(make_run("b", {"m": planted(10, {0})}), "c000", expected="42")
    result = compare_runs(a, b)
    assert result.changed == ("c000",)
    assert result.regressions == ()  # it was a regression of c000
    assert result.test.n == 9
    # Tags only: the same case.
    tagged = _edited(make_run("t", {"m": planted(10, {0})}), "c000", tags=["new"])
    assert compare_runs(a, tagged).changed == ()
    assert [r.case_id for r in compare_runs(a, tagged).regressions] == ["c000"]


def test_every_case_changed_is_an_error_that_says_so() -> None:
    a = make_run("a", {"m": planted(1, set())})
    b = _edited(make_run("b", {"m": planted(1, set())}), "c000", prompt="other")
    with pytest.raises(ConfigError, match=r"no case in common defined alike \(1 changed\)"):
        compare_runs(a, b)
