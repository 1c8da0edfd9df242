"""The held-out check of a trained router and the promotion gate.

``router train`` holds out one row in ``modulus`` (by a hash of the row's id, or of
its prompt when it has none) and records the rule in ``router.json``; the check
scores those rows only. A row's pair is the cheapest and the strongest tier of the
candidate's mapping (each tier's mean outcome); methods are ranked by APGR with
paired bootstrap intervals. ``laneway router promote`` refuses a candidate whose
APGR is below the active router's or prompt length's on the held-out rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from laneway.errors import InvalidRequest
from laneway.router._fit import feature_matrix
from laneway.router._metrics import PairMetrics, pair_metrics
from laneway.router._scorer import Scorer
from laneway.router._training import targets_for

__all__ = [
    "DEFAULT_HOLDOUT_MODULUS",
    "HeldOutCheck",
    "gain_scores",
    "held_out",
    "held_out_check",
    "holdout_key",
]

FloatArray = npt.NDArray[np.float64]
DEFAULT_HOLDOUT_MODULUS = 10


def holdout_key(row: Mapping[str, Any]) -> str:
    if row.get("id") is not None:
        return f"id:{row['id']}"
    conv = row["conversation"]
    return f"text:{conv.system}\x00{conv.last_user}"


def held_out(row: Mapping[str, Any], modulus: int) -> bool:
    digest = hashlib.blake2b(holdout_key(row).encode(), digest_size=4).digest()
    return int.from_bytes(digest) % modulus == 0


def gain_scores(scorer: Scorer, rows: Sequence[Mapping[str, Any]]) -> FloatArray:
    x = feature_matrix([r["conversation"] for r in rows], scorer.embedder, scorer.use_embedding)
    est = scorer.predict_matrix(x, [r.get("task") for r in rows])
    return np.asarray(est[:, -1] - est[:, 0], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class HeldOutCheck:
    rows: int
    pair: tuple[str, str]  # (cheapest tier, strongest tier)
    metrics: Mapping[str, PairMetrics]  # method → metrics
    versus: Mapping[str, tuple[float, float, float]]  # "a - b" → (diff, lo, hi)

    def lines(self) -> list[str]:
        out = [f"held-out rows: {self.rows}; pair {self.pair[1]} over {self.pair[0]}"]
        for name, m in self.metrics.items():
            out.append(f"  {name:10s} APGR {m.apgr:.3f}  CPT(50%) {m.cpt50:.3f}")
        for name, (d, lo, hi) in self.versus.items():
            out.append(f"  {name:22s} {d:+.3f} [{lo:+.3f}, {hi:+.3f}] (paired 95% bootstrap)")
        return out


def _paired(
    a: FloatArray, b: FloatArray, strong: FloatArray, weak: FloatArray, rounds: int
) -> tuple[float, float, float]:
    rng = np.random.default_rng(0)
    n = len(a)
    diffs = np.empty(rounds)
    for r in range(rounds):
        i = rng.integers(0, n, n)
        diffs[r] = (
            pair_metrics(a[i], strong[i], weak[i]).apgr
            - pair_metrics(b[i], strong[i], weak[i]).apgr
        )
    d = pair_metrics(a, strong, weak).apgr - pair_metrics(b, strong, weak).apgr
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(d), float(lo), float(hi)


def held_out_check(
    candidate: Scorer,
    rows: Sequence[Mapping[str, Any]],
    active: Scorer | None = None,
    *,
    rounds: int = 300,
) -> HeldOutCheck:
    """Candidate (and active) gain scores against prompt length on ``rows``."""
    tiers = [
        t for t in candidate.tiers if t in candidate.meta.get("trained_tiers", candidate.tiers)
    ]
    if len(tiers) < 2:
        raise InvalidRequest("the candidate router has fewer than two trained tiers")
    targets = targets_for(rows, candidate.tier_models, candidate.tiers) if rows else None
    lo_i, hi_i = candidate.tiers.index(tiers[0]), candidate.tiers.index(tiers[-1])
    if targets is None:
        raise InvalidRequest("no held-out rows to check the router on")
    usable = np.isfinite(targets[:, lo_i]) & np.isfinite(targets[:, hi_i])
    kept = [r for r, u in zip(rows, usable, strict=True) if u]
    if len(kept) < 10:
        raise InvalidRequest(
            f"only {len(kept)} held-out row(s) have outcomes for both {tiers[0]} and "
            f"{tiers[-1]}: need at least 10 to compare routers"
        )
    weak, strong = targets[usable, lo_i], targets[usable, hi_i]
    scores: dict[str, FloatArray] = {"candidate": gain_scores(candidate, kept)}
    if active is not None:
        scores["active"] = gain_scores(active, kept)
    scores["length"] = np.array([r["conversation"].total_chars for r in kept], dtype=np.float64)
    metrics = {name: pair_metrics(s, strong, weak) for name, s in scores.items()}
    versus = {
        f"candidate - {name}": _paired(scores["candidate"], s, strong, weak, rounds)
        for name, s in scores.items()
        if name != "candidate"
    }
    return HeldOutCheck(len(kept), (tiers[0], tiers[-1]), metrics, versus)
