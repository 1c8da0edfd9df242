"""Eval runs built in memory (no gateway): planted per-case outcomes, for statistics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from laneway.evals import LoadedRun, PairVerdict, ResultRow, RunInfo


def answer_check(passed: bool) -> dict[str, Any]:
    return {"name": "expected", "kind": "answer", "passed": passed, "score": float(passed)}


def rubric_check(grade: int) -> dict[str, Any]:
    return {"name": "rubric", "kind": "judge", "passed": grade >= 7, "score": grade / 10}


def row(
    case_id: str,
    model: str,
    repeat: int,
    checks: Sequence[dict[str, Any]] = (),
    *,
    output: str = "x",
    error: str | None = None,
    latency_ms: float | None = 100.0,
) -> ResultRow:
    if error is not None:
        return ResultRow(
            case_id, model, repeat, None, None, None, latency_ms=latency_ms, error_code=error
        )
    passed = all(c["passed"] for c in checks) if checks else None
    score = sum(c["score"] for c in checks) / len(checks) if checks else None
    return ResultRow(
        case_id, model, repeat, output, passed, score, tuple(checks), latency_ms=latency_ms
    )


def make_run(
    run_id: str,
    outcomes: Mapping[str, Mapping[str, Sequence[bool]]],
    *,
    status: str = "complete",
    extra: Sequence[ResultRow] = (),
    pairs: Sequence[PairVerdict] = (),
) -> LoadedRun:
    """``outcomes[model][case_id]`` = pass/fail of each repeat (an answer check each)."""
    models = tuple(outcomes)
    cases = sorted({c for per in outcomes.values() for c in per} | {r.case_id for r in extra})
    repeats = max(
        (len(v) for per in outcomes.values() for v in per.values()),
        default=max((r.repeat + 1 for r in extra), default=1),
    )
    rows = [
        row(case, model, r, [answer_check(ok)])
        for model, per in outcomes.items()
        for case, runs in per.items()
        for r, ok in enumerate(runs)
    ]
    info = RunInfo(
        run_id=run_id,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        status=status,
        suite={"name": "s", "cases": [{"id": c, "prompt": c} for c in cases]},
        suite_digest="d",
        models=models,
        repeats=repeats,
        config={},
    )
    return LoadedRun(info, tuple(rows) + tuple(extra), tuple(pairs))


def planted(n: int, wrong: set[int], repeats: int = 1) -> dict[str, list[bool]]:
    """``n`` cases ``c000``…; the ``wrong`` ones fail every repeat."""
    return {f"c{i:03d}": [i not in wrong] * repeats for i in range(n)}
