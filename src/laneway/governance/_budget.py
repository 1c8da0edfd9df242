"""Budgets (reserve before the call, settle after) and rate limits, kept in the database.

Every function here runs inside a write transaction that the caller opened with the
database's write lock (SQLite ``BEGIN IMMEDIATE``), so the read-check-write steps of one
worker never interleave with another's. Money is integer nano-dollars in the database.

Budget invariant: a reservation is taken only while ``spent + reserved + amount <= budget``
(one conditional ``UPDATE``), and a settled request never costs more than it reserved unless
the upstream reported more tokens than the request's maximum. So concurrent requests cannot
together overspend, whatever the number of threads and processes.

Rate limits use a sliding-window counter over 60 s: the current fixed minute plus the previous
minute weighted by how much of it still overlaps the last 60 s.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from laneway.errors import BudgetExceeded, RateLimited
from laneway.governance._keys import KeyRecord, Period
from laneway.ledger import UtcDateTime, format_usd, nusd_to_usd, usd_to_nusd

__all__ = [
    "RATE",
    "RESERVATIONS",
    "SPEND",
    "WINDOW_S",
    "BudgetStatus",
    "Reservation",
    "add_tokens",
    "insert_ignore",
    "period_bounds",
    "rate_wait",
    "read_status",
    "reserve",
    "settle",
    "take_rate",
]

WINDOW_S = 60


def _tables() -> tuple[sa.Table, sa.Table, sa.Table]:
    meta = sa.MetaData()
    spend = sa.Table(
        "gov_spend",
        meta,
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("period_start", UtcDateTime(), primary_key=True),
        sa.Column("spent_nusd", sa.BigInteger, nullable=False),
        sa.Column("reserved_nusd", sa.BigInteger, nullable=False),
    )
    reservations = sa.Table(
        "gov_reservations",
        meta,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("period_start", UtcDateTime(), nullable=False),
        sa.Column("amount_nusd", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
    )
    rate = sa.Table(
        "gov_rate",
        meta,
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
    )
    return spend, reservations, rate


SPEND, RESERVATIONS, RATE = _tables()


@dataclass(slots=True)
class Reservation:
    """Money set aside for one request until :func:`settle`; ``id`` is ``None`` for a key
    without a budget (nothing is reserved and settling it does nothing)."""

    id: str | None
    key_id: str
    period_start: datetime | None
    amount_usd: Decimal
    settled: bool = field(default=False, compare=False)

    @property
    def active(self) -> bool:
        return self.id is not None


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    key_id: str
    budget_usd: Decimal | None
    period: Period | None
    spent_usd: Decimal
    reserved_usd: Decimal
    period_start: datetime | None
    resets_at: datetime | None

    @property
    def remaining_usd(self) -> Decimal | None:
        if self.budget_usd is None:
            return None
        return max(Decimal(0), self.budget_usd - self.spent_usd - self.reserved_usd)


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """Start and end of the budget period holding ``now`` (UTC midnight / first of month)."""
    now = now.astimezone(UTC)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        return start, start.replace(year=start.year + 1, month=1)
    return start, start.replace(month=start.month + 1)


def insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert a row unless its primary key exists; ``True`` when inserted."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        result = conn.execute(sqlite.insert(table).values(**values).on_conflict_do_nothing())
        return bool(result.rowcount)
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        result = conn.execute(postgresql.insert(table).values(**values).on_conflict_do_nothing())
        return bool(result.rowcount)
    keys = [table.c[c.name] == values[c.name] for c in table.primary_key.columns]
    if conn.execute(sa.select(sa.literal(1)).select_from(table).where(*keys)).first():
        return False
    conn.execute(table.insert().values(**values))
    return True


def _try_reserve(
    conn: sa.Connection, key_id: str, start: datetime, amount: int, budget: int
) -> bool:
    s = SPEND.c
    result = conn.execute(
        SPEND.update()
        .where(
            s.key_id == key_id,
            s.period_start == start,
            s.spent_nusd + s.reserved_nusd + amount <= budget,
        )
        .values(reserved_nusd=s.reserved_nusd + amount)
    )
    return result.rowcount == 1


def _sweep(conn: sa.Connection, key_id: str, now: datetime) -> int:
    """Release the key's reservations that outlived their time (a crashed worker's);
    returns how many nano-dollars were released."""
    r = RESERVATIONS.c
    expired = (r.key_id == key_id, r.expires_at < now)
    groups = conn.execute(
        sa.select(r.period_start, sa.func.sum(r.amount_nusd))
        .where(*expired)
        .group_by(r.period_start)
    ).all()
    if not groups:
        return 0
    conn.execute(RESERVATIONS.delete().where(*expired))
    for start, amount in groups:
        left = SPEND.c.reserved_nusd - int(amount)
        conn.execute(
            SPEND.update()
            .where(SPEND.c.key_id == key_id, SPEND.c.period_start == start)
            .values(reserved_nusd=sa.case((left < 0, 0), else_=left))
        )
    return sum(int(amount) for _, amount in groups)


def _money(nusd: int) -> str:
    return f"${format_usd(nusd_to_usd(nusd))}"


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def reserve(
    conn: sa.Connection, key: KeyRecord, amount_usd: Decimal, now: datetime, ttl: timedelta
) -> Reservation:
    """Reserve up to ``amount_usd`` of the key's budget; raises ``BudgetExceeded``."""
    if key.budget_usd is None or key.period is None:
        return Reservation(None, key.id, None, amount_usd)
    amount = max(0, usd_to_nusd(amount_usd) or 0)
    budget = usd_to_nusd(key.budget_usd) or 0
    start, end = period_bounds(key.period, now)
    if not _try_reserve(conn, key.id, start, amount, budget):
        inserted = insert_ignore(
            conn,
            SPEND,
            {"key_id": key.id, "period_start": start, "spent_nusd": 0, "reserved_nusd": 0},
        )
        ok = inserted and _try_reserve(conn, key.id, start, amount, budget)
        if not ok and not (
            _sweep(conn, key.id, now) and _try_reserve(conn, key.id, start, amount, budget)
        ):
            status = read_status(conn, key, now)
            label = "daily" if key.period == "day" else "monthly"
            raise BudgetExceeded(
                f"key {key.name!r} has used its {label} budget of {_money(budget)} "
                f"(spent ${format_usd(status.spent_usd)}, "
                f"reserved ${format_usd(status.reserved_usd)}, "
                f"this request may cost up to {_money(amount)}); it resets at {_iso(end)}",
                retry_after=max(1.0, (end - now).total_seconds()),
            )
    reservation_id = secrets.token_hex(12)
    conn.execute(
        RESERVATIONS.insert().values(
            id=reservation_id,
            key_id=key.id,
            period_start=start,
            amount_nusd=amount,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return Reservation(reservation_id, key.id, start, nusd_to_usd(amount) or Decimal(0))


def settle(conn: sa.Connection, reservation: Reservation, actual_usd: Decimal | None) -> None:
    """Release the reservation and charge the actual cost (``None``: the reserved amount)."""
    amount = usd_to_nusd(reservation.amount_usd) or 0
    charge = amount if actual_usd is None else max(0, usd_to_nusd(actual_usd) or 0)
    deleted = conn.execute(
        RESERVATIONS.delete().where(RESERVATIONS.c.id == reservation.id)
    ).rowcount
    release = amount if deleted else 0  # 0: swept as expired, already released
    s = SPEND.c
    conn.execute(
        SPEND.update()
        .where(s.key_id == reservation.key_id, s.period_start == reservation.period_start)
        .values(reserved_nusd=s.reserved_nusd - release, spent_nusd=s.spent_nusd + charge)
    )


def read_status(conn: sa.Connection, key: KeyRecord, now: datetime) -> BudgetStatus:
    if key.budget_usd is None or key.period is None:
        return BudgetStatus(key.id, None, None, Decimal(0), Decimal(0), None, None)
    start, end = period_bounds(key.period, now)
    s = SPEND.c
    row = conn.execute(
        sa.select(s.spent_nusd, s.reserved_nusd).where(s.key_id == key.id, s.period_start == start)
    ).first()
    spent, reserved = (0, 0) if row is None else (int(row[0]), int(row[1]))
    return BudgetStatus(
        key.id,
        key.budget_usd,
        key.period,
        nusd_to_usd(spent) or Decimal(0),
        nusd_to_usd(reserved) or Decimal(0),
        start,
        end,
    )


def rate_wait(prev: float, cur: float, need: float, limit: float, elapsed: float) -> float | None:
    """Seconds until ``need`` more fits under ``limit`` with no new traffic (sliding window:
    ``prev * (1 - elapsed / 60) + cur``); ``None`` when it never fits."""
    window = float(WINDOW_S)
    room = limit - cur - need
    if room >= 0:
        if prev <= 0:
            return 0.0
        return max(0.0, window * (1 - room / prev) - elapsed)
    if need > limit:
        return None
    left = window - elapsed
    if cur <= 0:
        return left
    return left + max(0.0, window * (1 - (limit - need) / cur))


def _window(key_id: str, conn: sa.Connection, now: datetime) -> tuple[int, float, list[int]]:
    ts = now.timestamp()
    current = int(ts // WINDOW_S) * WINDOW_S
    r = RATE.c
    rows = dict(
        (int(w), (int(n), int(t)))
        for w, n, t in conn.execute(
            sa.select(r.window_start, r.requests, r.tokens).where(
                r.key_id == key_id, r.window_start.in_((current - WINDOW_S, current))
            )
        )
    )
    prev_n, prev_t = rows.get(current - WINDOW_S, (0, 0))
    cur_n, cur_t = rows.get(current, (0, 0))
    return current, ts - current, [prev_n, prev_t, cur_n, cur_t, int(current in rows)]


def _bump(conn: sa.Connection, key_id: str, current: int, requests: int, tokens: int) -> None:
    r = RATE.c
    conn.execute(
        RATE.update()
        .where(r.key_id == key_id, r.window_start == current)
        .values(requests=r.requests + requests, tokens=r.tokens + tokens)
    )


def _start_window(conn: sa.Connection, key_id: str, current: int) -> None:
    values = {"key_id": key_id, "window_start": current, "requests": 0, "tokens": 0}
    if insert_ignore(conn, RATE, values):
        conn.execute(
            RATE.delete().where(RATE.c.key_id == key_id, RATE.c.window_start < current - WINDOW_S)
        )


def take_rate(conn: sa.Connection, key: KeyRecord, tokens: int, now: datetime) -> None:
    """Count one request and ``tokens`` against the key's rpm / tpm; raises ``RateLimited``."""
    if key.rpm is None and key.tpm is None:
        return
    tokens = max(0, int(tokens))
    current, elapsed, (prev_n, prev_t, cur_n, cur_t, exists) = _window(key.id, conn, now)
    weight = 1 - elapsed / WINDOW_S
    if key.rpm is not None and prev_n * weight + cur_n + 1 > key.rpm:
        wait = rate_wait(prev_n, cur_n, 1, key.rpm, elapsed)
        raise RateLimited(
            f"key {key.name!r} is limited to {key.rpm} requests per minute", retry_after=wait
        )
    if key.tpm is not None and prev_t * weight + cur_t + tokens > key.tpm:
        wait = rate_wait(prev_t, cur_t, tokens, key.tpm, elapsed)
        detail = "" if wait is not None else f" and this request alone needs about {tokens}"
        raise RateLimited(
            f"key {key.name!r} is limited to {key.tpm} tokens per minute{detail}", retry_after=wait
        )
    if not exists:
        _start_window(conn, key.id, current)
    _bump(conn, key.id, current, 1, tokens)


def add_tokens(conn: sa.Connection, key: KeyRecord, tokens: int, now: datetime) -> None:
    """Count tokens known only after the call (the completion) against the key's tpm."""
    if key.tpm is None or tokens <= 0:
        return
    current = int(now.timestamp() // WINDOW_S) * WINDOW_S
    _start_window(conn, key.id, current)
    _bump(conn, key.id, current, 0, int(tokens))
