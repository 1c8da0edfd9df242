"""Drift and candidate gating: run B (candidate) against run A (baseline), case by case.

Cases are paired by id. With one repeat and pass/fail checks the test is McNemar's on
pass/fail; with repeats, a paired bootstrap over per-case pass rates; with graded checks
(a judge's grade, a float scorer), a paired bootstrap over per-case mean scores. A
candidate is *significantly worse* when p < alpha and it loses more cases than it wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from laneway.errors import ConfigError
from laneway.evals._stats import PairedTest, mcnemar, paired_bootstrap
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

    @property
    def significantly_worse(self) -> bool:
        return self.test.p_value < self.alpha and self.test.worse > self.test.better

    def to_json(self) -> dict[str, Any]:
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "method": self.test.method,
            "p_value": self.test.p_value,
            "alpha": self.alpha,
            "delta": self.test.delta,
            "n": self.test.n,
            "worse": self.test.worse,
            "better": self.test.better,
            "baseline_rate": self.baseline_rate,
            "candidate_rate": self.candidate_rate,
            "significantly_worse": self.significantly_worse,
            "unpaired": self.unpaired,
            "regressions": [
                {"case_id": r.case_id, "baseline": r.baseline, "candidate": r.candidate}
                for r in self.regressions
            ],
        }


def _per_case(results: tuple[ResultRow, ...], model: str) -> dict[str, list[ResultRow]]:
    out: dict[str, list[ResultRow]] = {}
    for row in results:
        if row.model == model:
            out.setdefault(row.case_id, []).append(row)
    return out


def _pick_models(a: LoadedRun, b: LoadedRun, model: str | None) -> tuple[str, str]:
    if model is not None:
        for run, name in ((a, "A"), (b, "B")):
            if model not in run.info.models:
                raise ConfigError(
                    f"run {name} ({run.info.run_id}) has no model {model!r} "
                    f"(it has: {', '.join(run.info.models)})"
                )
        return model, model
    common = [m for m in a.info.models if m in b.info.models]
    if len(common) == 1:
        return common[0], common[0]
    if len(a.info.models) == 1 and len(b.info.models) == 1:
        return a.info.models[0], b.info.models[0]
    raise ConfigError(
        "the runs have several candidates; name one with --model "
        f"(A: {', '.join(a.info.models)}; B: {', '.join(b.info.models)})"
    )


def _graded(row: ResultRow) -> bool:
    """A judge grade or a float scorer: scores between 0 and 1, not pass/fail."""
    return any(c.get("score") not in (0.0, 1.0) for c in row.checks)


def _score(row: ResultRow) -> float:
    if row.error_code is not None or row.passed is None:
        return 0.0
    return row.score if row.score is not None else float(row.passed)


def compare_runs(
    a: LoadedRun, b: LoadedRun, *, model: str | None = None, alpha: float = 0.05
) -> Comparison:
    """Paired comparison of candidate run ``b`` against baseline run ``a``."""
    model_a, model_b = _pick_models(a, b, model)
    cases_a, cases_b = _per_case(a.results, model_a), _per_case(b.results, model_b)
    paired = sorted(set(cases_a) & set(cases_b))
    if not paired:
        raise ConfigError("the runs have no case in common")
    unpaired = len(set(cases_a) ^ set(cases_b))
    rows = [(cases_a[c], cases_b[c]) for c in paired]
    graded = any(_graded(r) for ra, rb in rows for r in (*ra, *rb))
    binary = not graded and all(len(ra) == 1 and len(rb) == 1 for ra, rb in rows)
    pass_a = [sum(bool(r.passed) and r.error_code is None for r in ra) / len(ra) for ra, _ in rows]
    pass_b = [sum(bool(r.passed) and r.error_code is None for r in rb) / len(rb) for _, rb in rows]
    if binary:
        test = mcnemar([p == 1.0 for p in pass_a], [p == 1.0 for p in pass_b])
        mean_a, mean_b = pass_a, pass_b
    elif graded:
        mean_a = [sum(_score(r) for r in ra) / len(ra) for ra, _ in rows]
        mean_b = [sum(_score(r) for r in rb) / len(rb) for _, rb in rows]
        test = paired_bootstrap(mean_a, mean_b)
    else:
        mean_a, mean_b = pass_a, pass_b
        test = paired_bootstrap(mean_a, mean_b)
    changes = list(zip(paired, mean_a, mean_b, strict=True))
    return Comparison(
        model_a=model_a,
        model_b=model_b,
        test=test,
        alpha=alpha,
        baseline_rate=sum(pass_a) / len(pass_a),
        candidate_rate=sum(pass_b) / len(pass_b),
        regressions=tuple(Regression(c, x, y) for c, x, y in changes if y < x),
        improvements=tuple(Regression(c, x, y) for c, x, y in changes if y > x),
        unpaired=unpaired,
    )
