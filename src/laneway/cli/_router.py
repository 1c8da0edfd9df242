"""``laneway route`` and the ``laneway router`` group: score, train, calibrate, eval."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from laneway.errors import LanewayError
from laneway.router import (
    DEFAULT_TIER_MODELS,
    DEFAULT_TIERS,
    Goal,
    RouteDecision,
    calibrate_router,
    calibration_rows,
    conversation_from_prompt,
    load_router,
    train_scorer,
)
from laneway.router._calibration_set import default_calibration_path
from laneway.router._evaluate import evaluate_pair, plot_curves
from laneway.router._io import conversation_of, iter_jsonl, read_outcomes
from laneway.router._scorer import Scorer, default_router_dir, load_embedder
from laneway.router._training import dev_mask

__all__ = ["register"]

RouterDir = Annotated[
    Path | None, typer.Option("--router", help="Router directory (default: the shipped one).")
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
    try:
        loaded = load_router(router)
        loaded.profile(profile)
    except LanewayError as exc:
        raise _fail(exc) from exc
    written = errors = 0
    with output.open("w", encoding="utf-8") as out:
        for number, line in iter_jsonl(input_path):
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
    typer.echo(f"scored {written - errors} line(s), {errors} error(s) → {output}", err=True)


def _parse_tiers(spec: str | None) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """``simple=m1,m2;frontier=m3``, a JSON object, or a JSON file; None: the default."""
    if spec is None:
        return DEFAULT_TIERS, {t: tuple(m) for t, m in DEFAULT_TIER_MODELS.items()}
    text = Path(spec).read_text(encoding="utf-8") if Path(spec).is_file() else spec
    if text.lstrip().startswith("{"):
        mapping = {str(t): tuple(str(m) for m in ms) for t, ms in json.loads(text).items()}
    else:
        mapping = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            tier, _, models = part.partition("=")
            mapping[tier.strip()] = tuple(m.strip() for m in models.split(",") if m.strip())
    if len(mapping) < 2:
        raise typer.BadParameter("--tiers needs at least two tiers, cheapest first")
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
) -> None:
    """Train a router from per-prompt outcomes; calibrates its 'default' profile."""
    order, mapping = _parse_tiers(tiers)
    try:
        rows = read_outcomes(data)
        held = dev_mask([r["id"] if r["id"] is not None else i for i, r in enumerate(rows)])
        if len(rows) < 50 or held.all() or not held.any():
            held = np.zeros(len(rows), dtype=bool)
        train = [r for r, h in zip(rows, held, strict=True) if not h]
        calib = [r for r, h in zip(rows, held, strict=True) if h] or train
        embedder = load_embedder(default_router_dir())
        scorer = train_scorer(
            train, order, mapping, embedder, use_embedding=embedding, l2=l2,
            meta={"trained_on": str(data), "calibrated_on": "held-out 1/10" if held.any()
                  else "training rows (too few to hold out)"},
        )  # fmt: skip
        scorer.save(out)
        profile = calibrate_router(scorer, calib, "default", Goal(quality_floor=0.95))
    except LanewayError as exc:
        raise _fail(exc) from exc
    (out / "profiles").mkdir(exist_ok=True)
    (out / "profiles" / "default.json").write_text(profile.to_json(), encoding="utf-8")
    typer.echo(f"trained on {len(train)} row(s), tiers {', '.join(order)} → {out}")


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


def calibrate_command(
    profile: Annotated[str, typer.Option(help="Profile name: written to profiles/NAME.json.")],
    target_strong_share: Annotated[float | None, typer.Option()] = None,
    quality_floor: Annotated[
        float | None, typer.Option(help="Fraction of the all-strongest-tier quality.")
    ] = None,
    max_cost_per_1k_requests: Annotated[str | None, typer.Option()] = None,
    tier_costs: Annotated[
        str | None, typer.Option(help="USD per 1,000 requests per tier: 'simple=0.2,...'.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Prompts or outcomes JSONL (default: shipped set).")
    ] = None,
    router: RouterDir = None,
) -> None:
    """Calibrate a routing profile on a calibration set; `auto:NAME` then uses it."""
    goals = [target_strong_share, quality_floor, max_cost_per_1k_requests]
    if sum(g is not None for g in goals) != 1:
        raise typer.BadParameter(
            "give exactly one of --target-strong-share, --quality-floor, --max-cost-per-1k-requests"
        )
    directory = router or default_router_dir()
    try:
        scorer = load_router(directory).scorer
        goal = Goal(
            strong_share=target_strong_share,
            quality_floor=quality_floor,
            max_cost_per_1k=Decimal(max_cost_per_1k_requests) if max_cost_per_1k_requests else None,
            tier_costs_per_1k=_tier_costs(tier_costs, scorer),
        )
        rows = calibration_rows(data or default_calibration_path(directory))
        result = calibrate_router(scorer, rows, profile, goal)
    except LanewayError as exc:
        raise _fail(exc) from exc
    target = directory / "profiles" / f"{profile}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(result.to_json(), encoding="utf-8")
    typer.echo(json.dumps(dict(result.report)))
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


def register(app: typer.Typer) -> None:
    """Add ``route`` and the ``router`` group to ``app``."""
    app.command("route")(route_command)
    group = typer.Typer(help="Score, train, calibrate and evaluate the router.")
    group.command("score")(score_command)
    group.command("train")(train_command)
    group.command("calibrate")(calibrate_command)
    group.command("eval")(eval_command)
    app.add_typer(group, name="router")
