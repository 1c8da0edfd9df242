"""Running a suite: every case on every candidate, ``repeats`` times, through the gateway
in-process (same resolution, capability checks, retries, fallbacks and ledger as client
traffic; recorded with ``source="eval"``).

Work is pulled by ``concurrency`` workers from one iterator (memory stays bounded for any
suite size); each provider has its own request-rate limit; results are written in small
transactions keyed by (case, model, repeat), so an interrupted run resumes where it
stopped and never calls a completed case again.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from laneway.errors import ConfigError, LanewayError, ModelNotFound
from laneway.evals._calls import call_model
from laneway.evals._checks import Check, load_scorer, score_answer, verdict
from laneway.evals._judge import judge_pair, judge_rubric
from laneway.evals._store import PairVerdict, ResultRow, RunInfo, RunRecord
from laneway.evals._suite import Case, Suite
from laneway.providers import ChatRequest

if TYPE_CHECKING:
    from laneway.gateway import CallReport, Gateway

__all__ = [
    "RunOptions",
    "RunSummary",
    "call_model",
    "candidates_from",
    "check_models",
    "check_run_id",
    "check_scorers",
    "new_run",
    "new_run_id",
    "run_suite",
]

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

PairProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RunOptions:
    models: tuple[str, ...]
    repeats: int = 1
    concurrency: int = 4
    judge: str | None = None
    retries: int = 2
    retry_delay: float = 0.5
    rps_per_provider: float | None = None
    flush_every: int = 32
    pairwise: bool = True


@dataclass(slots=True)
class RunSummary:
    done: int = 0
    errors: int = 0
    skipped: int = 0
    interrupted: bool = False
    status: str = "running"
    wall_s: float = 0.0
    pair_verdicts: int = 0
    pairs_identical: int = 0
    judge_failures: int = 0
    crashed: bool = False
    error_codes: dict[str, int] = field(default_factory=dict)
    # The first failure of each scorer / judge (by name): what to tell the user.
    harness_errors: dict[str, str] = field(default_factory=dict)

    def note_error(self, code: str, message: str | None, source: str | None = None) -> None:
        self.errors += 1
        self.error_codes[code] = self.error_codes.get(code, 0) + 1
        if source is not None and message:
            self.harness_errors.setdefault(source, message)


class _RateLimiter:
    """At most ``rate`` request starts per second (evenly spaced)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


def provider_of(gateway: Gateway, model: str, role: str = "candidate") -> str:
    """The provider a candidate's first deployment uses (the rate-limit key)."""
    if model == "auto" or model.startswith("auto:"):
        return "auto"
    try:
        resolution = gateway.resolver.resolve(model)
    except ModelNotFound as exc:
        raise ConfigError(f"{role} {model!r}: {exc}") from None
    settings = gateway.deployments[resolution.deployments[0]].settings
    return settings.vendor or settings.api_base or settings.provider


def check_models(gateway: Gateway, options: RunOptions) -> None:
    """``ConfigError`` naming the first candidate (or judge) the gateway cannot serve."""
    for model in options.models:
        provider_of(gateway, model)
    if options.judge is not None:
        provider_of(gateway, options.judge, role="judge")


def check_scorers(suite: Suite) -> None:
    """``ConfigError`` for the first Python scorer that cannot be imported (before any
    call is made)."""
    for name in sorted({c.scorer for c in suite.cases if c.scorer is not None}):
        load_scorer(name)


def build_request(case: Case, model: str) -> ChatRequest:
    rf: dict[str, Any] | None = None
    if case.json_schema is not None:
        rf = {"type": "json_schema", "json_schema": {"name": "answer", "schema": case.json_schema}}
    elif case.response_format == "json":
        rf = {"type": "json_object"}
    return ChatRequest(
        model=model,
        messages=tuple(case.chat_messages()),  # type: ignore[arg-type]
        stream=True,
        include_usage=True,
        max_tokens=case.max_tokens,
        temperature=case.temperature,
        response_format=rf,
    )


def _result(case: Case, model: str, repeat: int, report: CallReport, gateway: Gateway) -> ResultRow:
    deployment = report.deployment
    model_id = (
        gateway.deployments[deployment].model_id if deployment in gateway.deployments else None
    )
    usage = report.result.usage if report.result is not None else None
    common: dict[str, Any] = {
        "latency_ms": report.latency_ms,
        "ttft_ms": report.ttft_ms,
        "deployment": deployment,
        "model_id": model_id,
        "request_id": report.request_id,
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
        "cost_usd": report.cost_usd,
    }
    if report.result is None:
        err = report.error or LanewayError("no result")
        return ResultRow(
            case.id, model, repeat, None, None, None, error_code=err.code, error=str(err), **common
        )
    text = report.result.content or ""
    common["served_model"] = report.result.model or None
    common["fingerprint"] = report.result.system_fingerprint
    try:
        checks = score_answer(case, text)
    except Exception as exc:  # a user's scorer: any failure is reported, never raised
        message = f"scorer {case.scorer!r} raised {type(exc).__name__}: {exc}"
        return ResultRow(
            case.id,
            model,
            repeat,
            text,
            None,
            None,
            error_code="scorer_error",
            error=message,
            **common,
        )
    passed, score = verdict(checks)
    return ResultRow(
        case.id,
        model,
        repeat,
        text,
        passed,
        score,
        tuple(c.to_json() for c in checks),
        **common,
    )


async def _with_rubric(
    gateway: Gateway, case: Case, row: ResultRow, options: RunOptions
) -> ResultRow:
    if case.rubric is None or options.judge is None or row.output is None or row.error_code:
        return row
    check, detail = await judge_rubric(gateway, options.judge, case, row.output)
    fields = {f: getattr(row, f) for f in row.__slots__}
    if check is None:
        return ResultRow(
            **{
                **fields,
                "passed": None,
                "score": None,
                "error_code": "judge_error",
                "error": detail,
            }
        )
    checks = [Check(**c) for c in row.checks] + [check]
    passed, score = verdict(checks)
    return ResultRow(
        **{**fields, "checks": tuple(c.to_json() for c in checks), "passed": passed, "score": score}
    )


class _Writer:
    def __init__(self, record: RunRecord, every: int) -> None:
        self.record, self.every, self.rows = record, every, list[ResultRow]()

    def add(self, row: ResultRow) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.every:
            self.flush()

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        self.record.write_results(rows)


def _work(
    suite: Suite, options: RunOptions, done: set[tuple[str, str, int]], summary: RunSummary
) -> Iterator[tuple[Case, str, int]]:
    for case in suite.cases:
        for repeat in range(options.repeats):
            for model in options.models:
                if (case.id, model, repeat) in done:
                    summary.skipped += 1
                    continue
                yield case, model, repeat


async def run_suite(
    gateway: Gateway,
    suite: Suite,
    record: RunRecord,
    options: RunOptions,
    on_result: Callable[[ResultRow], None] | None = None,
    on_pair: PairProgress | None = None,
) -> RunSummary:
    """Run (or resume) ``record``'s run; returns counts and the final status.
    ``on_result`` is called after every answer, ``on_pair(done, total)`` after every
    pairwise verdict of the judge phase."""
    check_models(gateway, options)
    check_scorers(suite)
    providers = {m: provider_of(gateway, m) for m in options.models}
    limiters = (
        {p: _RateLimiter(options.rps_per_provider) for p in set(providers.values())}
        if options.rps_per_provider
        else {}
    )
    summary = RunSummary()
    started = time.perf_counter()
    work = _work(suite, options, record.completed_keys(), summary)
    writer = _Writer(record, options.flush_every)

    async def worker() -> None:
        for case, model, repeat in work:
            limiter = limiters.get(providers[model])
            if limiter is not None:
                await limiter.wait()
            report = await call_model(
                gateway,
                build_request(case, model),
                retries=options.retries,
                delay=options.retry_delay,
            )
            row = await _with_rubric(
                gateway, case, _result(case, model, repeat, report, gateway), options
            )
            summary.done += 1
            if row.error_code is not None:
                source = {"scorer_error": case.scorer, "judge_error": options.judge}
                summary.note_error(row.error_code, row.error, source.get(row.error_code))
            writer.add(row)
            if on_result is not None:
                on_result(row)

    record.set_status("running")
    try:
        await asyncio.gather(*(worker() for _ in range(max(1, options.concurrency))))
        if options.judge and options.pairwise and len(options.models) > 1:
            writer.flush()
            await judge_run_pairs(gateway, suite, record, options, summary, on_pair)
    except (asyncio.CancelledError, KeyboardInterrupt):
        summary.interrupted = True
        raise
    except BaseException:
        summary.crashed = True  # whatever stopped it, the run is not complete
        raise
    finally:
        writer.flush()
        summary.status = _final_status(record, summary)
        record.set_status(summary.status)
        summary.wall_s = time.perf_counter() - started
    return summary


def _final_status(record: RunRecord, summary: RunSummary) -> str:
    if summary.interrupted:
        return "interrupted"
    failed = summary.errors > 0 or summary.judge_failures > 0 or summary.crashed
    return "incomplete" if failed else "complete"


async def judge_run_pairs(
    gateway: Gateway,
    suite: Suite,
    record: RunRecord,
    options: RunOptions,
    summary: RunSummary | None = None,
    on_pair: PairProgress | None = None,
) -> int:
    """Blind pairwise verdicts of the judge on repeat 0 of every pair of candidates
    (identical answers: a tie, no call). Returns the number of verdicts stored."""
    assert options.judge is not None
    summary = summary if summary is not None else RunSummary()
    outputs: dict[tuple[str, str], str] = {}
    for row in record.results():
        if row.repeat == 0 and row.output is not None:  # answered (failed calls have none)
            outputs[(row.case_id, row.model)] = row.output
    already = {(p.case_id, p.model_a, p.model_b) for p in record.pairs("judge")}
    sem = asyncio.Semaphore(max(1, options.concurrency))
    finished = 0

    async def one(case: Case, a: str, b: str) -> None:
        nonlocal finished
        async with sem:
            verdict_ = await judge_pair(
                gateway, options.judge or "", case, outputs[(case.id, a)], outputs[(case.id, b)]
            )
        finished += 1
        if verdict_.winner is None:
            summary.judge_failures += 1
        else:
            record.save_pair(PairVerdict(case.id, a, b, "judge", verdict_.winner, verdict_.detail))
            summary.pair_verdicts += 1
            summary.pairs_identical += not verdict_.called
        if on_pair is not None:
            on_pair(finished, len(jobs))

    jobs = [
        one(case, a, b)
        for case in suite.cases
        for a, b in itertools.combinations(options.models, 2)
        if (case.id, a) in outputs and (case.id, b) in outputs and (case.id, a, b) not in already
    ]
    await asyncio.gather(*jobs)
    return summary.pair_verdicts


def candidates_from(text: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    if not models:
        raise ConfigError("--models needs at least one candidate")
    if len(set(models)) != len(models):
        raise ConfigError("--models names a candidate twice")
    return models


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a safe id (it names files: no slash, no leading dot)."""
    if not _RUN_ID.match(run_id):
        raise ConfigError(
            f"invalid run id {run_id!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return run_id


def new_run_id() -> str:
    """A fresh run id: the UTC time stamp plus random hex."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def new_run(
    engine: sa.Engine,
    suite: Suite,
    options: RunOptions,
    run_id: str | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
) -> RunRecord:
    """Create the run record (``run_id`` defaults to :func:`new_run_id`); ``ConfigError``
    for an invalid id or one that is taken. ``extra`` is stored with the run's options
    (what a resume should keep besides them, e.g. the command line's gate and output)."""
    run_id = check_run_id(run_id) if run_id is not None else new_run_id()
    config = {k: v for k, v in asdict(options).items() if k not in ("models", "repeats")}
    config |= dict(extra or {})
    info = RunInfo(
        run_id=run_id,
        created_at=datetime.now(UTC),
        status="created",
        suite=suite.to_dict(),
        suite_digest=suite.digest,
        models=options.models,
        repeats=options.repeats,
        config=config,
    )
    return RunRecord.create(engine, info)
