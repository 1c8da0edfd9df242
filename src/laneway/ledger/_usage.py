"""Usage queries over the ledger: totals per deployment, tier, key, day or model.

Counting rules (so nothing is counted twice):

* requests, errors, latency and TTFT come from the summary rows (``attempt == 0``);
* tokens and cost come from the attempt rows (``attempt >= 1``: what actually ran and what
  the providers bill, failed attempts included); a request without attempt rows (answered
  by its one and only call, or refused before any call) uses the tokens and cost of its
  summary row, which then also counts as one attempt when it names a deployment;
* when grouping by deployment, each attempt counts for its own deployment and each request
  for the deployment that answered it; for the other groupings an attempt goes wherever its
  request goes.

Self-hosted cost: a row with no ``cost_usd`` but an ``hourly_cost_usd`` costs
``hourly × row_tokens ÷ tokens the deployment served in that UTC hour`` (spend rows of
every source, since eval traffic uses the same GPU hour). Idle hours are not in the ledger
and so are not charged to anyone. Percentiles interpolate linearly between ranks.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa

from laneway.errors import InvalidRequest
from laneway.ledger._money import nusd_to_usd
from laneway.ledger._pricing import amortised_cost
from laneway.ledger._schema import LEDGER, to_utc

__all__ = [
    "GROUP_BY",
    "GroupBy",
    "UsageGroup",
    "parse_since",
    "percentile",
    "request_costs",
    "usage_summary",
]

GroupBy = Literal["deployment", "tier", "key", "day", "model"]
GROUP_BY: tuple[GroupBy, ...] = ("deployment", "tier", "key", "day", "model")

_HOUR = timedelta(hours=1)
_CHUNK = 500
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_COLUMNS = (
    "request_id", "attempt", "ts", "key_id", "requested_model", "tier", "deployment",
    "prompt_tokens", "completion_tokens", "cached_tokens", "cost_nusd", "hourly_cost_nusd",
    "latency_ms", "ttft_ms", "status", "error_kind",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """Totals for one group. ``cost_usd`` is ``None`` when any request in it has an unknown
    cost; ``cost_known_usd`` is the sum of what is known and ``cost_unknown_requests`` says
    how many requests are missing from it."""

    by: str
    key: str | None
    requests: int
    errors: int
    error_rate: float | None
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: Decimal | None
    cost_known_usd: Decimal
    cost_unknown_requests: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttft_p50_ms: float | None
    first_at: datetime | None
    last_at: datetime | None


@dataclass(slots=True)
class _Acc:
    requests: int = 0
    errors: int = 0
    attempts: int = 0
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    cost: Decimal = field(default_factory=Decimal)
    unknown: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None

    def seen(self, ts: datetime) -> None:
        self.first = ts if self.first is None or ts < self.first else self.first
        self.last = ts if self.last is None or ts > self.last else self.last

    def add_spend(self, row: Any, cost: Decimal | None) -> None:
        self.prompt += row.prompt_tokens or 0
        self.completion += row.completion_tokens or 0
        self.cached += row.cached_tokens or 0
        if cost is None:
            self.unknown.add(row.request_id)
        else:
            self.cost += cost


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``"24h"``, ``"30d"``, ``"90m"``, ``"2w"``, ``"45s"`` ago, or an ISO-8601 date or time
    (a date means its midnight UTC; a time without offset is UTC). Raises ``InvalidRequest``."""
    reference = to_utc(now) if now is not None else datetime.now(UTC)
    match = _SPAN.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        try:
            return reference - timedelta(**{_UNITS[unit]: amount})
        except OverflowError:  # further back than the calendar goes: all of it
            return datetime.min.replace(tzinfo=UTC)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            parsed = datetime.combine(date.fromisoformat(text.strip()), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(
            f"cannot read {text!r} as a time: use a span like 24h, 30d, 90m, 2w "
            "or an ISO-8601 date or time like 2026-01-31 or 2026-01-31T12:00:00Z",
            param="since",
        ) from None
    return to_utc(parsed)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _row_tokens(row: Any) -> int | None:
    if row.prompt_tokens is None and row.completion_tokens is None:
        return None
    return int(row.prompt_tokens or 0) + int(row.completion_tokens or 0)


def _hour_totals(
    conn: sa.Connection, needed: set[tuple[str, datetime]]
) -> dict[tuple[str, datetime], int]:
    """Tokens served per (deployment, UTC hour) by the spend rows of every source."""
    hours: dict[str, set[datetime]] = defaultdict(set)
    for deployment, hour in needed:
        hours[deployment].add(hour)
    totals: dict[tuple[str, datetime], int] = defaultdict(int)
    c = LEDGER.c
    for deployment, wanted in hours.items():
        query = sa.select(
            c.request_id, c.attempt, c.ts, c.prompt_tokens, c.completion_tokens
        ).where(
            c.deployment == deployment,
            c.ts >= min(wanted),
            c.ts < max(wanted) + _HOUR,
        )
        for row in _spend_rows(list(conn.execute(query))):
            hour = _hour(row.ts)
            if hour in wanted:
                totals[(deployment, hour)] += _row_tokens(row) or 0
    return totals


def _costs(conn: sa.Connection, rows: Sequence[Any]) -> list[Decimal | None]:
    """Each row's cost: its own price, else its share of the hourly cost, else ``None``."""
    needed = {
        (row.deployment, _hour(row.ts))
        for row in rows
        if row.cost_nusd is None and row.hourly_cost_nusd is not None and row.deployment
    }
    totals = _hour_totals(conn, needed) if needed else {}
    costs: list[Decimal | None] = []
    for row in rows:
        if row.cost_nusd is not None:
            costs.append(nusd_to_usd(row.cost_nusd))
        elif row.hourly_cost_nusd is not None and row.deployment:
            total = totals.get((row.deployment, _hour(row.ts)))
            costs.append(amortised_cost(nusd_to_usd(row.hourly_cost_nusd), _row_tokens(row), total))
        else:
            costs.append(None)
    return costs


def _spend_rows(rows: Sequence[Any]) -> list[Any]:
    """The rows that carry tokens and cost: attempts, or the summary of a request without."""
    with_attempts = {row.request_id for row in rows if row.attempt >= 1}
    return [row for row in rows if row.attempt >= 1 or row.request_id not in with_attempts]


def _group_value(row: Any, by: GroupBy) -> str | None:
    if by == "day":
        return str(row.ts.date().isoformat())
    attribute = {"deployment": "deployment", "tier": "tier", "key": "key_id"}.get(
        by, "requested_model"
    )
    value = getattr(row, attribute)
    return None if value is None else str(value)


def _select_rows(conn: sa.Connection, since: datetime | None, source: str | None) -> list[Any]:
    c = LEDGER.c
    query = sa.select(*(c[name] for name in _COLUMNS))
    if since is not None:
        query = query.where(c.ts >= to_utc(since))
    if source is not None:
        query = query.where(c.source == source)
    return list(conn.execute(query))


def _accumulate(
    rows: Sequence[Any], costs: Sequence[Decimal | None], by: GroupBy, summaries: dict[str, Any]
) -> dict[str | None, _Acc]:
    groups: dict[str | None, _Acc] = defaultdict(_Acc)
    for summary in summaries.values():
        acc = groups[_group_value(summary, by)]
        acc.requests += 1
        acc.errors += int(summary.status >= 400 or summary.error_kind is not None)
        acc.seen(summary.ts)
        if summary.latency_ms is not None:
            acc.latencies.append(float(summary.latency_ms))
        if summary.ttft_ms is not None:
            acc.ttfts.append(float(summary.ttft_ms))
    for row, cost in zip(rows, costs, strict=True):
        owner = summaries.get(row.request_id)
        placed_by = row if by == "deployment" or owner is None else owner
        acc = groups[_group_value(placed_by, by)]
        acc.attempts += int(row.attempt >= 1 or row.deployment is not None)
        acc.seen(row.ts)
        acc.add_spend(row, cost)
    return groups


def _finish(by: GroupBy, key: str | None, acc: _Acc) -> UsageGroup:
    return UsageGroup(
        by=by,
        key=key,
        requests=acc.requests,
        errors=acc.errors,
        error_rate=acc.errors / acc.requests if acc.requests else None,
        attempts=acc.attempts,
        prompt_tokens=acc.prompt,
        completion_tokens=acc.completion,
        cached_tokens=acc.cached,
        cost_usd=None if acc.unknown else acc.cost,
        cost_known_usd=acc.cost,
        cost_unknown_requests=len(acc.unknown),
        latency_p50_ms=percentile(acc.latencies, 50),
        latency_p95_ms=percentile(acc.latencies, 95),
        ttft_p50_ms=percentile(acc.ttfts, 50),
        first_at=acc.first,
        last_at=acc.last,
    )


def usage_summary(
    engine: sa.Engine,
    *,
    since: datetime | None = None,
    by: GroupBy = "deployment",
    source: str | None = "api",
) -> list[UsageGroup]:
    """Usage per group since ``since`` (all time when ``None``) for ``source`` (``None``:
    every source). Days are sorted in order, other groups by requests, most first."""
    if by not in GROUP_BY:
        raise InvalidRequest(f"cannot group by {by!r}: use one of {', '.join(GROUP_BY)}")
    with engine.connect() as conn:
        rows = _select_rows(conn, since, source)
        spend = _spend_rows(rows)
        costs = _costs(conn, spend)
    summaries = {row.request_id: row for row in rows if row.attempt == 0}
    groups = _accumulate(spend, costs, by, summaries)
    result = [_finish(by, key, acc) for key, acc in groups.items()]
    if by == "day":
        return sorted(result, key=lambda g: g.key or "")
    return sorted(result, key=lambda g: (-g.requests, g.key is None, g.key or ""))


def request_costs(engine: sa.Engine, request_ids: Iterable[str]) -> dict[str, Decimal | None]:
    """The cost of each request found (``None`` when unknown); absent ids are left out."""
    ids = list(dict.fromkeys(request_ids))
    c = LEDGER.c
    rows: list[Any] = []
    with engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            query = sa.select(*(c[name] for name in _COLUMNS)).where(
                c.request_id.in_(ids[start : start + _CHUNK])
            )
            rows.extend(conn.execute(query))
        spend = _spend_rows(rows)
        costs = _costs(conn, spend)
    result: dict[str, Decimal | None] = {}
    for row, cost in zip(spend, costs, strict=True):
        if row.request_id not in result:
            result[row.request_id] = cost
        else:
            known = result[row.request_id]
            result[row.request_id] = None if known is None or cost is None else known + cost
    return result
