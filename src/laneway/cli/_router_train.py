"""``laneway router train`` and ``laneway router promote``: learn a router from a team's
outcome rows, check it on rows it never saw, make it the active one."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from laneway.cli._router import ConfigPath, _fail
from laneway.errors import InvalidRequest, LanewayError

if TYPE_CHECKING:
    from laneway.router import HeldOutCheck, OutcomeSplit, Scorer

__all__ = ["promote_command", "train_command"]

# The shipped recipe's goals (quality relative to sending everything to the strongest tier).
PROFILE_GOALS = {"economy": 0.90, "default": 0.95, "quality": 0.99}


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
    from laneway.router import config_tier_models
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
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            help="Outcome rows JSONL (.gz ok); repeat for eval exports, shadow outcomes and "
            "the shared data. Rows may carry task and answers.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Router directory to write.")],
    tiers: Annotated[
        str | None, typer.Option(help="Tier → models, cheapest first: 'simple=a,b;frontier=c'.")
    ] = None,
    embedding: Annotated[
        bool, typer.Option(help="Add the static sentence embedding to the features.")
    ] = False,
    verifier: Annotated[
        bool, typer.Option(help="Fit the answer verifier on rows that carry answers.")
    ] = True,
    holdout_every: Annotated[
        int,
        typer.Option(
            min=2, help="Hold out one row in N (by id hash) for the check and calibration."
        ),
    ] = 10,  # = laneway.router._promote.DEFAULT_HOLDOUT_MODULUS (tests/cli/test_startup.py)
    l2: Annotated[float, typer.Option(help="L2 penalty of the logistic heads.")] = 3000.0,
    length_prior: Annotated[
        float,
        typer.Option(
            help="Prior slope of the gain on log prompt length (logits per standard deviation "
            "between the cheapest and the strongest tier; 1.2, as the shipped router: with a "
            "few hundred rows the text signals alone ranked below prompt length; 0: none)."
        ),
    ] = 1.2,
    config: ConfigPath = None,
) -> None:
    """Train a router from per-prompt outcomes, check it on the held-out rows and
    calibrate its profiles (economy, default, quality) on them.

    Without --tiers, the mapping comes from the config's tiers (cheapest first; each
    deployment as its catalog model id), else the shipped mapping.
    """
    from laneway.router import (
        Goal,
        calibrate_router,
        cascade_check,
        default_router_dir,
        held_out_check,
        load_embedder,
        train_scorer,
    )

    order, mapping = _parse_tiers(tiers) if tiers is not None else _config_tiers(config)
    try:
        _check_out(out)
        split = _split_rows(data, mapping, holdout_every)
        embedder = load_embedder(default_router_dir()) if embedding else None
        scorer = train_scorer(
            split.train, order, mapping, embedder, use_embedding=embedding, l2=l2,
            verifier=verifier, length_prior=length_prior,
            meta={"trained_on": [str(p) for p in data],
                  "holdout": {"modulus": holdout_every, "rows": len(split.held)}},
        )  # fmt: skip
        check = _check_or_reason(held_out_check, scorer, split.held)
        cascade = _check_or_reason(cascade_check, scorer, split.held) if scorer.verifier else ""
        profiles = [
            calibrate_router(scorer, split.held, name, Goal(quality_floor=floor))
            for name, floor in PROFILE_GOALS.items()
        ]
        _save_router(scorer, profiles, out, split.train)
    except LanewayError as exc:
        raise _fail(exc) from exc
    typer.echo(f"trained on {len(split.train)} row(s), tiers {', '.join(order)} → {out}")
    for note in _split_notes(split):
        typer.echo(note)
    typer.echo(f"tasks: {len(scorer.tasks.names)}; verifier: "
               f"{_verifier_note(scorer, verifier, split.train)}")  # fmt: skip
    for line in _check_lines(check) + _check_lines(cascade):
        typer.echo(line)


def _check_out(out: Path) -> None:
    """Training over a router that has profiles of its own (calibrated by `router
    calibrate`, or carrying a cascade) would leave them in place for the new model: a
    loss target calibrated for another model, silently. Refuse, naming them."""
    if not (out / "router.json").is_file():
        return
    own = sorted(p.stem for p in (out / "profiles").glob("*.json")
                 if p.stem not in PROFILE_GOALS or _has_cascade(p))  # fmt: skip
    if own:
        raise InvalidRequest(
            f"{out} holds a router whose profile(s) {', '.join(own)} were calibrated for it "
            "(or carry a cascade): train into a new directory, then calibrate them there "
            "(`router calibrate --router DIR`)"
        )


def _has_cascade(path: Path) -> bool:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True  # unreadable: not ours to overwrite
    return not isinstance(body, dict) or bool(body.get("cascade"))


def _split_rows(
    data: list[Path], mapping: dict[str, tuple[str, ...]], holdout_every: int
) -> OutcomeSplit:
    """The outcome rows of ``data`` with an outcome of a mapped model: those to train
    on, and those held out (one in ``holdout_every``, by id hash; never a prompt also
    trained on) for the check and calibration; at least 10 of each."""
    from laneway.router import coverage_problem, read_outcomes, split_outcomes

    rows = [row for path in data for row in read_outcomes(path)]
    problem = coverage_problem(rows, mapping)
    if problem is not None:
        raise InvalidRequest(problem)
    split = split_outcomes(rows, mapping, holdout_every)
    if len(split.held) < 10 or len(split.train) < 10:
        unmapped = (f" ({split.unmapped} without an outcome of a mapped model)"
                    if split.unmapped else "")  # fmt: skip
        raise InvalidRequest(
            f"{len(rows)} row(s){unmapped} leave {len(split.held)} held out and "
            f"{len(split.train)} to train on: need at least 10 of each (more data, or a "
            "smaller --holdout-every)"
        )
    return split


def _split_notes(split: OutcomeSplit) -> list[str]:
    notes = []
    if split.unmapped:
        notes.append(f"left out {split.unmapped} row(s) with no outcome of a model in the "
                     "tier mapping")  # fmt: skip
    if split.repeated:
        notes.append(f"{split.repeated} row(s) repeat a prompt under another id: each such "
                     "prompt is held out or trained on whole, by its hash")  # fmt: skip
    return notes


def _check_or_reason(
    check: Callable[[Scorer, list[Any]], HeldOutCheck], scorer: Scorer, rows: list[Any]
) -> HeldOutCheck | str:
    """A check on the held-out rows, or why it cannot be made (the router is still
    written: ``router promote`` refuses it until the team's outcomes can check it)."""
    try:
        return check(scorer, rows)
    except InvalidRequest as exc:
        name = "cascade check" if check.__name__ == "cascade_check" else "held-out check"
        return f"{name} not made: {exc.message}"


def _check_lines(check: HeldOutCheck | str) -> list[str]:
    if isinstance(check, str):
        return [check] if check else []
    return check.lines()


def _verifier_note(scorer: Scorer, asked: bool, rows: list[Any]) -> str:
    if scorer.verifier is not None:
        return f"yes ({scorer.meta.get('verifier_examples', 0)} answers)"
    if asked and not any(r.get("answers") for r in rows):
        return "no (no row carries answers)"
    return "no"


def _save_router(scorer: Scorer, profiles: list[Any], out: Path, train: list[Any]) -> None:
    from laneway.router import save_trained_prompts

    try:
        scorer.save(out)
        save_trained_prompts(out, train)
        (out / "profiles").mkdir(exist_ok=True)
        for profile in profiles:
            (out / "profiles" / f"{profile.name}.json").write_text(
                profile.to_json(), encoding="utf-8"
            )
    except OSError as exc:
        raise InvalidRequest(f"cannot write the router to {out}: {exc.strerror or exc}") from exc


def promote_command(
    candidate: Annotated[Path, typer.Argument(help="Router directory from `router train`.")],
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            help="The team's outcome rows (JSONL, .gz ok; repeatable): the rows the candidate "
            "held out and any it never saw (a half kept aside); rows whose prompt it (or "
            "the active router) was trained on are left out.",
        ),
    ],
    rounds: Annotated[int, typer.Option(min=50, help="Bootstrap rounds.")] = 300,
) -> None:
    """Make a trained router the active one, if it is not worse than the active
    router and than prompt length on outcomes neither was trained on."""
    from laneway.router import held_out_check, install_router, load_router

    try:
        new = load_router(candidate)
        current = load_router(None)
        rows, notes = _untrained_rows(candidate, new.scorer, data)
        check = held_out_check(new.scorer, rows, current.scorer, rounds=rounds)
    except LanewayError as exc:
        raise _fail(exc) from exc
    for line in [*notes, *check.lines()]:
        typer.echo(line)
    if new.scorer.verifier is not None:  # information only: the gate is the router's check
        from laneway.router import cascade_check

        for line in _check_lines(_check_or_reason(cascade_check, new.scorer, rows)):
            typer.echo(line)
    worse = [n for n in ("active", "length") if check.metrics["candidate"].apgr
             < check.metrics[n].apgr]  # fmt: skip
    if worse:
        apgr = check.metrics["candidate"].apgr
        below = " and ".join(f"{n}'s {check.metrics[n].apgr:.4f}" for n in worse)
        typer.echo(f"refused: the candidate's APGR {apgr:.4f} is below {below}", err=True)
        raise typer.Exit(1)
    try:
        target = install_router(candidate)
    except LanewayError as exc:
        raise _fail(exc) from exc
    typer.echo(f"promoted {candidate} → {target} (the gateway loads it at start-up)")


def _untrained_rows(
    directory: Path, scorer: Scorer, data: list[Path]
) -> tuple[list[Any], list[str]]:
    """The rows of ``data`` neither the candidate nor the active router was trained on
    (an active router checked on its own training rows would look better than it is),
    and a note per router that had rows left out."""
    from laneway.router import read_outcomes, resolve_router_dir, rows_not_trained_on

    modulus = int(scorer.meta.get("holdout", {}).get("modulus", 0))
    rows = [r for path in data for r in read_outcomes(path)]
    rows, mine = rows_not_trained_on(rows, directory, modulus)
    active = resolve_router_dir(None)
    theirs = 0
    if active.resolve() != directory.resolve():
        rows, theirs = rows_not_trained_on(rows, active, 0, required=False)
    return rows, [
        f"left out {n} row(s) whose prompt the {who} router was trained on"
        for n, who in ((mine, "candidate"), (theirs, "active"))
        if n
    ]
