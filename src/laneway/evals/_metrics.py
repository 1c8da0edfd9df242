"""Metrics per model and per tag from a run's results.

* ``pass_rate``: passed / scored attempts (a failed call counts as a failure; an answer
  with no check, or one the harness could not score, is left out), with a 95% interval
  clustered by case (repeats of one case are not independent trials).
* ``instruction_following`` / ``format_adherence``: the share of attempts whose
  instruction / format checks all pass, over the attempts that have such checks.
* ``pass_hat_k``: mean over cases of C(c, k) / C(n, k), for k = 1..repeats.
* ``agreement``: mean over cases of the share of repeats giving the most common
  (normalised) answer, over answered calls only (scored or not; failed calls are not
  answers), for cases with two answers or more.
* latency p50 / p95 over every call, failed ones included (a time-out took its time: left
  out, it would make a failing model look fast); ``latency_samples`` says how many, and a
  p95 over fewer than :data:`MIN_P95_SAMPLES` is flagged. TTFT over answered calls.
* tokens and cost per attempt, and the projected monthly cost at ``tokens_per_day``
  (cost per token x tokens x 30). The gateway reports no cost for a failed call: such
  calls are left out of the cost per attempt (``cost_failed_unknown`` counts them); an
  answered call of unknown price makes the cost unknown. One failed call used to make
  the cost of the whole model unknown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from laneway.evals._checks import normalize_answer
from laneway.evals._stats import agreement, clustered_interval, pass_hat_k
from laneway.evals._store import ResultRow
from laneway.ledger import format_usd, percentile

__all__ = [
    "HARNESS_ERRORS",
    "MIN_P95_SAMPLES",
    "ModelMetrics",
    "compute_metrics",
    "metrics_to_json",
]

MIN_P95_SAMPLES = 20
# Error codes of answers the harness (a scorer, the judge) failed on: not the model's
# failure, so left out of pass rates and latency; the run is incomplete.
HARNESS_ERRORS = frozenset({"scorer_error", "judge_error"})


@dataclass(slots=True)
class _Acc:
    attempts: int = 0
    errors: int = 0
    scored: int = 0
    passed: int = 0
    score_sum: float = 0.0
    instr: list[int] = field(default_factory=lambda: [0, 0])
    fmt: list[int] = field(default_factory=lambda: [0, 0])
    latency: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    tokens: int = 0
    token_rows: int = 0
    cost: Decimal = Decimal(0)
    cost_rows: int = 0
    cost_unknown: int = 0
    cost_failed_unknown: int = 0
    per_case: dict[str, list[bool]] = field(default_factory=dict)
    answers: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelMetrics:
    model: str
    tag: str | None
    cases: int
    attempts: int
    errors: int
    pass_rate: float | None
    pass_ci: tuple[float, float]
    mean_score: float | None
    instruction_following: float | None
    format_adherence: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_samples: int
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    pass_hat_k: dict[int, float]
    agreement: float | None
    tokens_per_case: float | None
    cost_per_case_usd: Decimal | None
    monthly_cost_usd: Decimal | None
    cost_failed_unknown: int = 0  # failed calls of unknown cost, left out of the cost


def _kind_ok(checks: Sequence[Mapping[str, Any]], kind: str) -> bool | None:
    mine = [c for c in checks if c.get("kind") == kind]
    return None if not mine else all(bool(c.get("passed")) for c in mine)


def _add(acc: _Acc, row: ResultRow, wants_format: bool, wants_instr: bool) -> None:
    acc.attempts += 1
    harness = row.error_code in HARNESS_ERRORS
    if row.latency_ms is not None and not harness:
        acc.latency.append(row.latency_ms)
    if row.ttft_ms is not None and row.error_code is None:
        acc.ttft.append(row.ttft_ms)
    if row.error_code is not None:
        acc.errors += 1
    if row.error_code is None and row.output is not None:
        acc.answers.setdefault(row.case_id, []).append(normalize_answer(row.output))
    ok = row.error_code is None and bool(row.passed)
    if (row.passed is not None or row.error_code is not None) and not harness:
        acc.scored += 1
        acc.passed += ok
        acc.score_sum += row.score or 0.0
        acc.per_case.setdefault(row.case_id, []).append(ok)
    checks = (("format", wants_format, acc.fmt), ("instruction", wants_instr, acc.instr))
    for kind, wanted, bucket in checks:
        if wanted:
            bucket[1] += 1
            bucket[0] += bool(_kind_ok(row.checks, kind))
    if row.prompt_tokens is not None or row.completion_tokens is not None:
        acc.tokens += (row.prompt_tokens or 0) + (row.completion_tokens or 0)
        acc.token_rows += 1
    if row.cost_usd is not None:
        acc.cost += row.cost_usd
        acc.cost_rows += 1
    elif row.error_code is not None and not harness:
        acc.cost_failed_unknown += 1
    else:
        acc.cost_unknown += 1


def _finish(model: str, tag: str | None, acc: _Acc, tokens_per_day: int | None) -> ModelMetrics:
    repeats = max((len(v) for v in acc.per_case.values()), default=0)
    hat: dict[int, float] = {}
    for k in range(1, repeats + 1):
        vals = [
            pass_hat_k(sum(runs), len(runs), k) for runs in acc.per_case.values() if len(runs) >= k
        ]
        if vals:
            hat[k] = sum(vals) / len(vals)
    agree = [agreement(answers) for answers in acc.answers.values() if len(answers) > 1]
    cost_known = acc.cost_unknown == 0 and acc.cost_rows > 0
    cost_per = acc.cost / acc.cost_rows if cost_known else None
    monthly = None
    if cost_known and tokens_per_day and acc.tokens:
        monthly = (acc.cost / acc.tokens * tokens_per_day * 30).quantize(Decimal("0.01"))
    return ModelMetrics(
        model=model,
        tag=tag,
        cases=len(acc.per_case.keys() | acc.answers.keys()),
        attempts=acc.attempts,
        errors=acc.errors,
        pass_rate=acc.passed / acc.scored if acc.scored else None,
        pass_ci=clustered_interval([(sum(r), len(r)) for r in acc.per_case.values()]),
        mean_score=acc.score_sum / acc.scored if acc.scored else None,
        instruction_following=acc.instr[0] / acc.instr[1] if acc.instr[1] else None,
        format_adherence=acc.fmt[0] / acc.fmt[1] if acc.fmt[1] else None,
        latency_p50_ms=percentile(acc.latency, 50),
        latency_p95_ms=percentile(acc.latency, 95),
        latency_samples=len(acc.latency),
        ttft_p50_ms=percentile(acc.ttft, 50),
        ttft_p95_ms=percentile(acc.ttft, 95),
        pass_hat_k=hat,
        agreement=sum(agree) / len(agree) if agree else None,
        tokens_per_case=acc.tokens / acc.token_rows if acc.token_rows else None,
        cost_per_case_usd=cost_per,
        monthly_cost_usd=monthly,
        cost_failed_unknown=acc.cost_failed_unknown,
    )


def compute_metrics(
    results: Iterable[ResultRow],
    suite: Mapping[str, Any],
    models: Sequence[str],
    *,
    tokens_per_day: int | None = None,
) -> list[ModelMetrics]:
    """One :class:`ModelMetrics` per model (``tag=None``), then per (model, tag)."""
    cases = {c["id"]: c for c in suite.get("cases", [])}
    accs: dict[tuple[str, str | None], _Acc] = defaultdict(_Acc)
    for row in results:
        case = cases.get(row.case_id, {})
        wants_format = bool(case.get("json_schema")) or case.get("response_format") == "json"
        wants_instr = bool(case.get("instructions"))
        for tag in (None, *case.get("tags", ())):
            _add(accs[(row.model, tag)], row, wants_format, wants_instr)
    rank = {m: i for i, m in enumerate(models)}
    ordered = sorted(accs, key=lambda k: (rank.get(k[0], len(models)), k[0], k[1] or ""))
    return [_finish(m, t, accs[(m, t)], tokens_per_day) for m, t in ordered]


def metrics_to_json(metrics: Sequence[ModelMetrics]) -> list[dict[str, Any]]:
    out = []
    for m in metrics:
        item = {f: getattr(m, f) for f in m.__slots__}
        item["pass_ci"] = None if m.pass_rate is None else list(m.pass_ci)
        item["pass_hat_k"] = {str(k): v for k, v in m.pass_hat_k.items()}
        item["cost_per_case_usd"] = format_usd(m.cost_per_case_usd)
        item["monthly_cost_usd"] = format_usd(m.monthly_cost_usd)
        out.append(item)
    return out
