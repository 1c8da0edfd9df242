"""Calibration sets and calibrating a router's profile on one.

A calibration set is a list of conversations, with per-model outcomes where known
(the shipped set is the MMLU-Pro dev split, which the shipped scorer never saw).
Prompts without outcomes (e.g. sampled from the ledger) calibrate on the router's
own estimates of quality.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from laneway.errors import InvalidRequest
from laneway.router._fit import feature_matrix
from laneway.router._io import conversation_of, iter_jsonl, outcome_row
from laneway.router._profiles import Goal, Profile, calibrate
from laneway.router._scorer import Scorer, default_router_dir
from laneway.router._training import targets_for

__all__ = ["calibrate_router", "calibration_rows", "default_calibration_path"]


def default_calibration_path(directory: Path) -> Path:
    own = directory / "calibration.json"
    return own if own.is_file() else default_router_dir() / "calibration.json"


def calibration_rows(path: Path) -> list[dict[str, Any]]:
    """Rows with ``conversation`` and ``outcomes`` (possibly empty)."""
    if path.suffix == ".json":
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
            return [
                {
                    "conversation": conversation_of(r),
                    "outcomes": dict(r.get("outcomes") or {}),
                    "weight": float(r.get("weight", 1.0)),
                    "task": r.get("task") if isinstance(r.get("task"), str) else None,
                }
                for r in records
            ]
        except (OSError, ValueError, TypeError, AttributeError, InvalidRequest) as exc:
            raise InvalidRequest(f"cannot read calibration set {path}: {exc}") from exc
    rows: list[dict[str, Any]] = []
    for number, line in iter_jsonl(path):
        try:
            rows.append(_jsonl_row(json.loads(line)))
        except (ValueError, KeyError, TypeError, InvalidRequest) as exc:
            raise InvalidRequest(f"{path}:{number}: {exc}") from exc
    return rows


def _jsonl_row(record: Any) -> dict[str, Any]:
    """An outcome row where the line carries outcomes (a bad one is an error: one such
    line made the whole file count as prompts, its outcomes silently unused), else a
    prompt to calibrate on the router's estimates."""
    if isinstance(record, dict) and ("outcomes" in record or "scores" in record):
        return outcome_row(record)
    task = record.get("task") if isinstance(record, dict) else None
    return {
        "conversation": conversation_of(record),
        "outcomes": {},
        "task": task if isinstance(task, str) else None,
    }


def calibrate_router(
    scorer: Scorer,
    rows: Sequence[Mapping[str, Any]],
    name: str,
    goal: Goal,
) -> Profile:
    """Calibrate profile ``name`` for ``scorer`` on ``rows`` to meet ``goal``."""
    if not rows:
        raise InvalidRequest("the calibration set is empty")
    x = feature_matrix([r["conversation"] for r in rows], scorer.embedder, scorer.use_embedding)
    estimates = scorer.predict_matrix(x, [r.get("task") for r in rows])
    quality = None
    if any(r["outcomes"] for r in rows):
        observed = targets_for_tiers(rows, scorer)
        quality = observed if np.isfinite(observed).any() else None
    weights = np.array([float(r.get("weight", 1.0)) for r in rows], dtype=np.float64)
    if (weights < 0).any() or weights.sum() <= 0:
        raise InvalidRequest("calibration weights must be non-negative and not all zero")
    profile = calibrate(name, scorer.tiers, estimates, goal, quality, weights)
    if quality is None and any(r["outcomes"] for r in rows):
        note = (
            "the rows' outcomes name no model of the router's tier mapping: calibrated on "
            "the router's own estimates, not on them"
        )
        return dataclasses.replace(profile, report={**profile.report, "note": note})
    return profile


def targets_for_tiers(rows: Sequence[Mapping[str, Any]], scorer: Scorer) -> np.ndarray:
    """Observed tier outcomes (NaN where a tier has no model in a row)."""
    try:
        return targets_for(rows, scorer.tier_models, scorer.tiers)
    except ValueError:
        return np.full((len(rows), len(scorer.tiers)), np.nan)
