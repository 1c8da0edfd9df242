"""``laneway route`` and the ``laneway router`` group: score, train, calibrate, eval."""

from __future__ import annotations

import itertools
import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from laneway.errors import InvalidRequest, LanewayError

if TYPE_CHECKING:
    from laneway.router import RouteDecision
    from laneway.router._scorer import Scorer

# numpy and the router are imported by the commands that use them: `laneway --help`
# and the other commands start without them (tests/cli/test_startup.py).

__all__ = ["register"]

RouterDir = Annotated[
    Path | None, typer.Option("--router", help="Router directory (default: the shipped one).")
]


ConfigPath = Annotated[
    Path | None, typer.Option("--config", "-c", help="laneway.yaml (default: the usual lookup).")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(envvar="LANEWAY_DATABASE_URL", help="Ledger database URL (default: config)."),
]


def _fail(exc: LanewayError) -> typer.Exit:
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(2)


def _decision_dict(d: RouteDecision) -> dict[str, Any]:
    return {
        "tier": d.tier,
        "score": round(d.score, 6),
        "estimates": {t: round(v, 6) for t, v in d.estimates.items()},
        "reason": d.reason,
        "profile": d.profile,
    }


def route_command(
    prompt: Annotated[str, typer.Argument(help="The prompt to route.")],
    profile: Annotated[str | None, typer.Option(help="Routing profile (auto:NAME).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    router: RouterDir = None,
) -> None:
    """Route one prompt: tier, per-tier estimates and the reason."""
    from laneway.router import conversation_from_prompt, load_router

    try:
        decision = load_router(router).route_conversation(conversation_from_prompt(prompt), profile)
    except LanewayError as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(_decision_dict(decision)))
        return
    typer.echo(f"tier: {decision.tier}  (profile {decision.profile}, score {decision.score:.3f})")
    for tier, value in decision.estimates.items():
        typer.echo(f"  {tier:10s} P(good answer) = {value:.3f}")
    typer.echo(f"reason: {decision.reason}")


def score_command(
    input_path: Annotated[Path, typer.Option("--input", help="JSONL: prompt or messages, id.")],
    output: Annotated[Path, typer.Option("--output", help="JSONL written in input order.")],
    profile: Annotated[str | None, typer.Option(help="Routing profile.")] = None,
    router: RouterDir = None,
) -> None:
    """Score a file of prompts; unreadable lines yield {"id", "error"}."""
    from laneway.router import load_router

    try:
        loaded = load_router(router)
        loaded.profile(profile)
    except LanewayError as exc:
        raise _fail(exc) from exc
    try:
        written, errors = _score_file(loaded, input_path, output, profile)
    except LanewayError as exc:
        raise _fail(exc) from exc
    typer.echo(f"scored {written - errors} line(s), {errors} error(s) → {output}", err=True)


def _score_file(
    loaded: Any, input_path: Path, output: Path, profile: str | None
) -> tuple[int, int]:
    """Write one output line per input line; returns (lines written, error lines)."""
    from laneway.router._io import conversation_of, iter_jsonl

    written = errors = 0
    lines = iter_jsonl(input_path)
    first = next(lines, None)  # an unreadable input fails before the output is created
    try:
        out = output.open("w", encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"cannot write {output}: {exc.strerror or exc}") from exc
    with out:
        for number, line in itertools.chain([first] if first else [], lines):
            record: Any = None
            try:
                record = json.loads(line)
                body = _decision_dict(loaded.route_conversation(conversation_of(record), profile))
            except (ValueError, LanewayError) as exc:
                message = exc.message if isinstance(exc, LanewayError) else str(exc)
                body = {"error": f"line {number}: {message}"}
                errors += 1
            row_id = record.get("id") if isinstance(record, dict) else None
            out.write(json.dumps({"id": row_id, **body}, ensure_ascii=False) + "\n")
            written += 1
    return written, errors


def _parse_tiers(spec: str | None) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """``simple=m1,m2;frontier=m3``, a JSON object, or a JSON file; None: the default."""
    from laneway.router import DEFAULT_TIER_MODELS, DEFAULT_TIERS

    if spec is None:
        return DEFAULT_TIERS, {t: tuple(m) for t, m in DEFAULT_TIER_MODELS.items()}
    try:
        text = Path(spec).read_text(encoding="utf-8") if Path(spec).is_file() else spec
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read --tiers file {spec}: {exc}") from exc
    if text.lstrip().startswith("{"):
        try:
            body = json.loads(text)
            mapping = {str(t): tuple(str(m) for m in ms) for t, ms in body.items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise typer.BadParameter(
                f"--tiers JSON must map each tier to a list of models: {exc}"
            ) from exc
    else:
        mapping = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            tier, _, models = part.partition("=")
            mapping[tier.strip()] = tuple(m.strip() for m in models.split(",") if m.strip())
    if len(mapping) < 2:
        raise typer.BadParameter("--tiers needs at least two tiers, cheapest first")
    return tuple(mapping), mapping


def _config_tiers(config: Path | None) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    from laneway.catalog import default_catalog
    from laneway.router._from_config import config_tier_models
    from laneway.settings import find_config, load_settings

    try:
        if find_config(config, os.environ) is None:
            return _parse_tiers(None)
        mapping = config_tier_models(load_settings(config), default_catalog())
    except LanewayError as exc:
        raise _fail(exc) from exc
    mapping = {t: m for t, m in mapping.items() if m}
    if len(mapping) < 2:
        raise typer.BadParameter("the config has fewer than two tiers with deployments: "
                                 "give --tiers")  # fmt: skip
    return tuple(mapping), mapping


def train_command(
    data: Annotated[Path, typer.Option("--data", help="Outcomes JSONL (.gz ok).")],
    out: Annotated[Path, typer.Option("--out", help="Router directory to write.")],
    tiers: Annotated[
        str | None, typer.Option(help="Tier → models, cheapest first: 'simple=a,b;frontier=c'.")
    ] = None,
    embedding: Annotated[
        bool, typer.Option(help="Add the static sentence embedding to the features.")
    ] = False,
    l2: Annotated[float, typer.Option(help="L2 penalty of the logistic heads.")] = 3000.0,
    config: ConfigPath = None,
) -> None:
    """Train a router from per-prompt outcomes; calibrates its 'default' profile.

    Without --tiers, the mapping comes from the config's tiers (cheapest first; each
    deployment as its catalog model id), else the shipped mapping.
    """
    import numpy as np

    from laneway.router import Goal, calibrate_router, train_scorer
    from laneway.router._io import read_outcomes
    from laneway.router._scorer import default_router_dir, load_embedder
    from laneway.router._training import dev_mask

    order, mapping = _parse_tiers(tiers) if tiers is not None else _config_tiers(config)
    try:
        rows = read_outcomes(data)
        held = dev_mask([r["id"] if r["id"] is not None else i for i, r in enumerate(rows)])
        if len(rows) < 50 or held.all() or not held.any():
            held = np.zeros(len(rows), dtype=bool)
        train = [r for r, h in zip(rows, held, strict=True) if not h]
        calib = [r for r, h in zip(rows, held, strict=True) if h] or train
        embedder = load_embedder(default_router_dir()) if embedding else None
        scorer = train_scorer(
            train, order, mapping, embedder, use_embedding=embedding, l2=l2,
            meta={"trained_on": str(data), "calibrated_on": "held-out 1/10" if held.any()
                  else "training rows (too few to hold out)"},
        )  # fmt: skip
        profile = calibrate_router(scorer, calib, "default", Goal(quality_floor=0.95))
        _save_router(scorer, profile, out)
    except LanewayError as exc:
        raise _fail(exc) from exc
    typer.echo(f"trained on {len(train)} row(s), tiers {', '.join(order)} → {out}")


def _save_router(scorer: Scorer, profile: Any, out: Path) -> None:
    try:
        scorer.save(out)
        (out / "profiles").mkdir(exist_ok=True)
        (out / "profiles" / "default.json").write_text(profile.to_json(), encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"cannot write the router to {out}: {exc.strerror or exc}") from exc


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
    from laneway.router import calibration_rows
    from laneway.router._calibration_set import default_calibration_path
    from laneway.router._from_config import ledger_prompt_rows

    rows = ledger_prompt_rows(engine) if engine is not None else []
    if len(rows) >= MIN_LEDGER_PROMPTS:
        return rows, f"{len(rows)} prompt(s) logged in the ledger"
    path = default_calibration_path(directory)
    return calibration_rows(path), str(path)


def _config_costs(engine: Any, settings: Any, scorer: Scorer) -> dict[str, Decimal]:
    from laneway.catalog import default_catalog
    from laneway.router._from_config import ledger_tokens_per_request, tier_costs

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
    profile: Annotated[str, typer.Option(help="Profile name: written to profiles/NAME.json.")],
    target_strong_share: Annotated[float | None, typer.Option()] = None,
    quality_floor: Annotated[
        float | None, typer.Option(help="Fraction of the all-strongest-tier quality.")
    ] = None,
    max_cost_per_1k_requests: Annotated[str | None, typer.Option()] = None,
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
    from laneway.router import Goal, calibrate_router, calibration_rows, load_router
    from laneway.router._profiles import check_profile_name
    from laneway.router._scorer import default_router_dir
    from laneway.settings import load_settings

    goals = [target_strong_share, quality_floor, max_cost_per_1k_requests]
    if sum(g is not None for g in goals) != 1:
        raise typer.BadParameter(
            "give exactly one of --target-strong-share, --quality-floor, --max-cost-per-1k-requests"
        )
    directory = router or default_router_dir()
    engine: Any = None
    try:
        check_profile_name(profile)
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
    target = directory / "profiles" / f"{profile}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result.to_json(), encoding="utf-8")
    except OSError as exc:
        reason = f"cannot write {target}: {exc.strerror or exc} (give --router DIR you can write)"
        raise _fail(InvalidRequest(reason)) from exc
    typer.echo(json.dumps({"calibration_set": source, **dict(result.report)}))
    typer.echo(f"wrote {target} (use model 'auto:{profile}')")


def eval_command(
    data: Annotated[Path, typer.Option("--data", help="Outcomes JSONL (.gz ok).")],
    strong: Annotated[str, typer.Option("--strong")],
    weak: Annotated[str, typer.Option("--weak")],
    plot: Annotated[Path | None, typer.Option(help="Write the cost-quality curve PNG.")] = None,
    rounds: Annotated[int, typer.Option(help="Bootstrap rounds.")] = 200,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    router: RouterDir = None,
) -> None:
    """APGR, CPT(50%), CPT(80%) with 95% bootstrap intervals, against baselines."""
    from laneway.router import load_router
    from laneway.router._evaluate import evaluate_pair, plot_curves
    from laneway.router._io import read_outcomes

    try:
        scorer = load_router(router).scorer
        report = evaluate_pair(scorer, read_outcomes(data), strong, weak, rounds=rounds)
        if plot is not None:
            plot_curves(report, plot)
    except LanewayError as exc:
        raise _fail(exc) from exc
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
    database: DatabaseUrl = None,
    config: ConfigPath = None,
) -> None:
    """Requests per tier and the cost saved against sending everything to the top tier."""
    from laneway.catalog import default_catalog
    from laneway.ledger import open_database, parse_since, usage_summary
    from laneway.router import DEFAULT_TIERS
    from laneway.router._report import baseline_price, savings_report
    from laneway.settings import load_settings

    try:
        settings = load_settings(config)
        start = None if since.strip().lower() == "all" else parse_since(since)
        baseline = baseline_price(settings, default_catalog(), baseline_tier, DEFAULT_TIERS)
        engine = open_database(database or settings.database.url, create=False, migrate=False)
        try:
            groups = usage_summary(engine, since=start, by="tier", source="api")
        finally:
            engine.dispose()
    except LanewayError as exc:
        raise _fail(exc) from exc
    report = savings_report(groups, baseline)
    body = {
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
    if as_json:
        typer.echo(json.dumps(body))
        return
    typer.echo(f"{report.requests} request(s); baseline: all on tier {baseline.tier} "
               f"({baseline.deployment}, {baseline.source})")  # fmt: skip
    for t in report.tiers:
        typer.echo(f"  {t.tier:12s} {t.requests:6d}  {t.share:6.1%}  "
                   f"cost ${_money(t.cost_usd) or 'unknown'}")  # fmt: skip
    saved = report.saved_fraction
    typer.echo(
        f"cost ${body['cost_usd'] or 'unknown'} vs ${body['all_baseline_usd'] or 'unknown'} "
        f"all-{baseline.tier}: saved ${body['saved_usd'] or 'unknown'}"
        + (f" ({saved:.1%})" if saved is not None else "")
    )


def register(app: typer.Typer) -> None:
    """Add ``route`` and the ``router`` group to ``app``."""
    app.command("route")(route_command)
    group = typer.Typer(help="Score, train, calibrate and evaluate the router.")
    group.command("score")(score_command)
    group.command("train")(train_command)
    group.command("calibrate")(calibrate_command)
    group.command("eval")(eval_command)
    group.command("report")(report_command)
    app.add_typer(group, name="router")
