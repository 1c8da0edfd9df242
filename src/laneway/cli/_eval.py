"""``laneway eval …``: suites, runs, reports, comparisons, human review, outcomes.

Exit codes: 0 success; 1 ``compare`` found the candidate significantly worse; 2 an error
(a malformed suite, an unknown run, a database problem).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from laneway.errors import LanewayError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from laneway.evals import ModelMetrics, Suite
    from laneway.settings import Settings

__all__ = ["eval_app", "register"]

_EXAMPLE = "_example.yaml"

eval_app = typer.Typer(
    help="Evals: run your own suites against candidate models through the gateway.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="laneway.yaml (default: the usual lookup).")
]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", envvar="LANEWAY_DATABASE_URL", help="Database URL (default: config)."),
]


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command group to ``app``."""
    app.add_typer(eval_app, name="eval")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _settings(config: Path | None) -> Settings:
    from laneway.settings import load_settings

    try:
        return load_settings(config)
    except LanewayError as exc:
        raise _fail(exc.message) from None


def _engine(config: Path | None, db: str | None) -> sa.Engine:
    from laneway.ledger import open_database

    url = db or _settings(config).database.url
    try:
        return open_database(url)
    except LanewayError as exc:
        raise _fail(exc.message) from None


def _suite(ref: str) -> Suite:
    from laneway.evals import load_suite, packaged_suites

    packaged = packaged_suites()
    path = Path(ref)
    if not path.exists() and ref in packaged:
        path = packaged[ref]
    try:
        return load_suite(path)
    except LanewayError as exc:
        raise _fail(exc.message) from None


@eval_app.command("init")
def init_command(
    path: Annotated[Path, typer.Argument(help="Where to write the suite.")] = Path(
        "eval-suite.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example suite to edit."""
    from importlib import resources

    if path.exists() and not force:
        raise _fail(f"{path} exists (use --force to overwrite)")
    text = resources.files("laneway.evals").joinpath("suites", _EXAMPLE).read_text("utf-8")
    path.write_text(text, "utf-8")
    typer.echo(f"wrote {path}; run it with: laneway eval run {path} --models local")


@eval_app.command("suites")
def suites_command() -> None:
    """List the example suites shipped with Laneway."""
    from laneway.evals import load_suite, packaged_suites

    for name, path in sorted(packaged_suites().items()):
        suite = load_suite(path)
        typer.echo(f"{name:<16} {len(suite.cases):>3} cases  {suite.description}")


def _metrics_table(metrics: list[ModelMetrics], title: str) -> Table:
    def pct(v: float | None) -> str:
        return "–" if v is None else f"{v * 100:.1f}%"

    def ms(v: float | None) -> str:
        return "–" if v is None else f"{v:.0f}"

    table = Table(title=title)
    for col in (
        "model",
        "tag",
        "n",
        "err",
        "pass",
        "95% CI",
        "instr",
        "format",
        "pass^k",
        "agree",
        "p50 ms",
        "p95 ms",
        "ttft p50",
        "tok/case",
        "$/case",
        "$/month",
    ):
        table.add_column(col, justify="left" if col in ("model", "tag") else "right")
    for m in metrics:
        k = max(m.pass_hat_k, default=None)
        table.add_row(
            m.model,
            m.tag or "all",
            str(m.attempts),
            str(m.errors),
            pct(m.pass_rate),
            f"{pct(m.pass_ci[0])}–{pct(m.pass_ci[1])}",
            pct(m.instruction_following),
            pct(m.format_adherence),
            "–" if k is None or k < 2 else f"k={k} {pct(m.pass_hat_k[k])}",
            pct(m.agreement),
            ms(m.latency_p50_ms),
            ms(m.latency_p95_ms),
            ms(m.ttft_p50_ms),
            ms(m.tokens_per_case),
            "unknown" if m.cost_per_case_usd is None else f"{m.cost_per_case_usd:.6f}",
            "–" if m.monthly_cost_usd is None else str(m.monthly_cost_usd),
        )
    return table


async def _run_async(
    settings: Settings, engine: sa.Engine, suite: Suite, record: Any, options: Any
) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from laneway.evals import run_suite
    from laneway.server import build_gateway

    gateway = build_gateway(settings, engine=engine)
    await gateway.start()
    pending = len(suite.cases) * options.repeats * len(options.models)
    pending -= len(record.completed_keys())
    try:
        columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn(), transient=False) as progress:
            task = progress.add_task(f"{suite.name}", total=pending)
            return await run_suite(
                gateway, suite, record, options, on_result=lambda _row: progress.advance(task)
            )
    finally:
        await gateway.aclose()


@eval_app.command("run")
def run_command(
    suite_ref: Annotated[str, typer.Argument(metavar="SUITE", help="Suite file or name.")],
    models: Annotated[str, typer.Option(help="Candidates, comma separated.")] = "local",
    repeats: Annotated[int, typer.Option(min=1, max=100)] = 1,
    concurrency: Annotated[int, typer.Option(min=1, max=512)] = 4,
    judge: Annotated[str | None, typer.Option(help="Judge model (rubrics, pairwise).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the JSON export and report here.")] = None,
    resume: Annotated[str | None, typer.Option(help="Resume this run id.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Id for a new run.")] = None,
    retries: Annotated[int, typer.Option(min=0, max=10, help="Harness retries.")] = 2,
    rps_per_provider: Annotated[float | None, typer.Option(min=0.001)] = None,
    tokens_per_day: Annotated[int | None, typer.Option(min=1)] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Run every case on every candidate (resumable: completed cases are not re-run)."""
    from laneway.evals import RunOptions, RunRecord, candidates_from
    from laneway.evals._runner import new_run

    settings = _settings(config)
    suite = _suite(suite_ref)
    engine = _engine(config, db)
    try:
        if resume is not None:
            record = RunRecord(engine, resume)
            info = record.info()
            if info.suite_digest != suite.digest:
                raise _fail(f"run {resume} used a different version of the suite")
            models, repeats = ",".join(info.models), info.repeats
        options = RunOptions(
            models=candidates_from(models),
            repeats=repeats,
            concurrency=concurrency,
            judge=judge,
            retries=retries,
            rps_per_provider=rps_per_provider,
        )
        if resume is None:
            record = new_run(engine, suite, options, run_id)
        typer.echo(
            f"run {record.run_id}: {len(suite.cases)} cases x {len(options.models)} "
            f"models x {repeats} repeats"
        )
        try:
            summary = asyncio.run(_run_async(settings, engine, suite, record, options))
        except KeyboardInterrupt:
            typer.echo(f"interrupted; resume with --resume {record.run_id}", err=True)
            raise typer.Exit(130) from None
        _print_run(record, engine, tokens_per_day, out)
        typer.echo(
            f"status {summary.status}: {summary.done} calls in {summary.wall_s:.1f} s, "
            f"{summary.skipped} already done, {summary.errors} errors"
        )
        if summary.status != "complete":
            typer.echo(f"resume with: laneway eval run {suite_ref} --resume {record.run_id}")
    except LanewayError as exc:
        raise _fail(exc.message) from None
    finally:
        engine.dispose()


def _print_run(
    record: Any, engine: sa.Engine, tokens_per_day: int | None, out: Path | None
) -> None:
    from laneway.evals import compute_metrics, load_run, write_export
    from laneway.evals._report import write_report

    run = load_run(record.run_id, engine)
    metrics = compute_metrics(
        run.results, run.info.suite, run.info.models, tokens_per_day=tokens_per_day
    )
    _console().print(_metrics_table(metrics, f"run {run.info.run_id} ({run.info.status})"))
    if out is not None:
        export = write_export(record, out / f"{record.run_id}.json")
        report = write_report(run, metrics, out / f"{record.run_id}.html")
        typer.echo(f"wrote {export} and {report}")


def _run_metrics(
    run: str, tokens_per_day: int | None, config: Path | None, db: str | None
) -> tuple[Any, Any]:
    """A run (id in the database, or a JSON export) and its metrics; a one-line error."""
    from laneway.evals import compute_metrics, load_run

    engine = None if Path(run).is_file() else _engine(config, db)
    try:
        loaded = load_run(run, engine)
    except LanewayError as exc:
        raise _fail(exc.message) from None
    metrics = compute_metrics(
        loaded.results, loaded.info.suite, loaded.info.models, tokens_per_day=tokens_per_day
    )
    return loaded, metrics


@eval_app.command("show")
def show_command(
    run: Annotated[str, typer.Argument(help="Run id or JSON export.")],
    tokens_per_day: Annotated[int | None, typer.Option(min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Metrics of a run, per model and per tag."""
    from laneway.evals import metrics_to_json

    loaded, metrics = _run_metrics(run, tokens_per_day, config, db)
    if as_json:
        typer.echo(json.dumps(metrics_to_json(metrics), indent=2, default=str))
        return
    _console().print(_metrics_table(metrics, f"run {loaded.info.run_id} ({loaded.info.status})"))


@eval_app.command("report")
def report_command(
    run: Annotated[str, typer.Argument(help="Run id or JSON export.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("eval-report.html"),
    tokens_per_day: Annotated[int | None, typer.Option(min=1)] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Write the HTML report of a run (plots and tables)."""
    from laneway.evals._report import write_report

    loaded, metrics = _run_metrics(run, tokens_per_day, config, db)
    typer.echo(f"wrote {write_report(loaded, metrics, out)}")


@eval_app.command("compare")
def compare_command(
    run_a: Annotated[str, typer.Argument(help="Baseline run (id or JSON export).")],
    run_b: Annotated[str, typer.Argument(help="Candidate run (id or JSON export).")],
    model: Annotated[str | None, typer.Option(help="The candidate to compare.")] = None,
    alpha: Annotated[float, typer.Option(min=0.0001, max=0.5)] = 0.05,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Paired comparison; exit 1 when B is significantly worse than A, 2 on an error."""
    from laneway.evals import compare_runs, load_run

    try:
        needs_db = not (Path(run_a).is_file() and Path(run_b).is_file())
        engine = _engine(config, db) if needs_db else None
        result = compare_runs(
            load_run(run_a, engine), load_run(run_b, engine), model=model, alpha=alpha
        )
    except LanewayError as exc:
        raise _fail(exc.message) from None
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        t = result.test
        typer.echo(
            f"{result.model_a} (A) vs {result.model_b} (B): {t.n} paired cases, "
            f"pass {result.baseline_rate:.1%} -> {result.candidate_rate:.1%}"
        )
        typer.echo(
            f"{t.method}: p = {t.p_value:.4g} (alpha {alpha}); B worse on {t.worse}, "
            f"better on {t.better}"
        )
        for reg in result.regressions:
            typer.echo(f"  regression {reg.case_id}: {reg.baseline:.2f} -> {reg.candidate:.2f}")
        verdict = (
            "SIGNIFICANTLY WORSE" if result.significantly_worse else "no significant regression"
        )
        typer.echo(verdict)
    if result.significantly_worse:
        raise typer.Exit(1)


@eval_app.command("review")
def review_command(
    run: Annotated[str, typer.Argument(help="Run id.")],
    no_browser: Annotated[bool, typer.Option(help="Only print the URL.")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Blind human review: pick A / B / tie in a local web page (saved with the run)."""
    import webbrowser

    from laneway.evals import RunRecord
    from laneway.evals._review import ReviewServer, can_open_browser, review_items

    engine = _engine(config, db)
    record = RunRecord(engine, run)
    try:
        items = review_items(record)
    except LanewayError as exc:
        raise _fail(exc.message) from None
    if not items:
        typer.echo("nothing to review (every pair has a verdict, or fewer than 2 models)")
        return
    with ReviewServer(record, items) as server:
        typer.echo(f"review {len(items)} pairs at {server.url}  (Ctrl-C to stop)")
        if not no_browser and can_open_browser():
            webbrowser.open(server.url)
        with contextlib.suppress(KeyboardInterrupt):
            while not server.finished.wait(0.5):
                continue
    typer.echo(f"saved {server.saved} of {server.total} verdicts")


@eval_app.command("from-ledger")
def from_ledger_command(
    sample: Annotated[int, typer.Option(min=1, max=100_000)] = 300,
    where: Annotated[list[str] | None, typer.Option(help="FIELD=VALUE (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="Suite file to write.")] = Path("ledger-suite.yaml"),
    seed: Annotated[int, typer.Option()] = 0,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """A suite from logged traffic (prompt-logged, non-sensitive, non-eval requests)."""
    import yaml

    from laneway.evals import suite_from_ledger

    engine = _engine(config, db)
    try:
        data = suite_from_ledger(engine, sample=sample, where=where or (), seed=seed, name=out.stem)
    except LanewayError as exc:
        raise _fail(exc.message) from None
    finally:
        engine.dispose()
    if not data["cases"]:
        raise _fail("no usable requests: prompt logging must be on for the keys you sample")
    out.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
    typer.echo(f"wrote {len(data['cases'])} cases to {out}")


@eval_app.command("export-outcomes")
def export_outcomes_command(
    run: Annotated[str, typer.Argument(help="Run id or JSON export.")],
    out: Annotated[Path, typer.Option(help="JSONL file for `laneway router train`.")] = Path(
        "outcomes.jsonl"
    ),
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Per-prompt outcomes in the router's training format."""
    from laneway.evals import load_run, write_outcomes

    engine = None if Path(run).is_file() else _engine(config, db)
    try:
        count = write_outcomes(load_run(run, engine), out)
    except LanewayError as exc:
        raise _fail(exc.message) from None
    typer.echo(f"wrote {count} prompts to {out}")
