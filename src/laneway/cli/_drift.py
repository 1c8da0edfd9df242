"""``laneway drift …``: is a deployment still the model it was? Cron-friendly.

``drift run`` runs a canary suite on a model through the gateway, pins the first complete
run as the baseline and compares every later run with it; ``drift check`` compares a
deployment's recent window of logged traffic with the window before, one source of traffic
at a time (client traffic unless ``--source`` says otherwise: eval, canary and shadow calls
are not the clients' requests); ``drift status`` prints the latest signals (what
``/metrics`` exports as ``laneway_drift_*`` gauges).

Exit codes (the README's rule): 0 no alarm (or a baseline was pinned); 1 a drift alarm,
or the check could not be done (a missing suite or database, an incomplete canary run: one
``error: …`` line on stderr, never a traceback); 2 a wrong command line (an unknown
option, a duration that is not one); 130 interrupted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from laneway.cli._common import ConfigOpt, DbOpt, JsonOpt, console, engine_from, errors, fail
from laneway.cli._eval import quiet_when_cancelled, stopped_by_sigterm

if TYPE_CHECKING:
    import sqlalchemy as sa

    from laneway.evals import CanaryOutcome, DriftReport, Suite
    from laneway.settings import Settings

__all__ = ["drift_app", "register"]

drift_app = typer.Typer(
    help="Drift: catch a model that changed behind a stable name. `run` asks a canary "
    "suite and compares it with the first (pinned) run; `check` compares a deployment's "
    "recent logged traffic with an earlier window of the same kind of traffic; `status` "
    "lists the latest signals. Exit 1 on an alarm.",
    no_args_is_help=True,
)


class _Source(StrEnum):
    """The ledger's traffic sources that ``drift_from_ledger`` compares (a test keeps
    this list equal to the one it validates with)."""

    api = "api"
    shadow = "shadow"
    eval = "eval"


SourceOpt = Annotated[
    _Source,
    typer.Option(
        "--source",
        help="Which traffic to compare, the same in both windows: api = client requests; "
        "shadow = copies a shadow rule sent to this deployment (a candidate that serves "
        "no client yet); eval = `eval run` and `drift run` suite calls (meaningful only "
        "when the same suites ran in both windows).",
    ),
]

AlphaOpt = Annotated[
    float,
    typer.Option(
        min=0.0001,
        max=0.5,
        help="Family-wise significance level: each of the m statistical signals is "
        "tested at alpha/m (Bonferroni).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the ``drift`` command group to ``app``."""
    app.add_typer(drift_app, name="drift")


def _print_report(report: DriftReport, as_json: bool) -> None:
    from rich.table import Table

    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    from laneway.evals import format_p

    compared = f"\n{report.source}" if report.source else ""
    title = f"drift of {report.target}: {report.baseline} -> {report.recent}{compared}"
    table = Table(title=title)
    for col in ("signal", "test", "baseline", "recent", "p", "alarm"):
        table.add_column(col)
    for s in report.signals:
        table.add_row(
            s.signal,
            s.method,
            s.baseline,
            s.recent,
            "–" if s.p_value is None else format_p(s.p_value),
            "ALARM" if s.alarm else "ok",
        )
    console().print(table)
    if report.note:
        typer.echo(report.note)
    names = ", ".join(s.signal for s in report.alarms)
    quiet = "no model id or fingerprint change" if report.note else "no drift"
    typer.echo(f"DRIFT ALARM: {names}" if names else quiet)


@drift_app.command("run")
def run_command(
    suite_ref: Annotated[
        str, typer.Option("--suite", help="Canary suite: a suite file or a packaged suite name.")
    ],
    model: Annotated[
        str, typer.Option(help="The model or deployment name to watch (as clients call it).")
    ],
    repeats: Annotated[
        int, typer.Option(min=1, max=20, help="Times each case is asked, 1-20.")
    ] = 1,
    judge: Annotated[
        str | None,
        typer.Option(
            help="Judge model: compares each answer blind with the baseline's (pinned "
            "reference) answer, in both orders. Default: no judge preference signal."
        ),
    ] = None,
    alpha: AlphaOpt = 0.01,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Calls in flight at once.")] = 4,
    rebaseline: Annotated[
        bool,
        typer.Option(help="Pin this run as the new baseline instead of comparing with the old."),
    ] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Run a canary suite: the first run is the baseline, later ones are compared.

    The calls go through a gateway built in this process from the config (no `laneway
    serve` needs to run).

    Exit 0: no drift (or the baseline was pinned); 1: a drift alarm, an error or an
    incomplete canary run (an `error:` line says which); 2: a wrong command line.

    Example (crontab, hourly):

    \b
      0 * * * * laneway drift run --suite canary.yaml --model gpt-4o --judge claude"""
    from laneway.cli._common import settings_from, suite_from

    settings = settings_from(config)
    suite = suite_from(suite_ref)
    engine = engine_from(config, db)
    try:
        with errors():
            outcome = _canary(
                settings, engine, suite, model, repeats, judge, alpha, concurrency, rebaseline
            )
    finally:
        engine.dispose()
    _finish_canary(outcome, as_json)


def _canary(
    settings: Settings,
    engine: sa.Engine,
    suite: Suite,
    model: str,
    repeats: int,
    judge: str | None,
    alpha: float,
    concurrency: int,
    rebaseline: bool,
) -> CanaryOutcome:
    import asyncio

    from laneway.evals import RunOptions, check_models, check_scorers, run_canary
    from laneway.server import build_gateway

    async def go() -> CanaryOutcome:
        quiet_when_cancelled()
        gateway = build_gateway(settings, engine=engine)
        await gateway.start()
        try:
            check_models(gateway, RunOptions(models=(model,), judge=judge))
            check_scorers(suite)
            return await run_canary(
                gateway,
                engine,
                suite,
                model,
                repeats=repeats,
                judge=judge,
                alpha=alpha,
                concurrency=concurrency,
                rebaseline=rebaseline,
            )
        finally:
            await gateway.aclose()

    # SIGTERM (cron's or systemd's time limit, kill) stops the run as Ctrl-C does: the
    # calls made are saved and the run is marked interrupted. It killed the process at
    # once, without a word, leaving the canary run "running" and up to 32 answers unsaved.
    terminated: list[bool] = []
    try:
        return asyncio.run(stopped_by_sigterm(go(), terminated))
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError) and not terminated:
            raise
        typer.echo(
            f"{'terminated' if terminated else 'interrupted'}: canary run stopped, nothing "
            "compared",
            err=True,
        )
        raise typer.Exit(143 if terminated else 130) from None


def _finish_canary(outcome: CanaryOutcome, as_json: bool) -> None:
    summary = outcome.summary
    if summary.status != "complete":
        codes = ", ".join(f"{c} x{n}" for c, n in sorted(summary.error_codes.items()))
        raise fail(
            f"canary run {outcome.run_id} is incomplete ({summary.errors} failed calls: "
            f"{codes or 'judge failures'}); nothing compared"
        )
    if outcome.report is None:
        message = f"baseline pinned: run {outcome.run_id} ({summary.done} calls)"
        typer.echo(json.dumps({"pinned": outcome.run_id}) if as_json else message)
        return
    _print_report(outcome.report, as_json)
    if outcome.report.alarms:
        raise typer.Exit(1)


@drift_app.command("check")
def check_command(
    deployment: Annotated[
        str, typer.Option(help="The deployment to check: its name in the config.")
    ],
    window: Annotated[
        str, typer.Option(help="The recent window: 1h, 1d, 7d… (ending now).")
    ] = "1d",
    baseline: Annotated[
        str, typer.Option(help="The baseline: this long before the recent window (7d, 30d…).")
    ] = "7d",
    source: SourceOpt = _Source.api,
    alpha: AlphaOpt = 0.01,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Compare a deployment's recent traffic with its baseline window (exit 1 on an alarm).

    Both windows hold one source of traffic (--source, client requests by default), so
    an eval suite or shadow copies in one window are not read as drift. Reads the ledger
    only (no gateway needs to run). Signals: served model id and fingerprint, latency,
    output length, error and content-filter refusal rates; with fewer than 20 calls in
    a window only model id and fingerprint changes are checked. Client traffic is
    gauge target deployment:NAME, other sources deployment:NAME:SOURCE.

    Exit 0: no drift; 1: a drift alarm, or no traffic of that source in a window (the
    error names the sources it has); 2: a wrong command line.

    \b
    Examples:
      laneway drift check --deployment gpt --window 1d --baseline 7d
      laneway drift check --deployment llama-candidate --source shadow"""
    from laneway.errors import LanewayError
    from laneway.evals import drift_from_ledger
    from laneway.ledger import parse_since

    now = datetime.now(UTC)
    spans = []
    for name, text in (("--window", window), ("--baseline", baseline)):
        try:
            # A span ("7d") moves with the reference time; a date ("2026-01-31") does not
            # and is no window length (it used to be taken as "since that date").
            start = parse_since(text, now=now)
            is_span = parse_since(text, now=now - timedelta(days=1)) != start
        except LanewayError:
            is_span = False
        if not is_span or start >= now:
            raise fail(f"{name} {text!r}: give a duration such as 1d, 12h or 90m", 2)
        spans.append(now - start)
    recent_span, base_span = spans
    engine = engine_from(config, db, create=False)
    try:
        with errors():
            report = drift_from_ledger(
                engine,
                deployment,
                window=recent_span,
                baseline=base_span,
                source=source.value,
                alpha=alpha,
                now=now,
            )
    finally:
        engine.dispose()
    _print_report(report, as_json)
    if report.alarms:
        raise typer.Exit(1)


@drift_app.command("status")
def status_command(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """The latest check of every target and signal (exit 1 when any is in alarm).

    Targets: SUITE:MODEL for `drift run`, deployment:NAME for `drift check` of client
    traffic, deployment:NAME:SOURCE for `drift check --source`. The same values are
    the `/metrics` gauges laneway_drift_alarm{target,signal} and laneway_drift_p_value."""
    from laneway.evals import drift_gauges

    engine = engine_from(config, db, create=False)
    try:
        with errors():
            gauges = drift_gauges(engine)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "target": g.target,
                        "signal": g.signal,
                        "alarm": g.alarm,
                        "p_value": g.p_value,
                        "checked_at": g.checked_at.isoformat(),
                    }
                    for g in gauges
                ],
                indent=2,
            )
        )
    elif not gauges:
        typer.echo("no drift check yet (run `laneway drift run` or `laneway drift check`)")
    else:
        from laneway.evals import format_p

        # A header, the p-value, and the time zone of the check (it was unlabelled UTC).
        typer.echo(f"{'target':<32} {'signal':<18} {'state':<6} {'p':<8} checked (UTC)")
        for g in gauges:
            state = "ALARM" if g.alarm else "ok"
            shown = "–" if g.p_value is None else format_p(g.p_value)
            typer.echo(
                f"{g.target:<32} {g.signal:<18} {state:<6} {shown:<8} "
                f"{g.checked_at.astimezone(UTC):%Y-%m-%d %H:%M}"
            )
    if any(g.alarm for g in gauges):
        raise typer.Exit(1)
