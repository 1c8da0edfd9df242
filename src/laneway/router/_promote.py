"""The held-out check of a trained router and the promotion gate.

``router train`` holds out one row in ``modulus`` (by a hash of the row's id, or of
its prompt when it has none) and records the rule in ``router.json``; the check
scores those rows only. A row's pair is the cheapest and the strongest tier of the
candidate's mapping (each tier's mean outcome); methods are ranked by APGR with
paired bootstrap intervals. ``laneway router promote`` refuses a candidate whose
APGR is below the active router's or prompt length's on the held-out rows.

APGR divides by the gap between the strongest and the cheapest tier: where the
strongest tier is not better on the rows checked, it ranks routers backwards, and
where the tiers differ on a handful of rows only, it is noise. The check refuses both
(at least ``MIN_DIFFERING_ROWS`` rows whose two outcomes differ).
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
    "MIN_DIFFERING_ROWS",
    "HeldOutCheck",
    "compare",
    "gain_scores",
    "held_out",
    "held_out_check",
    "holdout_key",
    "prompt_groups",
]

FloatArray = npt.NDArray[np.float64]
DEFAULT_HOLDOUT_MODULUS = 10
# Rows where the cheapest and the strongest tier's outcomes differ: only those move APGR.
MIN_DIFFERING_ROWS = 10


def holdout_key(row: Mapping[str, Any]) -> str:
    if row.get("id") is not None:
        return f"id:{row['id']}"
    conv = row["conversation"]
    return f"text:{conv.system}\x00{conv.last_user}"


def held_out(row: Mapping[str, Any], modulus: int) -> bool:
    # surrogatepass: a lone surrogate (a "\ud83d" cut from an emoji in a log export)
    # hashes instead of raising; every other string hashes as before.
    key = holdout_key(row).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(key, digest_size=4).digest()
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
    means: tuple[float, float] = (float("nan"), float("nan"))  # mean outcome (cheap, strong)
    differing: int = 0  # rows whose two outcomes differ
    label: str = "held-out rows"

    def lines(self) -> list[str]:
        out = [
            f"{self.label}: {self.rows} ({self.differing} where the tiers' outcomes differ); "
            f"pair {self.pair[1]} over {self.pair[0]} (mean outcome {self.means[1]:.3f} vs "
            f"{self.means[0]:.3f})"
        ]
        for name, m in self.metrics.items():
            out.append(f"  {name:10s} APGR {m.apgr:.3f}  CPT(50%) {m.cpt50:.3f}")
        for name, (d, lo, hi) in self.versus.items():
            out.append(f"  {name:22s} {d:+.3f} [{lo:+.3f}, {hi:+.3f}] (paired 95% bootstrap)")
        return out


def prompt_groups(rows: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.intp]:
    """One group number per row: rows with the same system prompt and last user message
    share one (the same prompt under several ids, or several cheap answers to it)."""
    seen: dict[str, int] = {}
    keys = [f"{r['conversation'].system}\x00{r['conversation'].last_user}" for r in rows]
    return np.array([seen.setdefault(k, len(seen)) for k in keys], dtype=np.intp)


def _paired(
    a: FloatArray,
    b: FloatArray,
    strong: FloatArray,
    weak: FloatArray,
    rounds: int,
    groups: npt.NDArray[np.intp] | None = None,
) -> tuple[float, float, float]:
    """APGR(a) − APGR(b) and its paired percentile 95% interval. With ``groups``, whole
    groups are resampled (rows of one prompt are not independent: resampling them one by
    one drew intervals too narrow)."""
    rng = np.random.default_rng(0)
    n = len(a)
    members: list[npt.NDArray[np.intp]] | None = None
    if groups is not None and int(groups.max(initial=-1)) + 1 < n:
        order = np.argsort(groups, kind="stable")
        members = np.split(order, np.flatnonzero(np.diff(groups[order])) + 1)
    diffs = np.empty(rounds)
    for r in range(rounds):
        if members is None:
            i = rng.integers(0, n, n)
        else:
            i = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
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
    if not rows:
        raise InvalidRequest("no held-out rows to check the router on")
    try:
        targets = targets_for(rows, candidate.tier_models, candidate.tiers)
    except ValueError as exc:  # no row has outcomes of two of the router's tiers
        raise InvalidRequest(f"{exc} (the router maps {_mapping(candidate)})") from exc
    lo_i, hi_i = candidate.tiers.index(tiers[0]), candidate.tiers.index(tiers[-1])
    usable = np.isfinite(targets[:, lo_i]) & np.isfinite(targets[:, hi_i])
    kept = [r for r, u in zip(rows, usable, strict=True) if u]
    weak, strong = targets[usable, lo_i], targets[usable, hi_i]
    _check_comparable(tiers[0], tiers[-1], weak, strong)
    scores: dict[str, FloatArray] = {"candidate": gain_scores(candidate, kept)}
    if active is not None:
        scores["active"] = gain_scores(active, kept)
    scores["length"] = np.array([r["conversation"].total_chars for r in kept], dtype=np.float64)
    return compare(scores, kept, strong, weak, (tiers[0], tiers[-1]), rounds)


def compare(
    scores: Mapping[str, FloatArray],
    rows: Sequence[Mapping[str, Any]],
    strong: FloatArray,
    weak: FloatArray,
    pair: tuple[str, str],
    rounds: int,
    label: str = "held-out rows",
) -> HeldOutCheck:
    """APGR of each ordering in ``scores`` (the first is the one checked) on ``rows``,
    and the first minus each other, paired, a prompt's rows resampled together."""
    first = next(iter(scores))
    groups = prompt_groups(rows)
    versus = {
        f"{first} - {name}": _paired(scores[first], s, strong, weak, rounds, groups)
        for name, s in scores.items()
        if name != first
    }
    metrics = {name: pair_metrics(s, strong, weak) for name, s in scores.items()}
    means = (float(np.mean(weak)), float(np.mean(strong)))
    differing = int(np.sum(weak != strong))
    return HeldOutCheck(len(rows), pair, metrics, versus, means, differing, label)


def _mapping(scorer: Scorer) -> str:
    def models(names: Sequence[str]) -> str:
        return ",".join(names[:3]) + (f",… ({len(names)} models)" if len(names) > 3 else "")

    return "; ".join(f"{t}={models(m) or '-'}" for t, m in scorer.tier_models.items())


def _check_comparable(cheap: str, top: str, weak: FloatArray, strong: FloatArray) -> None:
    """Enough rows where the tiers differ, and the strongest tier better on average."""
    differing = int(np.sum(weak != strong))
    if differing < MIN_DIFFERING_ROWS:
        raise InvalidRequest(
            f"{len(weak)} held-out row(s) have outcomes for both {cheap} and {top}, "
            f"{differing} where they differ: need at least {MIN_DIFFERING_ROWS} such rows "
            "to compare routers (more outcome rows, or a smaller --holdout-every)"
        )
    if float(np.mean(strong)) <= float(np.mean(weak)):
        raise InvalidRequest(
            f"on the {len(weak)} held-out row(s) {top} is not better than {cheap} "
            f"(mean outcome {np.mean(strong):.3f} vs {np.mean(weak):.3f}): escalating "
            "gains nothing there, and APGR cannot rank routers"
        )
