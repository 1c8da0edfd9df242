"""``laneway advise --from-ledger``: a workload profile built from real traffic.

Only ``source == "api"`` rows count (eval traffic is excluded). Per tier: requests per day
from request rows, tokens per request from attempt rows (``usage_summary``'s rules), the
cached share of input; the hourly shape from request timestamps; escalation rate (share of
requests in the frontier tier), fallback rate, the share of requests marked sensitive in
their audit data, and latency p50/p95.

Requests the gateway's audit marked sensitive get their own lane per tier (a task with
``sensitive``: its data never leaves our infrastructure, so only self-hosting may serve it),
split from the tier by its share of requests. The ledger's observed cost is compared with
the model's estimate for the same traffic as routed today (tokens x the catalog price of the
model each tier mostly used).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from laneway.advisor._workload import OpsCapacity, Sensitivity, Task, Traffic, Workload
from laneway.ledger import LEDGER, usage_summary

__all__ = ["workload_from_ledger"]

_DAY = timedelta(days=1)


def _requests(engine: sa.Engine, since: datetime | None) -> list[Any]:
    c = LEDGER.c
    query = sa.select(c.ts, c.tier, c.fallbacks, c.audit, c.model_id).where(
        c.attempt == 0, c.source == "api"
    )
    if since is not None:
        query = query.where(c.ts >= since)
    with engine.connect() as conn:
        return list(conn.execute(query))


def _sensitive(audit: object) -> bool:
    return isinstance(audit, dict) and audit.get("sensitive") is True


def _shape(rows: list[Any]) -> Traffic:
    hours = Counter(row.ts.hour for row in rows)
    profile = tuple(Decimal(hours.get(h, 0)) for h in range(24))
    mean = sum(profile, Decimal(0)) / 24
    if mean == 0:
        return Traffic(peak_to_mean=Decimal(1))
    return Traffic(peak_to_mean=max(profile) / mean, hourly=profile)


def _tasks(groups: list[Any], rows: list[Any], days: Decimal) -> list[Task]:
    """One task per tier, split into a sensitive lane by the share of audit-marked requests."""
    tasks: list[Task] = []
    marked = Counter((r.tier or "standard") for r in rows if _sensitive(r.audit))
    for g in groups:
        n = Decimal(g.requests)
        tier = g.key or "standard"
        secret = Decimal(min(marked.get(tier, 0), g.requests))
        base = Task(
            name=f"ledger:{tier}",
            tier=tier,
            requests_per_day=(n - secret) / days,
            input_tokens=Decimal(g.prompt_tokens) / n,
            output_tokens=Decimal(g.completion_tokens) / n,
            cached_fraction=(
                Decimal(g.cached_tokens) / Decimal(g.prompt_tokens)
                if g.prompt_tokens
                else Decimal(0)
            ),
            needs=("frontier_reasoning",) if tier == "frontier" else (),
        )
        if secret < n:
            tasks.append(base)
        if secret:
            tasks.append(
                replace(
                    base,
                    name=f"ledger:{tier}:sensitive",
                    requests_per_day=secret / days,
                    sensitive=True,
                )
            )
    return tasks


def _observed_cost(groups: list[Any], rows: list[Any], days: Decimal) -> dict[str, object]:
    """The ledger's cost per month against tokens x the catalog price of the model each
    tier mostly used (the model's estimate of the same traffic as routed today)."""
    from laneway.advisor._tco import Load, api_cost_per_day
    from laneway.catalog import default_catalog

    catalog = default_catalog()
    used: dict[str, Counter[str]] = {}
    for r in rows:
        if r.model_id:
            used.setdefault(r.tier or "standard", Counter())[r.model_id] += 1
    observed = Decimal(0)
    estimate: Decimal | None = Decimal(0)
    unknown = 0
    for g in groups:
        tier = g.key or "standard"
        observed += g.cost_known_usd
        unknown += g.cost_unknown_requests
        top = used.get(tier, Counter()).most_common(1)
        model = catalog.get(top[0][0]) if top else None
        load = Load(
            Decimal(g.requests),
            Decimal(g.prompt_tokens),
            Decimal(g.completion_tokens),
            Decimal(g.cached_tokens),
            Decimal(1),
            Decimal(30),
        )
        costs = [
            c
            for p in (model.prices if model else ())
            if (price := model.price_for(p.provider)) is not None  # type: ignore[union-attr]
            and (price.input_per_mtok or price.output_per_mtok)
            and (c := api_cost_per_day(load, price)) is not None
        ]
        if not costs or estimate is None:
            estimate = None
        else:
            estimate += min(costs)
    month = Decimal(30) / days
    return {
        "observed_monthly_usd": str((observed * month).quantize(Decimal("0.01"))),
        "observed_unknown_cost_requests": unknown,
        "estimated_monthly_usd": None
        if estimate is None
        else str((estimate * month).quantize(Decimal("0.01"))),
        "estimate_basis": "tokens x the catalog price of the model each tier mostly used",
    }


def workload_from_ledger(
    engine: sa.Engine,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
    ops_capacity: OpsCapacity = "none",
    data_sensitivity: Sensitivity | None = None,
) -> Workload:
    """The profile of the API traffic in the ledger since ``since`` (all of it if ``None``).
    Days = ``now - since``, or the span of the rows (at least one day)."""
    rows = _requests(engine, since)
    groups = [g for g in usage_summary(engine, since=since, by="tier", source="api") if g.requests]
    if since is not None:
        span = (now or datetime.now(UTC)) - since
    elif rows:
        span = max(r.ts for r in rows) - min(r.ts for r in rows)
    else:
        span = _DAY
    days = Decimal(str(max(span, _DAY).total_seconds())) / Decimal(86_400)
    tasks = _tasks(groups, rows, days)
    total = len(rows)
    sensitive = sum(_sensitive(r.audit) for r in rows)
    share = Decimal(sensitive) / total if total else Decimal(0)
    sensitivity: Sensitivity = data_sensitivity or "none"
    p95 = max((g.latency_p95_ms for g in groups if g.latency_p95_ms is not None), default=None)
    observed: dict[str, object] = {
        "days": str(days),
        "requests": total,
        "prompt_tokens": sum(g.prompt_tokens for g in groups),
        "completion_tokens": sum(g.completion_tokens for g in groups),
        "cached_tokens": sum(g.cached_tokens for g in groups),
        "escalation_rate": str(
            Decimal(sum(g.requests for g in groups if g.key == "frontier")) / total
        )
        if total
        else None,
        "fallback_rate": str(Decimal(sum(1 for r in rows if r.fallbacks)) / total)
        if total
        else None,
        "sensitive_share": str(share),
        "latency_p50_ms": {g.key: g.latency_p50_ms for g in groups},
        "latency_p95_ms": {g.key: g.latency_p95_ms for g in groups},
        **_observed_cost(groups, rows, days),
    }
    if not tasks:
        from laneway.errors import InvalidRequest

        window = "" if since is None else f" since {since:%Y-%m-%d %H:%M} UTC"
        hint = "" if since is None else "; widen --since (or 'all')"
        raise InvalidRequest(
            f"the ledger has no API requests{window} (eval and shadow traffic are not "
            f"counted){hint}: nothing to advise on"
        )
    return Workload(
        name="ledger",
        tasks=tuple(tasks),
        traffic=_shape(rows),
        latency_slo_ms=Decimal(str(p95)) if p95 is not None else None,
        data_sensitivity=sensitivity,
        ops_capacity=ops_capacity,
        observed=observed,
    )
