"""``laneway route`` and the ``laneway router`` group: score, train, promote, calibrate,
eval, report."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from laneway.errors import InvalidRequest, LanewayError

if TYPE_CHECKING:
    from laneway.router import RouteDecision, Scorer

# numpy and the router are imported by the commands that use them: `laneway --help`
# and the other commands start without them (tests/cli/test_startup.py).

__all__ = ["register"]

RouterDir = Annotated[
    Path | None,
    typer.Option(
        "--router",
        help="Router directory (default: the active router in the user's state directory, "
        "else the shipped one).",
    ),
]
TaskOpt = Annotated[
    str | None,
    typer.Option(help="Task name: per-task effects learned from outcomes (unseen: text only)."),
]
ConfigPath = Annotated[
    Path | None, typer.Option("--config", "-c", help="laneway.yaml (default: the usual lookup).")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(envvar="LANEWAY_DATABASE_URL", help="Ledger database URL (default: config)."),
]


def _fail(exc: LanewayError) -> typer.Exit:
    """The work could not be done (config, file, database, unknown name): exit 1."""
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(1)


def _decision_dict(d: RouteDecision) -> dict[str, Any]:
    return {
        "tier": d.tier,
        "score": round(d.score, 6),
        "difficulty": round(d.difficulty, 6),
        "estimates": {t: round(v, 6) for t, v in d.estimates.items()},
        "reason": d.reason,
        "profile": d.profile,
        "task": d.task,
        "task_known": d.task_known,
    }


def route_command(
    prompt: Annotated[str, typer.Argument(help="The prompt to route.")],
    profile: Annotated[str | None, typer.Option(help="Routing profile (auto:NAME).")] = None,
    task: TaskOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    router: RouterDir = None,
) -> None:
    """Route one prompt: tier, gain of escalating, difficulty, per-tier estimates, reason."""
    from laneway.router import conversation_from_prompt, load_router

    try:
        decision = load_router(router).route_conversation(
            conversation_from_prompt(prompt), profile, task
        )
    except LanewayError as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(_decision_dict(decision)))
        return
    typer.echo(
        f"tier: {decision.tier}  (profile {decision.profile}, gain {decision.score:.3f}, "
        f"difficulty {decision.difficulty:.3f})"
    )
    for tier, value in decision.estimates.items():
        typer.echo(f"  {tier:10s} P(good answer) = {value:.3f}")
    typer.echo(f"reason: {decision.reason}")


def score_command(
    input_path: Annotated[
        Path,
        typer.Option(
            "--input",
            help="JSONL: prompt or messages, and optionally id, task and the cheap model's answer.",
        ),
    ],
    output: Annotated[Path, typer.Option("--output", help="JSONL written in input order.")],
    profile: Annotated[str | None, typer.Option(help="Routing profile.")] = None,
    router: RouterDir = None,
) -> None:
    """Score a file of prompts: gain score, difficulty, tier; with "answer", the
    verifier's escalation probability. Unreadable lines yield {"id", "error"}."""
    from laneway.router import load_router

    try:
        loaded = load_router(router)
        loaded.profile(profile)
    except LanewayError as exc:
        raise _fail(exc) from exc
    try:
        written, errors, unjudged = _score_file(loaded, input_path, output, profile)
    except LanewayError as exc:
        raise _fail(exc) from exc
    typer.echo(f"scored {written - errors} line(s), {errors} error(s) → {output}", err=True)
    if unjudged:
        typer.echo(
            f'note: {unjudged} answer(s) not judged ("escalation": null): the router has '
            'no answer verifier (train one on rows with "answers")',
            err=True,
        )


def _score_file(
    loaded: Any, input_path: Path, output: Path, profile: str | None
) -> tuple[int, int, int]:
    """Write one output line per input line; returns (lines written, error lines,
    answers the router had no verifier to judge)."""
    from laneway.router import iter_jsonl

    written = errors = unjudged = 0
    lines = iter_jsonl(input_path)
    first = next(lines, None)  # an unreadable input fails before the output is created
    try:
        # backslashreplace: a lone surrogate read from the input ("\ud83d" cut from an
        # emoji) is written as the same JSON escape, never a UnicodeEncodeError mid-file.
        out = output.open("w", encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        raise InvalidRequest(f"cannot write {output}: {exc.strerror or exc}") from exc
    with out:
        for number, line in itertools.chain([first] if first else [], lines):
            record: Any = None
            try:
                record = json.loads(line)
                body = _score_record(loaded, record, profile)
            except (ValueError, LanewayError) as exc:
                message = exc.message if isinstance(exc, LanewayError) else str(exc)
                body = {"error": f"line {number}: {message}"}
                errors += 1
            unjudged += "escalation" in body and body["escalation"] is None
            row_id = record.get("id") if isinstance(record, dict) else None
            out.write(json.dumps({"id": row_id, **body}, ensure_ascii=False) + "\n")
            written += 1
    return written, errors, unjudged


def _score_record(loaded: Any, record: Any, profile: str | None) -> dict[str, Any]:
    from laneway.router import conversation_of

    conv = conversation_of(record)
    task = record.get("task")
    if task is not None and not isinstance(task, str):
        raise InvalidRequest("'task' must be a string")
    body = _decision_dict(loaded.route_conversation(conv, profile, task))
    answer = record.get("answer")
    if answer is not None:
        if not isinstance(answer, str):
            raise InvalidRequest("'answer' must be a string")
        verifier = loaded.scorer.verifier
        if verifier is None:
            body["escalation"] = None
        else:
            verdict = verifier.judge(conv, answer, task)
            body["escalation"] = round(verdict.escalation, 6)
            body["answer_ok"] = round(verdict.answer_ok, 6)
    return body


def _tier_costs(spec: str | None, scorer: Scorer) -> dict[str, Decimal] | None:
    if spec is None:
        return None
    costs: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        tier, _, value = part.partition("=")
        try:
            costs[tier.strip()] = Decimal(value.strip())
        except InvalidOperation as exc:
            raise typer.BadParameter(f"bad cost {part!r}") from exc
    unknown = set(costs) - set(scorer.tiers)
    if unknown:
        raise typer.BadParameter(f"unknown tier(s) in --tier-costs: {', '.join(sorted(unknown))}")
    return costs


MIN_LEDGER_PROMPTS = 50


def _ledger_engine(database: str | None, settings: Any) -> Any:
    """The ledger engine, or None when there is no ledger to read."""
    from laneway.ledger import open_database, pending_migrations

    try:
        engine = open_database(database or settings.database.url, create=False, migrate=False)
    except LanewayError:
        return None
    if pending_migrations(engine):
        engine.dispose()
        return None
    return engine


def _default_rows(engine: Any, directory: Path) -> tuple[list[dict[str, Any]], str]:
    """Logged prompts from the ledger when there are enough, else the shipped set."""
    from laneway.router import calibration_rows, default_calibration_path, ledger_prompt_rows

    rows = ledger_prompt_rows(engine) if engine is not None else []
    if len(rows) >= MIN_LEDGER_PROMPTS:
        return rows, f"{len(rows)} prompt(s) logged in the ledger"
    path = default_calibration_path(directory)
    return calibration_rows(path), str(path)


def _config_costs(engine: Any, settings: Any, scorer: Scorer) -> dict[str, Decimal]:
    from laneway.catalog import default_catalog
    from laneway.router import ledger_tokens_per_request, tier_costs

    tokens = ledger_tokens_per_request(engine) if engine is not None else None
    if tokens is None:
        raise typer.BadParameter(
            "--max-cost-per-1k-requests without --tier-costs needs a ledger with traffic "
            "(for tokens per request)"
        )
    costs = tier_costs(settings, default_catalog(), scorer.tiers, tokens)
    missing = [t for t, c in costs.items() if c is None and t in settings.tiers]
    if missing:
        raise typer.BadParameter(f"no known price for tier(s) {', '.join(missing)}: "
                                 "give --tier-costs")  # fmt: skip
    return {t: c for t, c in costs.items() if c is not None}


def calibrate_command(
    profile: Annotated[
        str,
        typer.Option(
            help="Profile name: written to profiles/NAME.json of --router, else of the active "
            "router in the user's state directory (never into the installed package)."
        ),
    ],
    target_strong_share: Annotated[
        float | None,
        typer.Option(help="Largest share of requests sent to the strongest tier, 0-1."),
    ] = None,
    quality_floor: Annotated[
        float | None, typer.Option(help="Fraction of the all-strongest-tier quality, 0-1.")
    ] = None,
    max_cost_per_1k_requests: Annotated[
        str | None, typer.Option(help="USD per 1,000 requests the routing may cost at most.")
    ] = None,
    tier_costs: Annotated[
        str | None,
        typer.Option(
            help="USD per 1,000 requests per tier: 'simple=0.2,...' (default: the "
            "config's prices at the ledger's tokens per request)."
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Prompts or outcomes JSONL (default: the ledger's logged prompts, "
            "else the shipped set)."
        ),
    ] = None,
    router: RouterDir = None,
    database: DatabaseUrl = None,
    config: ConfigPath = None,
) -> None:
    """Calibrate a routing profile on a calibration set; `auto:NAME` then uses it."""
    from laneway.router import (
        Goal,
        calibrate_router,
        calibration_rows,
        check_profile_name,
        ensure_active_router,
        load_router,
    )
    from laneway.settings import load_settings

    _check_goal(target_strong_share, quality_floor, max_cost_per_1k_requests)
    engine: Any = None
    try:
        check_profile_name(profile)
        directory = router if router is not None else ensure_active_router()
        scorer = load_router(directory).scorer
        settings = load_settings(config)
        engine = _ledger_engine(database, settings) if data is None or (
            max_cost_per_1k_requests and tier_costs is None) else None  # fmt: skip
        costs = _tier_costs(tier_costs, scorer)
        if costs is None and max_cost_per_1k_requests is not None:
            costs = _config_costs(engine, settings, scorer)
        goal = Goal(
            strong_share=target_strong_share,
            quality_floor=quality_floor,
            max_cost_per_1k=Decimal(max_cost_per_1k_requests) if max_cost_per_1k_requests else None,
            tier_costs_per_1k=costs,
        )
        if data is None:
            rows, source = _default_rows(engine, directory)
        else:
            rows, source = calibration_rows(data), str(data)
        result = calibrate_router(scorer, rows, profile, goal)
    except LanewayError as exc:
        raise _fail(exc) from exc
    finally:
        if engine is not None:
            engine.dispose()
    _print_calibration(source, result, _write_profile(directory, result))


def _print_calibration(source: str, result: Any, target: Path) -> None:
    if "note" in result.report:
        typer.echo(f"note: {result.report['note']}", err=True)
    typer.echo(json.dumps({"calibration_set": source, **dict(result.report)}))
    typer.echo(f"wrote {target} (use model 'auto:{result.name}')")


def _check_goal(strong_share: float | None, quality_floor: float | None, cost: str | None) -> None:
    """Exactly one goal, and a share from 0 to 1 (usage error otherwise)."""
    if sum(g is not None for g in (strong_share, quality_floor, cost)) != 1:
        raise typer.BadParameter(
            "give exactly one of --target-strong-share, --quality-floor, --max-cost-per-1k-requests"
        )
    shares = (("--target-strong-share", strong_share), ("--quality-floor", quality_floor))
    for name, share in shares:
        # A share outside 0-1 (or nan) wrote a degenerate profile: everything to one tier.
        if share is not None and not 0.0 <= share <= 1.0:
            raise typer.BadParameter(f"{share:g} is not a share from 0 to 1", param_hint=name)


def _write_profile(directory: Path, result: Any) -> Path:
    target = directory / "profiles" / f"{result.name}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result.to_json(), encoding="utf-8")
    except OSError as exc:
        reason = f"cannot write {target}: {exc.strerror or exc} (give --router DIR you can write)"
        raise _fail(InvalidRequest(reason)) from exc
    return target


def eval_command(
    data: Annotated[Path, typer.Option("--data", help="Outcomes JSONL (.gz ok).")],
    strong: Annotated[str, typer.Option("--strong", help="Model id of the strong model.")],
    weak: Annotated[str, typer.Option("--weak", help="Model id of the weak model.")],
    plot: Annotated[
        Path | None,
        typer.Option(help="Write the cost-quality curve PNG (its directory must exist)."),
    ] = None,
    rounds: Annotated[
        int, typer.Option(min=10, max=100_000, help="Bootstrap rounds, 10-100000.")
    ] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    router: RouterDir = None,
) -> None:
    """APGR, CPT(50%), CPT(80%) with 95% bootstrap intervals, against baselines."""
    from laneway.evals import check_output_file
    from laneway.router import evaluate_pair, load_router, plot_curves, read_outcomes

    try:
        if plot is not None:  # before the work: a bad path was a traceback after it
            check_output_file(plot)
        scorer = load_router(router).scorer
        report = evaluate_pair(scorer, read_outcomes(data), strong, weak, rounds=rounds)
        if plot is not None:
            plot_curves(report, plot)
    except LanewayError as exc:
        raise _fail(exc) from exc
    except OSError as exc:
        raise _fail(InvalidRequest(f"cannot write {plot}: {exc.strerror or exc}")) from exc
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    typer.echo(f"{strong} vs {weak}: {report.rows} prompts")
    for name, r in report.results.items():
        typer.echo(
            f"  {name:14s} APGR {r.value.apgr:.3f} [{r.apgr_ci[0]:.3f}, {r.apgr_ci[1]:.3f}]"
            f"  CPT(50%) {r.value.cpt50:.3f} [{r.cpt50_ci[0]:.3f}, {r.cpt50_ci[1]:.3f}]"
            f"  CPT(80%) {r.value.cpt80:.3f}"
        )


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def report_command(
    since: Annotated[str, typer.Option(help="Window: 24h, 30d, an ISO date, or 'all'.")] = "30d",
    baseline_tier: Annotated[
        str | None, typer.Option(help="Tier to price every request at (default: strongest).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    router: RouterDir = None,
    database: DatabaseUrl = None,
    config: ConfigPath = None,
) -> None:
    """Profiles (frontier share, expected quality), per-task gains and tier shares, and
    the cost saved against sending everything to the top tier."""
    from laneway.catalog import default_catalog
    from laneway.ledger import parse_since
    from laneway.router import (
        DEFAULT_TIERS,
        baseline_price,
        load_router,
        profile_summaries,
        savings_report,
    )
    from laneway.settings import load_settings

    try:
        loaded = load_router(router)
        settings = load_settings(config)
        start = None if since.strip().lower() == "all" else parse_since(since)
    except LanewayError as exc:
        raise _fail(exc) from exc
    url = database or settings.database.url
    groups, tasks, ledger_note = _ledger_traffic(url, start, loaded.scorer.tiers, database)
    profiles = profile_summaries(loaded)
    savings: dict[str, Any] | None
    note: str | None
    try:
        baseline = baseline_price(settings, default_catalog(), baseline_tier, DEFAULT_TIERS)
    except LanewayError as exc:
        savings, note = None, f"savings unknown: {exc.message}"
    else:
        savings, note = _savings_body(savings_report(groups, baseline)), None
    if ledger_note is not None:
        savings, note = None, ledger_note
    if as_json:
        typer.echo(json.dumps({
            **(savings or {}),
            "profiles": [{"name": p.name, "max_loss": p.max_loss,
                          "frontier_share": p.frontier_share, "quality_ratio": p.quality_ratio,
                          "calibration_rows": p.rows, "quality_source": p.quality_source,
                          "cascade": p.cascade} for p in profiles],
            "tasks": [{"task": t.task, "requests": t.requests, "mean_gain": t.mean_gain,
                       "tier_shares": dict(t.tier_shares)} for t in tasks],
            "savings_note": note,
        }))  # fmt: skip
        return
    _print_profiles(profiles)
    typer.echo("tasks (auto requests: mean gain of escalating, tier shares):")
    if not tasks:
        typer.echo("  (no auto requests in the window)")
    for t in tasks:
        gain = "?" if t.mean_gain is None else f"{t.mean_gain:+.3f}"
        shares = ", ".join(f"{tier} {v:.0%}" for tier, v in t.tier_shares.items())
        typer.echo(f"  {t.task:20s} {t.requests:6d}  gain {gain}  {shares}")
    if savings is None:
        typer.echo(note or "")
        return
    _print_savings(savings)


def _print_profiles(profiles: list[Any]) -> None:
    typer.echo("profiles (calibration set: frontier share, quality vs all-frontier):")
    for p in profiles:
        share = "?" if p.frontier_share is None else f"{p.frontier_share:.1%}"
        ratio = "?" if p.quality_ratio is None else f"{p.quality_ratio:.3f}"
        # How much the figures rest on: a profile calibrated on 20 rows, or on the
        # router's own estimates (prompts without outcomes), says so.
        basis = [f"{p.rows} rows"] if p.rows is not None else []
        if p.quality_source == "router estimates":
            basis.append("estimated")
        ratio += f" ({', '.join(basis)})" if basis else ""
        extra = f"  cascade {p.cascade}" if p.cascade else ""
        typer.echo(f"  auto:{p.name:10s} frontier {share:>6s}  quality {ratio}  "
                   f"max loss {p.max_loss:.3f}{extra}")  # fmt: skip


def _ledger_traffic(
    url: str, start: Any, tiers: Any, named: str | None
) -> tuple[list[Any], list[Any], str | None]:
    """The API traffic by tier and the auto requests by task since ``start``; without a
    ledger, none and a note saying so (an error when ``--database`` named it: ``named``)."""
    from laneway.ledger import open_database, usage_summary
    from laneway.router import task_summaries

    try:
        engine = open_database(url, create=False, migrate=False)
    except LanewayError as exc:
        if named is not None:  # asked for by name: it must exist
            raise _fail(exc) from exc
        return [], [], f"no traffic to report: {exc.message} (the gateway writes it)"
    try:
        groups = usage_summary(engine, since=start, by="tier", source="api")
        tasks = task_summaries(engine, start, tiers)
    except LanewayError as exc:
        raise _fail(exc) from exc
    finally:
        engine.dispose()
    return groups, tasks, None


def _savings_body(report: Any) -> dict[str, Any]:
    baseline = report.baseline
    return {
        "baseline": {"tier": baseline.tier, "deployment": baseline.deployment,
                     "price_source": baseline.source},
        "requests": report.requests,
        "tiers": [
            {"tier": t.tier, "requests": t.requests, "share": round(t.share, 6),
             "cost_usd": _money(t.cost_usd), "all_baseline_usd": _money(t.baseline_usd)}
            for t in report.tiers
        ],
        "cost_usd": _money(report.actual_usd),
        "all_baseline_usd": _money(report.all_baseline_usd),
        "saved_usd": _money(report.saved_usd),
        "saved_fraction": report.saved_fraction,
    }  # fmt: skip


def _print_savings(body: dict[str, Any]) -> None:
    base = body["baseline"]
    typer.echo(f"{body['requests']} request(s); baseline: all on tier {base['tier']} "
               f"({base['deployment']}, {base['price_source']})")  # fmt: skip
    for t in body["tiers"]:
        typer.echo(f"  {t['tier']:12s} {t['requests']:6d}  {t['share']:6.1%}  "
                   f"cost ${t['cost_usd'] or 'unknown'}")  # fmt: skip
    saved = body["saved_fraction"]
    typer.echo(
        f"cost ${body['cost_usd'] or 'unknown'} vs ${body['all_baseline_usd'] or 'unknown'} "
        f"all-{base['tier']}: saved ${body['saved_usd'] or 'unknown'}"
        + (f" ({saved:.1%})" if saved is not None else "")
    )


def register(app: typer.Typer) -> None:
    """Add ``route`` and the ``router`` group to ``app``."""
    from laneway.cli._router_train import promote_command, train_command

    app.command("route")(route_command)
    group = typer.Typer(
        help="Score, train, promote, calibrate, evaluate and report on the router.",
        no_args_is_help=True,
    )
    group.command("score")(score_command)
    group.command("train")(train_command)
    group.command("promote")(promote_command)
    group.command("calibrate")(calibrate_command)
    group.command("eval")(eval_command)
    group.command("report")(report_command)
    app.add_typer(group, name="router")
