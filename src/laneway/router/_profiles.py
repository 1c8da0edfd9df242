"""Routing profiles and their calibration.

A profile holds ``max_loss``: the router picks the cheapest tier whose expected
quality loss against the strongest tier, P(strongest ok) − P(tier ok), is at most
``max_loss`` (the strongest tier's loss is 0, so it is always eligible). The value
is never typed by hand: ``calibrate`` searches the loss target that meets a goal on
a calibration set — a share of strongest-tier calls, a floor on quality relative to
sending everything to the strongest tier, or a cost per 1,000 requests. A profile
may also carry a ``cascade`` (see ``_cascade``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from laneway.errors import ConfigError, InvalidRequest
from laneway.router._cascade import CascadeSpec, parse_cascade

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
    max_loss: float
    method: str = ""
    report: Mapping[str, Any] = field(default_factory=dict)
    cascade: CascadeSpec | None = None

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "name": self.name,
            "max_loss": self.max_loss,
            "method": self.method,
            "calibration": dict(self.report),
        }
        if self.cascade is not None:
            body["cascade"] = self.cascade.to_dict()
        return json.dumps(body, indent=2) + "\n"

    def with_cascade(self, cascade: CascadeSpec | None) -> Profile:
        return Profile(self.name, self.max_loss, self.method, self.report, cascade)

    @classmethod
    def from_file(cls, path: Path) -> Profile:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            if "max_loss" not in body and "thresholds" in body:
                raise ConfigError(
                    f"routing profile {path} is from router v1 (per-tier thresholds): "
                    "recalibrate it with `laneway router calibrate`"
                )
            max_loss = float(body["max_loss"])
            cascade = parse_cascade(body["cascade"]) if body.get("cascade") else None
        except ConfigError as exc:
            raise ConfigError(f"invalid routing profile {path}: {exc.message}") from exc
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"invalid routing profile {path}: {exc}") from exc
        if not math.isfinite(max_loss):
            raise ConfigError(f"invalid routing profile {path}: max_loss must be finite")
        return cls(
            str(body.get("name", path.stem)),
            max_loss,
            str(body.get("method", "")),
            body.get("calibration", {}),
            cascade,
        )


def load_profiles(directory: Path) -> dict[str, Profile]:
    """The profiles in ``directory``, each named by its file (``auto:NAME`` selects
    ``NAME.json``; a copy of ``default.json`` saved as ``strict.json`` still says
    ``"name": "default"`` inside, and decisions and the ledger would report it so)."""
    profiles: dict[str, Profile] = {}
    if directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            profile = Profile.from_file(path)
            if profile.name != path.stem:
                profile = dataclasses.replace(profile, name=path.stem)
            profiles[path.stem] = profile
    return profiles


def choose_tiers(losses: FloatArray, max_loss: float) -> npt.NDArray[np.intp]:
    """Index of the chosen tier per row: the cheapest whose loss is at most
    ``max_loss``, else the last (``losses``: P(strongest ok) − P(tier ok))."""
    n, tiers = losses.shape
    chosen = np.full(n, tiers - 1, dtype=np.intp)
    for t in range(tiers - 2, -1, -1):
        chosen = np.where(losses[:, t] <= max_loss, t, chosen)
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


def losses_of(estimates: FloatArray) -> FloatArray:
    """Expected quality loss of each tier against the strongest (last) tier."""
    return np.asarray(estimates[:, -1:] - estimates, dtype=np.float64)


def _candidates(losses: FloatArray) -> FloatArray:
    values = np.unique(losses[:, :-1])
    if len(values) > 2000:
        values = np.unique(np.quantile(values, np.linspace(0, 1, 2000)))
    return np.concatenate([values[::-1], [-np.inf]])


def _evaluate(
    losses: FloatArray, quality: FloatArray, costs: FloatArray | None, tau: float, w: FloatArray
) -> tuple[npt.NDArray[np.intp], float, float | None]:
    chosen = choose_tiers(losses, tau)
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
    """Search the largest loss target (the cheapest routing) meeting ``goal``.

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
    losses = losses_of(estimates)
    best: tuple[float, npt.NDArray[np.intp], float, float | None] | None = None
    # Candidates run from the cheapest routing (largest loss allowed) to all-strongest.
    for tau in _candidates(losses):
        chosen, qual, cost = _evaluate(losses, q, costs, float(tau), w)
        share = float(np.average(chosen == len(tiers) - 1, weights=w))
        if goal.strong_share is not None:
            ok = share <= goal.strong_share + 1e-12
            keep_going = ok  # the most quality within the share: the last that fits
        elif goal.quality_floor is not None:
            ok, keep_going = qual >= goal.quality_floor * top - 1e-12, False
        else:
            ok = cost is not None and cost <= float(goal.max_cost_per_1k or 0)
            keep_going = ok
        if ok:
            best = (float(tau), chosen, qual, cost)
            if not keep_going:
                break
        elif best is not None:
            break
    if best is None:
        raise InvalidRequest(f"no routing meets {goal.describe()} on this calibration set")
    tau, chosen, qual, cost = best
    tau = float(np.clip(_midway(losses, tau), -1.0, 1.0))
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
    report["frontier_share"] = report["tier_shares"][tiers[-1]]
    return Profile(name, tau, goal.describe(), report)


def _midway(losses: FloatArray, tau: float) -> float:
    """Midway from ``tau`` (a loss of the calibration set) to the next loss above it: the
    calibration set routes the same for either, and a prompt scored a hair above ``tau``
    (the same wording, a few characters longer) is not sent the other way."""
    if not np.isfinite(tau):
        return tau
    cheap = losses[:, :-1]
    above = cheap[cheap > tau]
    return (tau + float(above.min())) / 2 if above.size else tau


def _tier_costs(tiers: Sequence[str], goal: Goal) -> FloatArray | None:
    if goal.tier_costs_per_1k is None:
        if goal.max_cost_per_1k is not None:
            raise InvalidRequest("--max-cost-per-1k-requests needs a cost for every tier")
        return None
    missing = [t for t in tiers if goal.tier_costs_per_1k.get(t) is None]
    if missing:
        raise InvalidRequest(f"no cost given for tier(s): {', '.join(missing)}")
    return np.array([float(goal.tier_costs_per_1k[t]) / 1000 for t in tiers])
