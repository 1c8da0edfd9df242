"""``laneway shadow …``: what shadow traffic says about a candidate model.

``shadow report`` compares each candidate with the primary on the pairs collected
(latency p50/p95, cost, output length, refusal / empty / failed rates, the judge's blind
verdicts with intervals); ``--judge MODEL`` first judges the pairs not judged yet (both
orders, ties kept, identical answers a tie without a call); ``--gate --margin M`` exits 1
unless the candidate is non-inferior at margin M with significance. ``shadow review``
puts a random sample of pairs before a person on the blind review page (sides shuffled,
model names hidden, identical answers never shown); the verdicts are stored on the pairs
and counted in the report beside the judge's. ``shadow export`` writes the judged pairs
as outcome rows that ``laneway router train`` reads.

Exit codes: 0 done (gate passed); 1 the work could not be done (one ``error:`` line) or
the gate failed; 2 a wrong command line.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from laneway.cli._common import ConfigOpt, DbOpt, JsonOpt, engine_from, errors, fail, settings_from

if TYPE_CHECKING:
    import sqlalchemy as sa

    from laneway.evals import LoadedRun, ReviewItem, ShadowPair, ShadowReport, VerdictSink

__all__ = ["register", "shadow_app"]

shadow_app = typer.Typer(
    help="Shadow traffic: compare candidate deployments with the primary on mirrored "
    "requests (configure `shadow.rules`), gate a switch, export outcomes.",
    no_args_is_help=True,
)

CandidateOpt = Annotated[
    str | None, typer.Option("--candidate", help="Only this candidate deployment.")
]
SinceOpt = Annotated[
    str, typer.Option("--since", help="Pairs collected in this window, e.g. 24h, 7d, 30d.")
]


def register(app: typer.Typer) -> None:
    """Add the ``shadow`` command group to ``app``."""
    app.add_typer(shadow_app, name="shadow")


def _since(text: str) -> datetime:
    from laneway.errors import LanewayError
    from laneway.ledger import parse_since

    try:
        return parse_since(text)
    except LanewayError as exc:
        raise typer.BadParameter(exc.message, param_hint="--since") from None


def _rows(engine: sa.Engine, since: datetime, candidate: str | None) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from laneway.gateway import SHADOW_PAIRS

    query = sa.select(SHADOW_PAIRS).where(SHADOW_PAIRS.c.ts >= since)
    if candidate is not None:
        query = query.where(SHADOW_PAIRS.c.candidate == candidate)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query.order_by(SHADOW_PAIRS.c.id)).mappings()]


def _no_pairs(engine: sa.Engine, since: datetime, candidate: str | None) -> typer.Exit:
    """The error for no pair: with --candidate, the candidates that have pairs (a name
    mistyped read "configure shadow.rules" although the rule was collecting pairs)."""
    import sqlalchemy as sa

    from laneway.gateway import SHADOW_PAIRS

    when = f"since {since:%Y-%m-%d %H:%M} UTC"
    if candidate is not None:
        query = sa.select(SHADOW_PAIRS.c.candidate).where(SHADOW_PAIRS.c.ts >= since).distinct()
        with engine.connect() as conn:
            others = sorted(str(c) for c in conn.execute(query).scalars())
        if others:
            return fail(
                f"no shadow pairs of candidate {candidate!r} {when}; candidates with pairs: "
                + ", ".join(others)
            )
    return fail(f"no shadow pairs {when} (configure shadow.rules)")


def _pair(row: dict[str, Any]) -> ShadowPair:
    from laneway.evals import ShadowPair
    from laneway.ledger import nusd_to_usd

    names = {"a": "candidate", "b": "primary", "tie": "tie"}
    return ShadowPair(
        primary_latency_ms=row["primary_latency_ms"],
        candidate_latency_ms=row["candidate_latency_ms"],
        primary_output=row["primary_output"],
        candidate_output=row["candidate_output"] if row["candidate_error"] is None else None,
        primary_cost_usd=nusd_to_usd(row["primary_cost_nusd"]),
        candidate_cost_usd=nusd_to_usd(row["candidate_cost_nusd"]),
        primary_tokens=row["primary_tokens"],
        candidate_tokens=row["candidate_tokens"],
        verdict=names.get(row["verdict"] or ""),
        human=names.get(row.get("human_verdict") or ""),
    )


async def _judge(
    engine: sa.Engine, config: Path | None, judge: str, rows: list[Any]
) -> tuple[int, list[list[str]]]:
    """Judge the pairs not judged yet; the candidate is answer ``a``. Returns how many
    were judged and, per pair it failed on, the judge's errors (the pair stays unjudged).
    ``ConfigError`` before any call when the gateway cannot serve ``judge``."""
    import sqlalchemy as sa

    from laneway.evals import (
        PROMPT_VERSION,
        Case,
        RunOptions,
        RunProgress,
        check_models,
        judge_pair,
    )
    from laneway.gateway import SHADOW_PAIRS
    from laneway.server import build_gateway

    gateway = build_gateway(settings_from(config), engine=engine)
    await gateway.start()
    done, failures = 0, []
    todo = [
        r
        for r in rows
        if r["verdict"] is None and r["candidate_output"] is not None and not r["candidate_error"]
    ]
    try:
        check_models(gateway, RunOptions(models=(), judge=judge))
        # Progress on stderr: stdout may be --json.
        with RunProgress(f"judge {judge}", len(todo), out=sys.stderr) as progress:
            for row in todo:
                case = Case(id=str(row["id"]), messages=tuple(row["prompt"]))
                result = await judge_pair(
                    gateway, judge, case, row["candidate_output"], row["primary_output"] or ""
                )
                progress.answer(error=result.winner is None)
                if result.winner is None:
                    failures.append([str(e) for e in result.detail.get("errors", ())])
                    continue
                row["verdict"] = result.winner
                with engine.begin() as conn:
                    conn.execute(
                        sa.update(SHADOW_PAIRS)
                        .where(SHADOW_PAIRS.c.id == row["id"])
                        .values(
                            verdict=result.winner, judge=judge, judge_prompt_version=PROMPT_VERSION
                        )
                    )
                done += 1
    finally:
        await gateway.aclose()
    return done, failures


def _money(value: Decimal | None) -> str:
    """Dollars to the cent from $1, else to the millionth (a shadow sample's cost is
    often fractions of a cent: $0.0000 would read as free)."""
    if value is None:
        return "unknown"
    if value == 0 or abs(value) >= 1:
        return f"${value:,.2f}"
    if abs(value) < Decimal("0.000001"):
        return "< $0.000001"
    return f"${value:.6f}"


def _num(value: float | None, spec: str) -> str:
    """``value`` formatted, or ``–`` when there is none (None or NaN)."""
    return "–" if value is None or math.isnan(value) else format(value, spec)


def _p(value: float | None) -> str:
    """``p=0.031``, ``p < 1e-4`` (never ``p=0``: an exact test over a thousand pairs
    underflows), or ``p=–``."""
    from laneway.evals import format_p

    if value is None or math.isnan(value):
        return "p=–"
    shown = format_p(value)
    return f"p {shown}" if shown.startswith("<") else f"p={shown}"


def _plain_json(value: Any) -> Any:
    """``value`` as strict JSON can carry it: NaN and infinities become null (``NaN`` is
    not JSON: jq and JavaScript refuse it), Decimals plain decimal strings (not ``0E-9``)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value.is_finite() else None
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(v) for v in value]
    return value


def _print(candidate: str, report: ShadowReport) -> None:
    p, c = report.primary, report.candidate
    typer.echo(f"candidate {candidate}: {report.pairs} pairs")
    typer.echo(f"  {'':22}{'primary':>14}{'candidate':>14}")
    for label, a, b in (
        ("latency p50 (ms)", p.latency_p50_ms, c.latency_p50_ms),
        ("latency p95 (ms)", p.latency_p95_ms, c.latency_p95_ms),
        ("mean output tokens", p.mean_output_tokens, c.mean_output_tokens),
    ):
        shown = [_num(v, ",.1f") for v in (a, b)]
        typer.echo(f"  {label:22}{shown[0]:>14}{shown[1]:>14}")
    typer.echo(f"  {'cost':22}{_money(p.cost_usd):>14}{_money(c.cost_usd):>14}")
    for rate in report.rates:
        shown = [_num(v, ".1%") for v in (rate.primary, rate.candidate)]
        typer.echo(
            f"  {rate.name + ' rate':22}{shown[0]:>14}{shown[1]:>14}   {_p(rate.test.p_value)}"
        )
    judge = report.judge
    if judge is None:
        typer.echo("  judge: no verdicts yet (run with --judge MODEL)")
    else:
        lo, hi = judge.ci
        typer.echo(
            f"  judge: candidate wins {judge.wins}, ties {judge.ties}, loses {judge.losses}; "
            f"preference {judge.preference:.1%} [{lo:.1%}, {hi:.1%}], {_p(judge.p_value)}"
        )
    human = report.human
    if human is not None:
        lo, hi = human.ci
        typer.echo(
            f"  human (blind sample): candidate wins {human.wins}, ties {human.ties}, loses "
            f"{human.losses}; preference {human.preference:.1%} [{lo:.1%}, {hi:.1%}], "
            f"{_p(human.p_value)}"
        )
    if report.judge_human_agreement is not None:
        agreed, both = report.judge_human_agreement
        typer.echo(f"  judge agrees with the human on {agreed} of {both} pairs")
    for gate in report.gates:
        verdict = "PASS" if gate.passed else "FAIL"
        typer.echo(
            f"  gate {gate.metric} at margin {gate.margin:g}: {verdict} (estimate "
            f"{_num(gate.estimate, '+.3f')}, lower bound {_num(gate.lower_bound, '+.3f')}, "
            f"{_p(gate.p_value)}) {gate.reason}".rstrip()
        )


@shadow_app.command("report")
def report(
    candidate: CandidateOpt = None,
    since: SinceOpt = "7d",
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge", help="Judge unjudged pairs first with this model (blind, both orders)."
        ),
    ] = None,
    gate: Annotated[
        bool, typer.Option("--gate", help="Exit 1 unless every candidate is non-inferior.")
    ] = False,
    margin: Annotated[
        float, typer.Option("--margin", min=0.0, max=1.0, help="Non-inferiority margin for --gate.")
    ] = 0.05,
    config: ConfigOpt = None,
    database: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Candidate vs primary on the mirrored requests collected.

    Reads the pairs a gateway with `shadow.rules` stored (it need not be running;
    --judge calls the judge model through the config's deployments). Exit 0 done; 1
    nothing collected, a judge that failed or a gate not passed (an `error:` line says
    which); 2 a wrong command line.

    Example:

    \b
      laneway shadow report --candidate llama-70b --judge gpt-4o --gate --margin 0.05"""
    import asyncio
    from dataclasses import asdict

    from laneway.evals import shadow_report

    start = _since(since)
    failures: list[list[str]] = []
    with errors():
        engine = engine_from(config, database, create=False)
        rows = _rows(engine, start, candidate)
        if judge is not None and rows:
            try:
                _, failures = asyncio.run(_judge(engine, config, judge, rows))
            except KeyboardInterrupt:
                typer.echo(
                    "interrupted; the verdicts so far are saved (run the report again to "
                    "judge the rest)",
                    err=True,
                )
                raise typer.Exit(130) from None
    if not rows:
        with errors():
            raise _no_pairs(engine, start, candidate)
    by_candidate: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_candidate.setdefault(row["candidate"], []).append(row)
    reports = {
        name: shadow_report([_pair(r) for r in group], margin=margin if gate else None)
        for name, group in sorted(by_candidate.items())
    }
    if as_json:
        plain = _plain_json({n: asdict(r) for n, r in reports.items()})
        typer.echo(json.dumps(plain, default=str, indent=2, allow_nan=False))
    else:
        for name, result in reports.items():
            _print(name, result)
    _finish(reports, failures, judge, gate)


def _finish(
    reports: dict[str, ShadowReport], failures: list[list[str]], judge: str | None, gate: bool
) -> None:
    """Exit 1, with an ``error:`` line each, when the judge failed on some pairs (they
    are left unjudged) or a candidate did not pass the gate."""
    code = 0
    if failures:
        from collections import Counter

        counts = Counter(code for errors in failures for code in errors or ["no verdict"])
        codes = ", ".join(f"{code} x{n}" for code, n in counts.most_common())
        typer.echo(
            f"error: judge {judge} failed on {len(failures)} pair(s), left unjudged ({codes}); "
            "run the report again with --judge to retry them",
            err=True,
        )
        code = 1
    for name, result in reports.items():
        if gate and not result.gates:
            typer.echo(
                f"error: --gate: candidate {name} has no judged pair and no pair scored on "
                "both sides; run with --judge MODEL",
                err=True,
            )
        elif gate and not result.passed:
            typer.echo(f"error: --gate: candidate {name} is not shown non-inferior", err=True)
        code = 1 if gate and not result.passed else code
    if code:
        raise typer.Exit(code)


# The (candidate, primary) scores of a verdict: a tie is a good answer on both sides.
_SCORES = {"a": (1.0, 0.0), "b": (0.0, 1.0), "tie": (1.0, 1.0)}


def _judged_pairs(engine: sa.Engine, since: datetime, candidate: str | None) -> list[Any]:
    """The judged pairs, each with the catalog model id of both sides from the ledger:
    the primary request's summary row and the candidate's copy (``mirror_of``). The
    pair itself stores the model ids the upstreams reported, which `router train`'s
    tier mapping (catalog ids) does not name."""
    import sqlalchemy as sa

    from laneway.gateway import SHADOW_PAIRS as P
    from laneway.ledger import LEDGER

    primary, copy = sa.alias(LEDGER, "primary_row"), sa.alias(LEDGER, "copy_row")
    joined = P.outerjoin(
        primary, sa.and_(primary.c.request_id == P.c.request_id, primary.c.attempt == 0)
    ).outerjoin(
        copy,
        sa.and_(
            copy.c.mirror_of == P.c.request_id,
            copy.c.source == "shadow",
            copy.c.deployment == P.c.candidate,
        ),
    )
    cols = (P.c.id, P.c.prompt, P.c.task, P.c.verdict, P.c.primary_deployment, P.c.candidate)
    query = (
        sa.select(
            *cols,
            sa.func.coalesce(primary.c.model_id, P.c.primary_model).label("primary_model"),
            sa.func.coalesce(copy.c.model_id, P.c.candidate_model).label("candidate_model"),
        )
        .select_from(joined)
        .where(P.c.ts >= since, P.c.verdict.is_not(None))
        .order_by(P.c.id)
    )
    if candidate is not None:
        query = query.where(P.c.candidate == candidate)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    # One row per pair (a request mirrored twice to one candidate joins two copies).
    unique: dict[int, Any] = {}
    for row in rows:
        unique.setdefault(row.id, row)
    return list(unique.values())


def _pairs_as_run(rows: list[Any]) -> tuple[LoadedRun, int]:
    """The judged pairs as a run that ``write_outcomes`` reads (a pair is a case that
    two deployments answered, the verdict their scores), and how many pairs compared a
    deployment with itself (a rule's candidate served the request: no outcome)."""
    from laneway.evals import LoadedRun, ResultRow, RunInfo

    cases: list[dict[str, Any]] = []
    results: list[ResultRow] = []
    itself = 0
    for row in rows:
        scores = _SCORES.get(row.verdict)
        if scores is None:
            continue
        if row.candidate == row.primary_deployment:
            itself += 1
            continue
        case_id = f"shadow-{row.id}"
        cases.append({"id": case_id, "messages": row.prompt, "task": row.task})
        sides = (
            (row.candidate, row.candidate_model or row.candidate),
            (row.primary_deployment, row.primary_model or row.primary_deployment or "primary"),
        )
        for (deployment, model), score in zip(sides, scores, strict=True):
            results.append(
                ResultRow(
                    case_id,
                    deployment or "primary",
                    0,
                    None,
                    score > 0,
                    score,
                    deployment=deployment,
                    model_id=model,
                )
            )
    info = RunInfo("shadow", datetime.now(UTC), "complete", {"cases": cases}, "", (), 1, {})
    return LoadedRun(info, tuple(results), ()), itself


@shadow_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Outcome rows (JSONL) for `router train`.")],
    candidate: CandidateOpt = None,
    since: SinceOpt = "30d",
    config: ConfigOpt = None,
    database: DbOpt = None,
) -> None:
    """Judged pairs as outcome rows: {id, messages, task, outcomes: {model: 0/1}}.

    A column is the catalog model id of the deployment (what `router train` maps to
    tiers); a candidate and a primary of one catalog model get a column each,
    MODEL@DEPLOYMENT, and a `note:` line says so. A tie is 1 for both.

    Example: laneway shadow export --out outcomes.jsonl && laneway router train --data
    outcomes.jsonl --out my-router"""
    from laneway.evals import check_output_file, write_outcomes

    start = _since(since)
    with errors():
        check_output_file(out)
        engine = engine_from(config, database, create=False)
        try:
            run, itself = _pairs_as_run(_judged_pairs(engine, start, candidate))
        finally:
            engine.dispose()
        written = write_outcomes(run, out)
    if itself:
        typer.echo(
            f"note: {itself} pair(s) left out: the candidate was the deployment that "
            "answered the request itself",
            err=True,
        )
    for note in written.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {written.rows} outcome rows to {out}")


def _save_review(engine: sa.Engine) -> VerdictSink:
    """Stores a person's choice on its shadow pair (``a`` = the candidate won)."""
    import sqlalchemy as sa

    from laneway.gateway import SHADOW_PAIRS

    def save(item: ReviewItem, winner: str) -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.update(SHADOW_PAIRS)
                .where(SHADOW_PAIRS.c.id == int(item.case_id))
                .values(human_verdict=winner, human_shown_as="b" if item.swapped else "a")
            )

    return save


@shadow_app.command("review")
def review(
    candidate: CandidateOpt = None,
    since: SinceOpt = "7d",
    sample: Annotated[
        int, typer.Option("--sample", min=1, max=10_000, help="Most pairs to show (at random).")
    ] = 50,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the sample.")] = None,
    no_browser: Annotated[
        bool,
        typer.Option("--no-browser", help="Only print the page's URL; do not open a browser."),
    ] = False,
    config: ConfigOpt = None,
    database: DbOpt = None,
) -> None:
    """Blind human review of a sample of shadow pairs (stored; counted in the report)."""
    import contextlib
    import webbrowser

    from laneway.evals import ReviewServer, can_open_browser, shadow_review_items

    start = _since(since)
    with errors():
        engine = engine_from(config, database, create=False)
        try:
            rows = _rows(engine, start, candidate)
            if not rows:
                raise _no_pairs(engine, start, candidate)
            items = shadow_review_items(rows, sample, seed)
            if not items:
                typer.echo("nothing to review (every pair has a verdict, failed or is identical)")
                return
            with ReviewServer(_save_review(engine), items) as server:
                typer.echo(f"review {len(items)} pairs at {server.url}  (Ctrl-C to stop)")
                if not no_browser and can_open_browser():
                    webbrowser.open(server.url)
                with contextlib.suppress(KeyboardInterrupt):
                    while not server.done():
                        server.finished.wait(0.5)
            typer.echo(f"saved {server.saved} of {server.total} verdicts")
        finally:
            engine.dispose()
