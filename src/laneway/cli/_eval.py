"""``laneway eval …``: suites, runs, reports, comparisons, human review, outcomes.

Exit codes (the README's rule): 0 success; 1 the work could not be done or a gate failed
(a malformed suite, an unknown or taken run id, a bad path, a database problem, a scorer
or judge that failed, a run left incomplete; ``compare``: the candidate is significantly
worse; ``run --min-pass``: a candidate's pass rate is below the threshold); 2 a wrong
command line (an unknown option, a run id or model list that cannot be one, ``--resume``
with ``--run-id``); errors are ``error: …`` lines on stderr, never a traceback; 130
interrupted (Ctrl-C; the run can be resumed).

``--out`` of ``run`` is a directory (``RUN_ID.json`` and ``RUN_ID.html`` are written in
it; it is created if missing, its parent is not); ``--out`` of ``report``,
``from-ledger`` and ``export-outcomes`` is a file whose directory must exist. Files are
written whole or not at all. The database is ``--database`` (alias ``--db``), else
``$LANEWAY_DATABASE_URL``, else the config's ``database.url``; commands that only read
never create a database file.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from laneway.cli._common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    TokensPerDayOpt,
    console,
    engine_from,
    errors,
    fail,
    out_dir,
    out_file,
    settings_from,
    suite_from,
)
from laneway.cli._eval_output import finish_run, metrics_table, print_bias, print_comparison

if TYPE_CHECKING:
    import sqlalchemy as sa

    from laneway.evals import ModelMetrics, RunOptions, RunRecord, RunSummary, Suite
    from laneway.settings import Settings

__all__ = ["eval_app", "quiet_when_cancelled", "register", "stopped_by_sigterm"]

_EXAMPLE = "_example.yaml"
_T = TypeVar("_T")

eval_app = typer.Typer(
    help="Evals: run your own suites against candidate models through the gateway.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command group to ``app``."""
    app.add_typer(eval_app, name="eval")


@eval_app.command("init")
def init_command(
    path: Annotated[
        Path, typer.Argument(help="Suite file to write; its directory must exist.")
    ] = Path("eval-suite.yaml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example suite to edit."""
    import shlex
    from importlib import resources

    from laneway.evals import write_atomic

    if path.exists() and not path.is_dir() and not force:
        raise fail(f"{path} exists (use --force to overwrite)")
    out_file(path)
    text = resources.files("laneway.evals").joinpath("suites", _EXAMPLE).read_text("utf-8")
    # The header's "Run it with:" names the file written, not the default name.
    shown = shlex.quote(str(path))
    text = text.replace("laneway eval run eval-suite.yaml", f"laneway eval run {shown}", 1)
    with errors():
        write_atomic(path, text.encode("utf-8"))
    typer.echo(f"wrote {path}; run it with: laneway eval run {shown} --models local")


@eval_app.command("suites")
def suites_command() -> None:
    """List the example suites shipped with Laneway."""
    from laneway.evals import load_suite, packaged_suites

    for name, path in sorted(packaged_suites().items()):
        suite = load_suite(path)
        typer.echo(f"{name:<16} {len(suite.cases):>3} cases  {suite.description}")


def quiet_when_cancelled() -> None:
    """From now on in this event loop, drop the errors callbacks and tasks report while
    the main task is being cancelled (Ctrl-C): a model's worker thread finishing after
    its request was cancelled must not print a traceback per token before the one
    friendly line. Errors before that are reported as usual."""
    import asyncio

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if main is not None and (main.cancelling() or main.done()):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def _run_async(
    settings: Settings,
    engine: sa.Engine,
    suite: Suite,
    options: RunOptions,
    start: Callable[[], RunRecord],
) -> tuple[RunRecord, RunSummary]:
    """Check the candidates and scorers, then ``start()`` (creates the run row) and run
    it, with progress on a terminal or as plain lines (CI logs)."""
    from laneway.evals import RunProgress, check_models, check_scorers, run_suite
    from laneway.server import build_gateway

    quiet_when_cancelled()
    check_scorers(suite)
    gateway = build_gateway(settings, engine=engine)
    await gateway.start()
    try:
        check_models(gateway, options)
        record = start()
        pending = len(suite.cases) * options.repeats * len(options.models)
        pending -= len(record.completed_keys())
        with RunProgress(suite.name, pending) as progress:
            summary = await run_suite(
                gateway,
                suite,
                record,
                options,
                on_result=lambda row: progress.answer(row.error_code is not None),
                on_pair=progress.pair,
            )
        return record, summary
    finally:
        await gateway.aclose()


def _planned_id(resume: str | None, run_id: str | None) -> str:
    from laneway.evals import check_run_id, new_run_id

    if resume is not None and run_id is not None:
        raise fail("give --resume ID to continue a run or --run-id ID for a new one, not both", 2)
    with errors(2):
        if resume is not None:
            return check_run_id(resume)
        return new_run_id() if run_id is None else check_run_id(run_id)


_RUN_OUT_HELP = (
    "Directory for the run's artefacts: writes DIR/RUN_ID.json (the export) and "
    "DIR/RUN_ID.html (the report). DIR is created if missing, its parent is not. "
    "Default: write no files (the run is in the database)."
)


_SuiteRefArg = Annotated[
    str,
    typer.Argument(
        metavar="SUITE",
        help="Suite file (YAML, or JSONL of cases), or a packaged suite's name "
        "(see `laneway eval suites`).",
    ),
]

_ModelsOpt = Annotated[
    str,
    typer.Option(
        help="Candidates, comma separated: deployment or model names from the config, "
        "tier:NAME or auto. With --resume, the run's own (others are an error)."
    ),
]

_RepeatsOpt = Annotated[
    int,
    typer.Option(
        min=1,
        max=100,
        help="Times each case is asked of each candidate, 1-100; 2 or more measures "
        "consistency (pass^k, agreement). With --resume, the run's own (another is an "
        "error).",
    ),
]

_ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=512,
        help="Calls in flight at once, all candidates together (default: 4; with --resume, "
        "the run's own).",
    ),
]

_JudgeOpt = Annotated[
    str | None,
    typer.Option(
        help="Judge model: grades rubric cases and compares candidates pairwise "
        "(default: none; rubrics are not graded)."
    ),
]

_OutOpt = Annotated[Path | None, typer.Option(metavar="DIR", help=_RUN_OUT_HELP)]

_ResumeOpt = Annotated[
    str | None,
    typer.Option(
        metavar="RUN_ID",
        help="Continue this run: completed calls are kept, failed or missing ones are "
        "made (the suite must be unchanged). The run keeps the options it was started "
        "with (--models, --repeats, --judge, --concurrency, --retries, --rps-per-provider, "
        "--min-pass, --tokens-per-day, --out); an option given again overrides its value, "
        "except --models and --repeats.",
    ),
]

_RunIdOpt = Annotated[
    str | None,
    typer.Option(
        help="Id for a new run, not yet used: 1-64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit (default: UTC time stamp + random hex)."
    ),
]

_RetriesOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=10,
        help="Extra attempts per call on transient errors (rate limits, timeouts, "
        "5xx), after the gateway's own retries; waits 0.5 s, 1 s, 2 s... between them "
        "(default: 2; with --resume, the run's own).",
    ),
]

_RpsPerProviderOpt = Annotated[
    float | None,
    typer.Option(
        min=0.001,
        help="Most calls started per second to each provider, e.g. 0.5 = one every "
        "2 s (default: no limit).",
    ),
]


_MinPassOpt = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        metavar="RATE",
        help="Gate: exit 1 unless every candidate's pass rate is at least RATE (0-1, "
        "e.g. 0.8); a candidate with no scored case fails the gate. Default: no gate.",
    ),
]


# What a resumed run keeps from the command line it was started with, besides the
# options stored in RunOptions (stored with the run under these names).
_KEPT = ("min_pass", "tokens_per_day", "out")


def _resume_hint(ctx: typer.Context, suite_ref: str, run_id: str) -> str:
    """The command that resumes ``run_id``: the run keeps its own options; the config
    and the database given on this command line are needed to find it again."""
    import shlex

    words = ["laneway", "eval", "run", suite_ref, "--resume", run_id]
    if ctx.params.get("config") is not None:
        words += ["--config", str(ctx.params["config"])]
    source = ctx.get_parameter_source("db")
    if source is not None and source.name == "COMMANDLINE":  # not from the environment
        words += ["--database", str(ctx.params["db"])]
    return shlex.join(words)


def _merged(ctx: typer.Context, stored: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Each option as given on this command line, else as the resumed run stored it
    (``stored``: empty for a new run), else its default."""
    merged = {}
    for name, default in defaults.items():
        given = ctx.params.get(name)
        merged[name] = given if given is not None else stored.get(name, default)
    return merged


@eval_app.command("run")
def run_command(
    ctx: typer.Context,
    suite_ref: _SuiteRefArg,
    models: _ModelsOpt = "local",
    repeats: _RepeatsOpt = 1,
    concurrency: _ConcurrencyOpt = None,
    judge: _JudgeOpt = None,
    out: _OutOpt = None,
    resume: _ResumeOpt = None,
    run_id: _RunIdOpt = None,
    retries: _RetriesOpt = None,
    rps_per_provider: _RpsPerProviderOpt = None,
    min_pass: _MinPassOpt = None,
    tokens_per_day: TokensPerDayOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Run every case on every candidate (resumable: completed cases are not re-run).

    The calls go through a gateway built in this process from the config (no `laneway
    serve` needs to run); candidates behind an API need their keys and the network.

    Exit 0 when the run completed (and passed --min-pass); 1 when a candidate is below
    --min-pass, the run is incomplete or an error stopped it; 130 on Ctrl-C, 143 on
    SIGTERM (both save the calls made and print the resume command).

    Examples:

    \b
      laneway eval run basics --models local,tier:standard --repeats 3 --out evals
      laneway eval run my-suite.yaml --models gpt-4o --judge claude --min-pass 0.8
      laneway eval run my-suite.yaml --resume RUN_ID"""
    from laneway.evals import RunOptions, RunRecord, candidates_from, new_run

    the_id = _planned_id(resume, run_id)
    if out is not None:
        out_dir(out)
    settings = settings_from(config)
    with errors(2):
        candidates_from(models)
    suite = suite_from(suite_ref)
    engine = engine_from(config, db)
    hint = _resume_hint(ctx, suite_ref, the_id)
    try:
        with errors():
            record = RunRecord(engine, the_id)
            models, repeats, stored = _run_plan(ctx, record, suite, resume)
            run = _merged(
                ctx,
                stored,
                {"concurrency": 4, "judge": None, "retries": 2, "rps_per_provider": None},
            )
            kept = _merged(ctx, stored, dict.fromkeys(_KEPT))
            if kept["out"] is not None:
                kept["out"] = str(out_dir(Path(kept["out"])).absolute())
            options = RunOptions(models=candidates_from(models), repeats=repeats, **run)

            def start() -> RunRecord:
                started = record
                if resume is None:
                    started = new_run(engine, suite, options, the_id, extra=kept)
                judged = f", judge {options.judge}" if options.judge else ""
                typer.echo(
                    f"run {the_id}: {len(suite.cases)} cases x {len(options.models)} "
                    f"models x {options.repeats} repeats{judged}"
                )
                return started

            summary = _execute(settings, engine, suite, options, record, start, hint)
            written_to = out if out is not None or kept["out"] is None else Path(kept["out"])
            metrics = _print_run(record, engine, kept["tokens_per_day"], written_to)
        finish_run(summary, hint, the_id, metrics, kept["min_pass"])
    finally:
        engine.dispose()


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _run_plan(
    ctx: typer.Context, record: RunRecord, suite: Suite, resume: str | None
) -> tuple[str, int, dict[str, Any]]:
    """The models, repeats and stored options of the run being resumed (its suite must be
    the same version; --models and --repeats, when given, its own: they used to be
    ignored without a word), else those given and none; a new run's id must be free."""
    from laneway.evals import candidates_from, run_exists_message

    models: str = ctx.params["models"]
    repeats: int = ctx.params["repeats"]
    if resume is not None:
        info = record.info()
        if info.suite_digest != suite.digest:
            raise fail(f"run {resume} used a different version of the suite")
        run_models = ",".join(info.models)
        if _given(ctx, "models") and set(candidates_from(models)) != set(info.models):
            raise fail(
                f"run {resume} has candidates {run_models}, not {models}: a resumed run "
                "keeps its candidates (start a new run for others)",
                2,
            )
        if _given(ctx, "repeats") and repeats != info.repeats:
            raise fail(
                f"run {resume} has {info.repeats} repeats, not {repeats}: a resumed run "
                "keeps its repeats (start a new run for others)",
                2,
            )
        return run_models, info.repeats, info.config
    if record.exists():
        raise fail(run_exists_message(record.run_id))
    return models, repeats, {}


def _execute(
    settings: Settings,
    engine: sa.Engine,
    suite: Suite,
    options: RunOptions,
    record: RunRecord,
    start: Callable[[], RunRecord],
    resume_hint: str,
) -> RunSummary:
    import asyncio  # here, not at the top: `laneway --help` starts faster

    terminated: list[bool] = []
    try:
        run = _run_async(settings, engine, suite, options, start)
        _, summary = asyncio.run(stopped_by_sigterm(run, terminated))
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError) and not terminated:
            raise
        hint = f"; resume with: {resume_hint}" if record.exists() else ""
        typer.echo(f"{'terminated' if terminated else 'interrupted'}{hint}", err=True)
        raise typer.Exit(143 if terminated else 130) from None
    return summary


async def stopped_by_sigterm(work: Awaitable[_T], terminated: list[bool]) -> _T:
    """``work``, stopped on SIGTERM (a CI job cancelled, ``timeout``, ``kill``) the way
    Ctrl-C stops it: the calls done are saved and the run can be resumed. SIGTERM used to
    kill the process at once, losing the answers not yet written (up to a batch of 32)
    and leaving the run "running"."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def stop() -> None:
        terminated.append(True)
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, stop)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
        return await work
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _print_run(
    record: RunRecord, engine: sa.Engine, tokens_per_day: int | None, out: Path | None
) -> list[ModelMetrics]:
    from laneway.evals import compute_metrics, load_run, write_export, write_report

    run = load_run(record.run_id, engine)
    metrics = compute_metrics(
        run.results, run.info.suite, run.info.models, tokens_per_day=tokens_per_day
    )
    console().print(metrics_table(metrics, f"run {run.info.run_id} ({run.info.status})"))
    print_bias(run.pairs)
    if out is not None:
        out.mkdir(exist_ok=True)
        export = write_export(record, out / f"{record.run_id}.json")
        report = write_report(run, metrics, out / f"{record.run_id}.html")
        typer.echo(f"wrote {export} and {report}")
    return metrics


@contextlib.contextmanager
def _reading(config: Path | None, db: str | None, *refs: str) -> Iterator[sa.Engine | None]:
    """The database to read runs from (``None`` when every ref is a JSON export file);
    never creates a database file; errors as one line."""
    if all(Path(ref).is_file() or Path(ref).suffix == ".json" for ref in refs):
        with errors():
            yield None
        return
    engine = engine_from(config, db, create=False)
    try:
        with errors():
            yield engine
    finally:
        engine.dispose()


def _run_metrics(
    run: str, tokens_per_day: int | None, config: Path | None, db: str | None
) -> tuple[Any, Any]:
    """A run (id in the database, or a JSON export) and its metrics; a one-line error."""
    from laneway.evals import compute_metrics, load_run

    with _reading(config, db, run) as engine:
        loaded = load_run(run, engine)
    metrics = compute_metrics(
        loaded.results, loaded.info.suite, loaded.info.models, tokens_per_day=tokens_per_day
    )
    return loaded, metrics


RunRef = Annotated[str, typer.Argument(metavar="RUN", help="Run id, or a run's JSON export.")]


@eval_app.command("show")
def show_command(
    run: RunRef,
    tokens_per_day: TokensPerDayOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Metrics of a run, per model and per tag.

    Example: laneway eval show RUN_ID --tokens-per-day 5000000 --json"""
    from laneway.evals import metrics_to_json

    loaded, metrics = _run_metrics(run, tokens_per_day, config, db)
    if as_json:
        typer.echo(json.dumps(metrics_to_json(metrics), indent=2, default=str))
        return
    console().print(metrics_table(metrics, f"run {loaded.info.run_id} ({loaded.info.status})"))
    print_bias(loaded.pairs)


@eval_app.command("report")
def report_command(
    run: RunRef,
    out: Annotated[
        Path,
        typer.Option(
            metavar="FILE",
            help="HTML file to write (replaced if it exists; its directory must exist).",
        ),
    ] = Path("eval-report.html"),
    tokens_per_day: TokensPerDayOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Write the HTML report of a run (plots and tables)."""
    from laneway.evals import write_report

    out_file(out)
    loaded, metrics = _run_metrics(run, tokens_per_day, config, db)
    with errors():
        typer.echo(f"wrote {write_report(loaded, metrics, out)}")


@eval_app.command("compare")
def compare_command(
    run_a: Annotated[str, typer.Argument(help="Baseline run (id or JSON export).")],
    run_b: Annotated[
        str | None,
        typer.Argument(
            help="Candidate run (id or JSON export); default: RUN_A itself, to compare "
            "two of its candidates (--model-a, --model-b)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="The candidate to compare, in both runs (default: the one they share, "
            "or each run's only one)."
        ),
    ] = None,
    model_a: Annotated[
        str | None, typer.Option(help="The baseline candidate in run A (overrides --model).")
    ] = None,
    model_b: Annotated[
        str | None, typer.Option(help="The candidate in run B (overrides --model).")
    ] = None,
    alpha: Annotated[
        float,
        typer.Option(
            min=0.0001,
            max=0.5,
            help="Significance level, 0.0001-0.5: B is significantly worse when the paired "
            "test over cases gives p < alpha and B's mean is lower.",
        ),
    ] = 0.05,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the comparison as JSON instead of text.")
    ] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Paired comparison over cases; exit 1 when B is significantly worse than A or the
    comparison cannot be made (an unknown run or model, no case in common), 2 for a
    wrong command line. An incomplete run is flagged on stderr.

    Examples:

    \b
      laneway eval compare RUN_A RUN_B            two runs, each of one model
      laneway eval compare RUN --model-a gpt-4o --model-b local
      laneway eval compare old.json new.json      two runs' JSON exports"""
    from laneway.evals import compare_runs, load_run

    refs = (run_a,) if run_b is None else (run_a, run_b)
    with _reading(config, db, *refs) as engine:
        first = load_run(run_a, engine)
        second = first if run_b is None else load_run(run_b, engine)
        result = compare_runs(
            first, second, model=model, model_a=model_a, model_b=model_b, alpha=alpha
        )
    for warning in result.incomplete:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        print_comparison(result)
    if result.significantly_worse:
        raise typer.Exit(1)


@eval_app.command("review")
def review_command(
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id (in the database).")],
    no_browser: Annotated[
        bool,
        typer.Option("--no-browser", help="Only print the page's URL; do not open a browser."),
    ] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Blind human review: pick A / B / tie in a local web page (saved with the run)."""
    import webbrowser

    from laneway.evals import ReviewServer, RunRecord, can_open_browser, review_items

    engine = engine_from(config, db, create=False)
    try:
        with errors():
            record = RunRecord(engine, run)
            models = record.info().models
            if len(models) < 2:
                raise fail(
                    f"run {run} has one model ({', '.join(models)}): a blind review compares "
                    "two; run the suite with --models A,B"
                )
            items = review_items(record)
            if not items:
                typer.echo("nothing to review (every pair has a verdict)")
                return
            with ReviewServer(record, items) as server:
                typer.echo(f"review {len(items)} pairs at {server.url}  (Ctrl-C to stop)")
                if not no_browser and can_open_browser():
                    webbrowser.open(server.url)
                with contextlib.suppress(KeyboardInterrupt):
                    while not server.done():
                        server.finished.wait(0.5)
            typer.echo(f"saved {server.saved} of {server.total} verdicts")
    finally:
        engine.dispose()


@eval_app.command("from-ledger")
def from_ledger_command(
    sample: Annotated[
        int,
        typer.Option(
            min=1,
            max=100_000,
            help="Most cases to take, 1-100000 (distinct prompts drawn at random).",
        ),
    ] = 300,
    where: Annotated[
        list[str] | None,
        typer.Option(
            help="FIELD=VALUE filter, repeatable (all must hold); FIELD is deployment, "
            "model, tier, key, requested_model or since (e.g. since=7d)."
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            metavar="FILE",
            help="Suite file to write (replaced if it exists; its directory must exist); "
            "its name is the suite's name.",
        ),
    ] = Path("ledger-suite.yaml"),
    seed: Annotated[
        int, typer.Option(help="Random seed of the sample: the same seed, the same cases.")
    ] = 0,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """A suite from logged client traffic (prompt-logged, non-sensitive requests; eval,
    canary and shadow calls left out)."""
    import orjson
    import yaml

    from laneway.evals import MAX_SUITE_BYTES, check_where, suite_from_ledger, write_atomic

    with errors(2):  # a filter that cannot be one is a wrong command line
        check_where(where or ())
    out_file(out)
    engine = engine_from(config, db, create=False)
    try:
        with errors():
            data = suite_from_ledger(
                engine, sample=sample, where=where or (), seed=seed, name=out.stem
            )
    finally:
        engine.dispose()
    if not data["cases"]:
        raise fail("no usable requests: prompt logging must be on for the keys you sample")
    n = len(data["cases"])
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")
    if len(text) <= MAX_SUITE_BYTES:
        with errors():
            write_atomic(out, text)
        typer.echo(f"wrote {n} cases to {out}")
        return
    # Too large for a YAML suite (eval run would refuse it): the cases go to a JSONL file
    # beside it, which the suite names (cases_file) and which is read a line at a time.
    cases_path = out.with_name(f"{out.stem}.cases.jsonl")
    lines = b"".join(orjson.dumps(c) + b"\n" for c in data["cases"])
    head = {**{k: v for k, v in data.items() if k != "cases"}, "cases_file": cases_path.name}
    with errors():
        write_atomic(cases_path, lines)
        write_atomic(out, yaml.safe_dump(head, sort_keys=False, allow_unicode=True).encode())
    typer.echo(f"wrote {n} cases to {cases_path} and the suite naming them to {out}")


@eval_app.command("export-outcomes")
def export_outcomes_command(
    run: RunRef,
    out: Annotated[
        Path,
        typer.Option(
            metavar="FILE",
            help="JSONL file for `laneway router train` (replaced if it exists; its "
            "directory must exist).",
        ),
    ] = Path("outcomes.jsonl"),
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Per-prompt outcomes in the router's training format.

    A column is the catalog model id of the deployment that answered (what `laneway
    router train` maps to tiers). Two deployments of one model in the run get a column
    each, MODEL@DEPLOYMENT, and a `note:` line says so (one column would mix them)."""
    from laneway.evals import load_run, write_outcomes

    out_file(out)
    with _reading(config, db, run) as engine:
        written = write_outcomes(load_run(run, engine), out)
    for note in written.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {written.rows} prompts to {out}")
