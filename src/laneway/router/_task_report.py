"""``laneway router report``'s routing sections: profiles and per-task gains.

* per profile (from its calibration): the frontier share and expected quality;
* per task (from the ledger's ``auto`` requests): requests, the mean expected gain
  of escalating (the logged route score) and the share of each tier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ProfileSummary", "TaskSummary", "profile_summaries", "task_summaries"]


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    name: str
    max_loss: float
    frontier_share: float | None
    quality_ratio: float | None  # expected quality / all-strongest quality
    cascade: str | None
    rows: int | None = None  # calibration rows
    quality_source: str | None = None  # "observed outcomes" or "router estimates"


@dataclass(frozen=True, slots=True)
class TaskSummary:
    task: str  # "-" for requests without a task
    requests: int
    mean_gain: float | None
    tier_shares: Mapping[str, float]


def profile_summaries(router: Any) -> list[ProfileSummary]:
    """One line per profile of ``router`` (a ``Router``), cheapest routing first."""
    out: list[ProfileSummary] = []
    for name in router.profiles():
        p = router.profile(name)
        report: Mapping[str, Any] = p.report
        shares = report.get("tier_shares") or {}
        frontier = report.get("frontier_share", shares.get(router.scorer.tiers[-1]))
        ratio = report.get("quality_ratio")
        cascade = None
        if p.cascade is not None:
            checks = ",".join(c.name for c in p.cascade.checks)
            cascade = f"{p.cascade.from_tier}->{p.cascade.to_tier} [{checks}]"
        out.append(
            ProfileSummary(
                name,
                p.max_loss,
                None if frontier is None else float(frontier),
                None if ratio is None else float(ratio),
                cascade,
                int(report["rows"]) if isinstance(report.get("rows"), int) else None,
                str(report["quality_source"]) if report.get("quality_source") else None,
            )
        )
    return sorted(out, key=lambda s: (s.frontier_share is None, s.frontier_share or 0.0))


def task_summaries(engine: Any, since: datetime | None, tiers: Sequence[str]) -> list[TaskSummary]:
    """Per task, the ``auto`` API requests of the ledger (first attempts)."""
    import sqlalchemy as sa

    from laneway.ledger import LEDGER

    query = sa.select(LEDGER.c.task, LEDGER.c.tier, LEDGER.c.route_score).where(
        LEDGER.c.attempt == 0, LEDGER.c.source == "api", LEDGER.c.route_score.is_not(None)
    )
    if since is not None:
        query = query.where(LEDGER.c.ts >= since)
    counts: dict[str, dict[str, int]] = {}
    gains: dict[str, list[float]] = {}
    with engine.connect() as conn:
        for task, tier, score in conn.execute(query):
            key = task or "-"
            counts.setdefault(key, {})
            counts[key][tier or "-"] = counts[key].get(tier or "-", 0) + 1
            gains.setdefault(key, []).append(float(score))
    out = []
    for key, per_tier in counts.items():
        n = sum(per_tier.values())
        order = [t for t in tiers if t in per_tier] + sorted(set(per_tier) - set(tiers))
        values = gains[key]
        out.append(
            TaskSummary(
                key,
                n,
                sum(values) / len(values) if values else None,
                {t: per_tier[t] / n for t in order},
            )
        )
    return sorted(out, key=lambda s: -s.requests)
