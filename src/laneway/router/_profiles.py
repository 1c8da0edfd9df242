"""Routing profiles and their calibration.

A profile holds one threshold per tier except the strongest: the router picks the
cheapest tier whose estimate P(tier answers well) meets that tier's threshold, and
the strongest tier otherwise. Thresholds are never typed by hand: ``calibrate``
searches the single quality target that meets a goal on a calibration set, either
a share of strongest-tier calls, a floor on quality relative to sending everything
to the strongest tier, or a cost per 1,000 requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from laneway.errors import ConfigError, InvalidRequest

__all__ = ["Goal", "Profile", "calibrate", "check_profile_name", "choose_tiers", "load_profiles"]

_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_profile_name(name: str) -> None:
    """A profile name becomes a file name and part of ``auto:NAME``: letters, digits,
    ``_`` and ``-`` only (so no path can escape ``profiles/``)."""
    if not _PROFILE_NAME.fullmatch(name):
        raise InvalidRequest(
            f"invalid profile name {name!r}: use 1-64 letters, digits, '_' or '-' "
            "(starting with a letter or digit)"
        )


FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    thresholds: Mapping[str, float]
    method: str = ""
    report: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {
            "name": self.name,
            "thresholds": dict(self.thresholds),
            "method": self.method,
            "calibration": dict(self.report),
        }
        return json.dumps(body, indent=2) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> Profile:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            thresholds = {str(k): float(v) for k, v in body["thresholds"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"invalid routing profile {path}: {exc}") from exc
        return cls(
            str(body.get("name", path.stem)),
            thresholds,
            str(body.get("method", "")),
            body.get("calibration", {}),
        )


def load_profiles(directory: Path) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    if directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            profiles[path.stem] = Profile.from_file(path)
    return profiles


def choose_tiers(estimates: FloatArray, thresholds: Sequence[float]) -> npt.NDArray[np.intp]:
    """Index of the chosen tier per row: cheapest meeting its threshold, else the last."""
    n, tiers = estimates.shape
    chosen = np.full(n, tiers - 1, dtype=np.intp)
    for t in range(tiers - 2, -1, -1):
        chosen = np.where(estimates[:, t] >= thresholds[t], t, chosen)
    return chosen


@dataclass(frozen=True, slots=True)
class Goal:
    """Exactly one of the three calibration goals."""

    strong_share: float | None = None
    quality_floor: float | None = None
    max_cost_per_1k: Decimal | None = None
    tier_costs_per_1k: Mapping[str, Decimal] | None = None

    def describe(self) -> str:
        if self.strong_share is not None:
            return f"target-strong-share {self.strong_share:g}"
        if self.quality_floor is not None:
            return f"quality-floor {self.quality_floor:g}"
        return f"max-cost-per-1k-requests {self.max_cost_per_1k}"


def _candidates(estimates: FloatArray) -> FloatArray:
    values = np.unique(np.round(estimates[:, :-1], 6))
    if len(values) > 2000:
        values = np.unique(np.quantile(values, np.linspace(0, 1, 2000)))
    return np.concatenate([[-np.inf], values, [np.inf]])


def _evaluate(
    estimates: FloatArray, quality: FloatArray, costs: FloatArray | None, tau: float, w: FloatArray
) -> tuple[npt.NDArray[np.intp], float, float | None]:
    chosen = choose_tiers(estimates, [tau] * (estimates.shape[1] - 1))
    rows = np.arange(len(chosen))
    q = float(np.average(quality[rows, chosen], weights=w))
    cost = float(np.average(costs[chosen], weights=w) * 1000) if costs is not None else None
    return chosen, q, cost


def calibrate(
    name: str,
    tiers: Sequence[str],
    estimates: FloatArray,
    goal: Goal,
    quality: FloatArray | None = None,
    weights: FloatArray | None = None,
) -> Profile:
    """Search the quality target meeting ``goal`` on the calibration rows.

    ``estimates``/``quality`` have one column per tier; ``quality`` holds observed
    tier outcomes where known (else the estimates stand in for them); ``weights``
    (default 1) say how much of the traffic each row stands for.
    """
    if len(estimates) == 0:
        raise InvalidRequest("the calibration set is empty")
    w = np.ones(len(estimates)) if weights is None else np.asarray(weights, dtype=np.float64)
    q = estimates if quality is None else np.where(np.isfinite(quality), quality, estimates)
    costs = _tier_costs(tiers, goal)
    top = float(np.average(q[:, -1], weights=w))
    best: tuple[float, npt.NDArray[np.intp], float, float | None] | None = None
    for tau in _candidates(estimates):
        chosen, qual, cost = _evaluate(estimates, q, costs, float(tau), w)
        share = float(np.average(chosen == len(tiers) - 1, weights=w))
        if goal.strong_share is not None:
            ok, prefer_first = share <= goal.strong_share + 1e-12, False
        elif goal.quality_floor is not None:
            ok, prefer_first = qual >= goal.quality_floor * top - 1e-12, True
        else:
            ok, prefer_first = cost is not None and cost <= float(goal.max_cost_per_1k or 0), False
        if ok and (best is None or not prefer_first):
            best = (float(tau), chosen, qual, cost)
            if prefer_first:
                break
    if best is None:
        raise InvalidRequest(f"no threshold meets {goal.describe()} on this calibration set")
    tau, chosen, qual, cost = best
    tau = float(np.clip(tau, 0.0, 1.0))
    report: dict[str, Any] = {
        "rows": len(estimates),
        "quality_source": "observed outcomes" if quality is not None else "router estimates",
        "weighted": weights is not None,
        "tier_shares": {t: float(np.average(chosen == i, weights=w)) for i, t in enumerate(tiers)},
        "quality": qual,
        "quality_all_strongest": top,
        "quality_ratio": qual / top if top > 0 else None,
    }
    if cost is not None:
        report["cost_per_1k_requests"] = cost
    return Profile(name, {t: tau for t in tiers[:-1]}, goal.describe(), report)


def _tier_costs(tiers: Sequence[str], goal: Goal) -> FloatArray | None:
    if goal.tier_costs_per_1k is None:
        if goal.max_cost_per_1k is not None:
            raise InvalidRequest("--max-cost-per-1k-requests needs a cost for every tier")
        return None
    missing = [t for t in tiers if goal.tier_costs_per_1k.get(t) is None]
    if missing:
        raise InvalidRequest(f"no cost given for tier(s): {', '.join(missing)}")
    return np.array([float(goal.tier_costs_per_1k[t]) / 1000 for t in tiers])
