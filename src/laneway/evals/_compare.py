"""Candidate gating: candidate B against baseline A, case by case.

B and A are two runs of one candidate, two candidates of one run, or any two
(run, candidate) pairs. Cases are paired by id, repeats are averaged per case, and the
test is over cases (:func:`~laneway.evals._stats.paired_test`): the exact sign test on
pass/fail, a sign-flip permutation test on per-case pass rates or graded scores. B is
*significantly worse* when p < alpha and its mean is lower.

Only checks present on both sides are compared: a rubric graded by a judge in one run
and not in the other is left out (and named), never read as a regression. Answers with
no check are unscored, not failures; a failed call is a failure. A run that did not
complete is flagged. A case whose definition (prompt, checks, anything but its tags)
differs between the two runs' suites is left out and named: its answers were not held
to the same checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from laneway.errors import ConfigError
from laneway.evals._checks import Check, verdict
from laneway.evals._metrics import HARNESS_ERRORS
from laneway.evals._stats import PairedTest, format_p, paired_test
from laneway.evals._store import LoadedRun, ResultRow

__all__ = ["Comparison", "Regression", "compare_runs"]


@dataclass(frozen=True, slots=True)
class Regression:
    case_id: str
    baseline: float
    candidate: float


@dataclass(frozen=True, slots=True)
class Comparison:
    model_a: str
    model_b: str
    test: PairedTest
    alpha: float
    baseline_rate: float
    candidate_rate: float
    regressions: tuple[Regression, ...]
    improvements: tuple[Regression, ...]
    unpaired: int
    run_a: str = ""
    run_b: str = ""
    unscored: int = 0
    graded: bool = False
    dropped_checks: tuple[str, ...] = ()
    incomplete: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # cases defined differently in the two runs' suites

    @property
    def significantly_worse(self) -> bool:
        return self.test.p_value < self.alpha and self.test.delta < 0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "model_a": self.model_a,
            "model_b": self.model_b,
            "method": self.test.method,
            "p_value": self.test.p_value,
            "p_text": format_p(self.test.p_value),
            "alpha": self.alpha,
            "delta": self.test.delta,
            "n": self.test.n,
            "worse": self.test.worse,
            "better": self.test.better,
            "graded": self.graded,
            "baseline_rate": self.baseline_rate,
            "candidate_rate": self.candidate_rate,
            "significantly_worse": self.significantly_worse,
            "unpaired": self.unpaired,
            "unscored": self.unscored,
            "dropped_checks": list(self.dropped_checks),
            "incomplete": list(self.incomplete),
            "changed": list(self.changed),
            "regressions": [
                {"case_id": r.case_id, "baseline": r.baseline, "candidate": r.candidate}
                for r in self.regressions
            ],
        }


def _per_case(results: Iterable[ResultRow], model: str) -> dict[str, list[ResultRow]]:
    out: dict[str, list[ResultRow]] = {}
    for row in results:
        if row.model == model:
            out.setdefault(row.case_id, []).append(row)
    return out


def _need(run: LoadedRun, name: str, model: str) -> None:
    if model not in run.info.models:
        raise ConfigError(
            f"run {name} ({run.info.run_id}) has no model {model!r} "
            f"(it has: {', '.join(run.info.models)})"
        )


def _pick_models(
    a: LoadedRun, b: LoadedRun, model: str | None, model_a: str | None, model_b: str | None
) -> tuple[str, str]:
    if model is not None:
        model_a, model_b = model_a or model, model_b or model
    if model_a is not None or model_b is not None:
        common = [m for m in a.info.models if m in b.info.models]
        only = common[0] if len(common) == 1 else None
        picked_a, picked_b = model_a or only, model_b or only
        if picked_a is None or picked_b is None:
            raise ConfigError("name both --model-a and --model-b")
        _need(a, "A", picked_a)
        _need(b, "B", picked_b)
        return picked_a, picked_b
    common = [m for m in a.info.models if m in b.info.models]
    if len(common) == 1:
        return common[0], common[0]
    if len(a.info.models) == 1 and len(b.info.models) == 1:
        return a.info.models[0], b.info.models[0]
    raise ConfigError(
        "the runs have several candidates; name one with --model, or --model-a and "
        f"--model-b (A: {', '.join(a.info.models)}; B: {', '.join(b.info.models)})"
    )


def _check_names(rows: Iterable[ResultRow]) -> set[str]:
    return {str(c.get("name")) for r in rows if r.error_code is None for c in r.checks}


def _value(row: ResultRow, names: set[str], graded: bool) -> float | None:
    """The row's score on the checks in ``names``; 0.0 for a failed call; ``None`` when
    unscored (no such check, or the harness could not score it)."""
    if row.error_code in HARNESS_ERRORS:
        return None
    if row.error_code is not None:
        return 0.0
    checks = [Check(**c) for c in row.checks if c.get("name") in names]
    passed, score = verdict(checks)
    if passed is None:
        return None
    return float(score if graded and score is not None else passed)


def _case_means(
    cases: dict[str, list[ResultRow]], names: set[str], graded: bool
) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for case_id, rows in cases.items():
        values = [v for r in rows if (v := _value(r, names, graded)) is not None]
        out[case_id] = sum(values) / len(values) if values else None
    return out


def _incomplete(run: LoadedRun, model: str, side: str) -> list[str]:
    failed = sum(1 for r in run.results if r.model == model and r.error_code is not None)
    expected = len(run.info.suite.get("cases", ())) * run.info.repeats
    stored = sum(1 for r in run.results if r.model == model)
    if run.info.status == "complete" and not failed and stored >= expected:
        return []
    return [
        f"run {side} ({run.info.run_id}) is {run.info.status}: {failed} failed and "
        f"{max(0, expected - stored)} missing calls of {expected} for {model}"
    ]


def _changed_cases(a: LoadedRun, b: LoadedRun, ids: Iterable[str]) -> list[str]:
    """The cases of ``ids`` defined differently (tags aside) in the runs' suites."""

    def defs(run: LoadedRun) -> dict[str, dict[str, Any]]:
        cases = run.info.suite.get("cases", ())
        return {c["id"]: {k: v for k, v in c.items() if k != "tags"} for c in cases}

    if a.info.suite_digest == b.info.suite_digest:
        return []
    defs_a, defs_b = defs(a), defs(b)
    return sorted(c for c in ids if defs_a.get(c) != defs_b.get(c))


def compare_runs(
    a: LoadedRun,
    b: LoadedRun,
    *,
    model: str | None = None,
    model_a: str | None = None,
    model_b: str | None = None,
    alpha: float = 0.05,
) -> Comparison:
    """Paired comparison of candidate ``model_b`` in run ``b`` against baseline
    ``model_a`` in run ``a`` (``b`` may be ``a`` with two of its candidates)."""
    name_a, name_b = _pick_models(a, b, model, model_a, model_b)
    cases_a, cases_b = _per_case(a.results, name_a), _per_case(b.results, name_b)
    common = set(cases_a) & set(cases_b)
    changed = _changed_cases(a, b, common)
    both = sorted(common - set(changed))
    if not both:
        why = f" defined alike ({len(changed)} changed)" if changed else ""
        raise ConfigError(f"the runs have no case in common{why}")
    checks_a = _check_names(r for c in both for r in cases_a[c])
    checks_b = _check_names(r for c in both for r in cases_b[c])
    names = checks_a & checks_b
    graded = any(
        c.get("name") in names and c.get("score") not in (0.0, 1.0)
        for c_id in both
        for r in (*cases_a[c_id], *cases_b[c_id])
        for c in r.checks
    )
    means_a = _case_means({c: cases_a[c] for c in both}, names, graded)
    means_b = _case_means({c: cases_b[c] for c in both}, names, graded)
    paired = [c for c in both if means_a[c] is not None and means_b[c] is not None]
    if not paired:
        raise ConfigError("no case is scored in both runs (nothing to compare)")
    xs = [float(means_a[c] or 0.0) for c in paired]
    ys = [float(means_b[c] or 0.0) for c in paired]
    changes = list(zip(paired, xs, ys, strict=True))
    return Comparison(
        model_a=name_a,
        model_b=name_b,
        test=paired_test(xs, ys),
        alpha=alpha,
        baseline_rate=sum(xs) / len(xs),
        candidate_rate=sum(ys) / len(ys),
        regressions=tuple(Regression(c, x, y) for c, x, y in changes if y < x),
        improvements=tuple(Regression(c, x, y) for c, x, y in changes if y > x),
        unpaired=len(set(cases_a) ^ set(cases_b)),
        run_a=a.info.run_id,
        run_b=b.info.run_id,
        unscored=len(both) - len(paired),
        graded=graded,
        dropped_checks=tuple(sorted(checks_a ^ checks_b)),
        incomplete=tuple(_incomplete(a, name_a, "A") + _incomplete(b, name_b, "B")),
        changed=tuple(changed),
    )
