"""Drift state in the database (tables of ledger migration 5): the pinned baseline run of
each canary target, every signal checked, and the Prometheus gauges computed from them.

Gauges (the latest check of each target and signal):

* ``laneway_drift_alarm{target, signal}``: 1 when the signal is in alarm, else 0;
* ``laneway_drift_p_value{target, signal}``: its p-value (signals with a test);
* ``laneway_drift_last_check_timestamp_seconds{target}``: when the target was checked.

:class:`DriftCollector` is a ``prometheus_client`` collector over them: register it in
the registry ``/metrics`` renders (``registry.register(DriftCollector(engine))``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from laneway.evals._drift import DriftReport
from laneway.ledger import UtcDateTime

__all__ = [
    "BASELINES",
    "SIGNALS",
    "DriftCollector",
    "DriftGauge",
    "drift_gauges",
    "pin_baseline",
    "pinned_baseline",
    "save_report",
]

_META = sa.MetaData()
BASELINES = sa.Table(
    "drift_baselines",
    _META,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("pinned_at", UtcDateTime(), nullable=False),
)
SIGNALS = sa.Table(
    "drift_signals",
    _META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ts", UtcDateTime(), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("signal", sa.Text, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("p_value", sa.Float),
    sa.Column("baseline", sa.Text),
    sa.Column("recent", sa.Text),
    sa.Column("alarm", sa.Boolean, nullable=False),
    sa.Column("run_id", sa.Text),
)


def pinned_baseline(engine: sa.Engine, target: str) -> str | None:
    """The run id pinned as ``target``'s baseline, if any."""
    query = sa.select(BASELINES.c.run_id).where(BASELINES.c.target == target)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one_or_none()


def pin_baseline(engine: sa.Engine, target: str, run_id: str) -> None:
    """Pin ``run_id`` as ``target``'s baseline (replacing an earlier pin)."""
    with engine.begin() as conn:
        conn.execute(BASELINES.delete().where(BASELINES.c.target == target))
        conn.execute(
            BASELINES.insert().values(target=target, run_id=run_id, pinned_at=datetime.now(UTC))
        )


def save_report(engine: sa.Engine, report: DriftReport, run_id: str | None = None) -> None:
    """Store every signal of ``report`` (the gauges read the latest ones)."""
    now = datetime.now(UTC)
    rows = [
        {
            "ts": now,
            "target": report.target,
            "signal": s.signal,
            "method": s.method,
            "p_value": s.p_value,
            "baseline": s.baseline,
            "recent": s.recent,
            "alarm": s.alarm,
            "run_id": run_id,
        }
        for s in report.signals
    ]
    if rows:
        with engine.begin() as conn:
            conn.execute(SIGNALS.insert(), rows)


@dataclass(frozen=True, slots=True)
class DriftGauge:
    target: str
    signal: str
    alarm: bool
    p_value: float | None
    checked_at: datetime


def drift_gauges(engine: sa.Engine) -> list[DriftGauge]:
    """The latest check of every (target, signal), ordered by target then signal."""
    latest = (
        sa.select(sa.func.max(SIGNALS.c.id).label("id"))
        .group_by(SIGNALS.c.target, SIGNALS.c.signal)
        .subquery()
    )
    query = (
        sa.select(SIGNALS)
        .join(latest, SIGNALS.c.id == latest.c.id)
        .order_by(SIGNALS.c.target, SIGNALS.c.signal)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        DriftGauge(r["target"], r["signal"], bool(r["alarm"]), r["p_value"], r["ts"]) for r in rows
    ]


class DriftCollector:
    """A ``prometheus_client`` collector of the drift gauges, read from the database at
    most every ``ttl_s`` seconds (a scrape never waits on more than one small query)."""

    def __init__(self, engine: sa.Engine, ttl_s: float = 30.0) -> None:
        self.engine, self.ttl_s = engine, ttl_s
        self._cache: tuple[float, list[DriftGauge]] | None = None

    def _gauges(self) -> list[DriftGauge]:
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] >= self.ttl_s:
            try:
                self._cache = (now, drift_gauges(self.engine))
            except sa.exc.SQLAlchemyError:
                return self._cache[1] if self._cache else []
        return self._cache[1]

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        gauges = self._gauges()
        alarm = GaugeMetricFamily(
            "laneway_drift_alarm",
            "1 when the latest drift check of this signal raised an alarm",
            labels=["target", "signal"],
        )
        p_value = GaugeMetricFamily(
            "laneway_drift_p_value",
            "p-value of the latest drift test of this signal",
            labels=["target", "signal"],
        )
        checked = GaugeMetricFamily(
            "laneway_drift_last_check_timestamp_seconds",
            "Unix time of the latest drift check of this target",
            labels=["target"],
        )
        last: dict[str, float] = {}
        for g in gauges:
            alarm.add_metric([g.target, g.signal], 1.0 if g.alarm else 0.0)
            if g.p_value is not None:
                p_value.add_metric([g.target, g.signal], g.p_value)
            last[g.target] = max(last.get(g.target, 0.0), g.checked_at.timestamp())
        for target, ts in sorted(last.items()):
            checked.add_metric([target], ts)
        yield from (alarm, p_value, checked)
