"""Canary runs and ledger windows, turned into drift reports.

``run_canary``: run a (small) suite on one model through the gateway core, exactly as
``eval run`` does; the first complete run of a (suite, model) target is pinned as its
baseline, every later run is compared with it (and its answers are the pinned reference
answers the judge compares new answers with). ``drift_from_ledger``: a deployment's
recent window of logged traffic against the window before it, one source of traffic at a
time (client traffic unless told: ``LEDGER_SOURCES``), so like is compared with like.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from laneway.errors import ConfigError
from laneway.evals._compare import compare_runs
from laneway.evals._drift import DriftReport, DriftSample, detect_drift, is_refusal
from laneway.evals._drift_store import pin_baseline, pinned_baseline, save_report
from laneway.evals._judge import judge_pair
from laneway.evals._metrics import HARNESS_ERRORS
from laneway.evals._runner import RunOptions, RunSummary, new_run, new_run_id, run_suite
from laneway.evals._store import LoadedRun, ResultRow, RunRecord, load_run
from laneway.evals._suite import Case, Suite
from laneway.ledger import LEDGER

if TYPE_CHECKING:
    from laneway.gateway import Gateway

__all__ = [
    "LEDGER_SOURCES",
    "MIN_WINDOW_CALLS",
    "CanaryOutcome",
    "canary_target",
    "drift_from_ledger",
    "ledger_target",
    "run_canary",
    "sample_of_run",
]

# A ledger window with fewer calls is too small for the statistical signals (the normal
# approximation of Mann-Whitney's U needs about this many; a few failed calls in a quiet
# hour are not a trend).
MIN_WINDOW_CALLS = 20


@dataclass(frozen=True, slots=True)
class CanaryOutcome:
    run_id: str
    summary: RunSummary
    baseline_id: str
    pinned: bool  # this run became the baseline
    report: DriftReport | None


def canary_target(suite: Suite, model: str) -> str:
    return f"{suite.name}:{model}"


def sample_of_run(rows: Iterable[ResultRow]) -> DriftSample:
    """A drift sample of a run's answers (harness failures left out)."""
    sample = DriftSample.empty()
    models: set[str] = set()
    prints: set[str] = set()
    for row in rows:
        if row.error_code in HARNESS_ERRORS:
            continue
        sample.calls += 1
        if row.latency_ms is not None:
            sample.latency_ms.append(row.latency_ms)
        if row.error_code is not None:
            sample.errors += 1
            continue
        sample.answers += 1
        sample.refusals += is_refusal(row.output)
        tokens = row.completion_tokens
        if tokens is None and row.output is not None:
            tokens = max(1, len(row.output) // 4)
        if tokens is not None:
            sample.output_tokens.append(float(tokens))
        fmt = [c for c in row.checks if c.get("kind") == "format"]
        if fmt:
            sample.format_checked += 1
            sample.format_ok += all(bool(c.get("passed")) for c in fmt)
        if row.served_model:
            models.add(row.served_model)
        if row.fingerprint:
            prints.add(row.fingerprint)
    sample.served_models, sample.fingerprints = frozenset(models), frozenset(prints)
    return sample


async def _preference(
    gateway: Gateway, judge: str, suite: Suite, base: LoadedRun, recent: LoadedRun, model: str
) -> tuple[int, int, int]:
    """The judge's (wins, ties, losses) of the recent answers against the reference
    (baseline) answers, repeat 0 of each case; identical answers tie without a call."""

    def answers(run: LoadedRun) -> dict[str, str]:
        return {
            r.case_id: r.output
            for r in run.results
            if r.model == model and r.repeat == 0 and r.error_code is None and r.output is not None
        }

    ref, new = answers(base), answers(recent)
    cases: Mapping[str, Case] = {c.id: c for c in suite.cases}
    sem = asyncio.Semaphore(4)

    async def one(case_id: str) -> str | None:
        async with sem:
            result = await judge_pair(gateway, judge, cases[case_id], new[case_id], ref[case_id])
        return result.winner

    winners = await asyncio.gather(
        *(one(c) for c in sorted(ref.keys() & new.keys() & cases.keys()))
    )
    return winners.count("a"), winners.count("tie"), winners.count("b")


def _quality(
    base: LoadedRun, recent: LoadedRun, model: str
) -> tuple[float, float, float, str] | None:
    try:
        result = compare_runs(base, recent, model_a=model, model_b=model)
    except ConfigError:  # nothing scored in both: no quality signal
        return None
    return result.test.p_value, result.baseline_rate, result.candidate_rate, result.test.method


async def run_canary(
    gateway: Gateway,
    engine: sa.Engine,
    suite: Suite,
    model: str,
    *,
    repeats: int = 1,
    judge: str | None = None,
    alpha: float = 0.01,
    concurrency: int = 4,
    rebaseline: bool = False,
    on_result: Callable[[ResultRow], None] | None = None,
) -> CanaryOutcome:
    """Run the canary suite on ``model``; pin it as the baseline (first run, or
    ``rebaseline``) or compare it with the pinned baseline and store the signals."""
    target = canary_target(suite, model)
    base_id = None if rebaseline else pinned_baseline(engine, target)
    base: LoadedRun | None = None
    if base_id is not None:
        base = load_run(base_id, engine)
        if base.info.suite_digest != suite.digest:
            raise ConfigError(
                f"suite {suite.name!r} changed since baseline {base_id} was pinned: "
                "pin a new baseline with --rebaseline"
            )
    options = RunOptions(models=(model,), repeats=repeats, concurrency=concurrency, judge=judge)
    record: RunRecord = new_run(engine, suite, options, "drift-" + new_run_id())
    summary = await run_suite(gateway, suite, record, options, on_result=on_result)
    if base is None:
        if summary.status == "complete":
            pin_baseline(engine, target, record.run_id)
        return CanaryOutcome(
            record.run_id, summary, record.run_id, summary.status == "complete", None
        )
    recent = load_run(record.run_id, engine)
    preference = None
    if judge is not None:
        preference = await _preference(gateway, judge, suite, base, recent, model)
    report = detect_drift(
        target,
        base.info.run_id,
        recent.info.run_id,
        sample_of_run(r for r in base.results if r.model == model),
        sample_of_run(r for r in recent.results if r.model == model),
        alpha=alpha,
        quality=_quality(base, recent, model),
        preference=preference,
        source=f"canary runs of suite {suite.name} (the pinned baseline run)",
    )
    save_report(engine, report, record.run_id)
    return CanaryOutcome(record.run_id, summary, base.info.run_id, False, report)


# What a ledger window of one deployment can hold (``source`` on the row), and how a
# report names it. Drift compares a source with itself only: an eval suite's prompts are
# not the clients' (other lengths, refusals and failures), shadow copies are a sample of
# another deployment's requests, and mixing them alarmed on a quiet deployment (or hid a
# real change under the other traffic).
LEDGER_SOURCES: Mapping[str, str] = {
    "api": "client traffic",
    "shadow": "shadow copies",
    "eval": "eval and canary suite calls",
}


def ledger_target(deployment: str, source: str = "api") -> str:
    """The drift target (gauge label) of ``deployment``'s ``source`` traffic: client
    traffic keeps the plain ``deployment:NAME`` (a deployment name has no ``:``)."""
    return f"deployment:{deployment}" + ("" if source == "api" else f":{source}")


def _calls_where(deployment: str, start: datetime, end: datetime) -> list[Any]:
    """The calls made to ``deployment`` in [start, end): every attempt row (a retried or
    failed request has one per call, and its summary names no deployment when every
    call failed), and the summary row of a request answered by its first and only call
    (it has no attempt row)."""
    attempts = sa.alias(LEDGER, "attempts")
    has_attempts = (
        sa.select(attempts.c.id)
        .where(attempts.c.request_id == LEDGER.c.request_id, attempts.c.attempt >= 1)
        .exists()
    )
    return [
        LEDGER.c.deployment == deployment,
        LEDGER.c.ts >= start,
        LEDGER.c.ts < end,
        sa.or_(LEDGER.c.attempt >= 1, ~has_attempts),
    ]


def _ledger_calls(
    engine: sa.Engine, deployment: str, start: datetime, end: datetime, source: str
) -> list[sa.RowMapping]:
    """The calls of ``source`` (attempt rows repeat their request's source)."""
    cols = [LEDGER.c.latency_ms, LEDGER.c.completion_tokens, LEDGER.c.status, LEDGER.c.error_kind]
    extra = [LEDGER.c[c] for c in ("served_model", "fingerprint") if c in LEDGER.c]
    query = sa.select(*cols, *extra).where(
        *_calls_where(deployment, start, end), LEDGER.c.source == source
    )
    with engine.connect() as conn:
        return list(conn.execute(query).mappings().all())


def _calls_by_source(
    engine: sa.Engine, deployment: str, start: datetime, end: datetime
) -> dict[str, int]:
    query = (
        sa.select(LEDGER.c.source, sa.func.count())
        .where(*_calls_where(deployment, start, end))
        .group_by(LEDGER.c.source)
    )
    with engine.connect() as conn:
        return {str(source): int(n) for source, n in conn.execute(query).all()}


def _ledger_sample(
    engine: sa.Engine, deployment: str, start: datetime, end: datetime, source: str
) -> DriftSample:
    sample = DriftSample.empty()
    models: set[str] = set()
    prints: set[str] = set()
    for row in _ledger_calls(engine, deployment, start, end, source):
        sample.calls += 1
        if row["latency_ms"] is not None:
            sample.latency_ms.append(float(row["latency_ms"]))
        if row["status"] != 200:
            sample.errors += 1
            sample.refusals += row["error_kind"] == "content_filter"
            continue
        sample.answers += 1
        if row["completion_tokens"] is not None:
            sample.output_tokens.append(float(row["completion_tokens"]))
        served: Any = row.get("served_model")
        if served:
            models.add(str(served))
        fingerprint: Any = row.get("fingerprint")
        if fingerprint:
            prints.add(str(fingerprint))
    sample.served_models, sample.fingerprints = frozenset(models), frozenset(prints)
    return sample


def _no_calls(
    engine: sa.Engine, deployment: str, source: str, side: str, start: datetime, end: datetime
) -> ConfigError:
    """No call of ``source`` on one side: say which other traffic the window holds (a
    shadow candidate serves no client yet: its traffic is ``--source shadow``)."""
    kind = LEDGER_SOURCES[source]
    others = _calls_by_source(engine, deployment, start, end)
    others.pop(source, None)
    message = f"deployment {deployment!r} has no logged {kind} (source={source}) in the {side}"
    if others:
        shown = ", ".join(f"{n} {s}" for s, n in sorted(others.items()))
        options = " or ".join(f"--source {s}" for s in sorted(others) if s in LEDGER_SOURCES)
        message += f"; it has {shown} calls there"
        if options:
            message += f" (compare those with {options})"
    return ConfigError(message)


def drift_from_ledger(
    engine: sa.Engine,
    deployment: str,
    *,
    window: timedelta,
    baseline: timedelta,
    source: str = "api",
    alpha: float = 0.01,
    now: datetime | None = None,
    save: bool = True,
    min_calls: int = MIN_WINDOW_CALLS,
) -> DriftReport:
    """``deployment``'s last ``window`` of ``source`` traffic (client traffic by default:
    see ``LEDGER_SOURCES``) against the ``baseline`` before it, of the same source
    (refusals here are content-filter refusals: the ledger keeps no answers). With fewer
    than ``min_calls`` calls on a side, only model id and fingerprint changes are
    checked, and the report's note says so."""
    if source not in LEDGER_SOURCES:
        raise ConfigError(f"unknown traffic source {source!r}: one of {', '.join(LEDGER_SOURCES)}")
    end = now or datetime.now(UTC)
    split = end - window
    start = split - baseline
    recent = _ledger_sample(engine, deployment, split, end, source)
    if recent.calls == 0:
        raise _no_calls(engine, deployment, source, "recent window", split, end)
    base = _ledger_sample(engine, deployment, start, split, source)
    if base.calls == 0:
        raise _no_calls(engine, deployment, source, "baseline window", start, split)
    label = f"{start:%Y-%m-%d %H:%M}..{split:%Y-%m-%d %H:%M}"
    report = detect_drift(
        ledger_target(deployment, source),
        label,
        f"{split:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M}",
        base,
        recent,
        alpha=alpha,
        min_calls=min_calls,
        source=f"{LEDGER_SOURCES[source]} (source={source})",
    )
    if save:
        save_report(engine, report)
    return report
