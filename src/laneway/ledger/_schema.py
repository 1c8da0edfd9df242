"""The ledger's current table shape (what the writer and the queries use).

Migrations create and change the tables with their own frozen definitions
(``_migrations.py``); this module mirrors the schema after the latest migration.
Conversions between ``LedgerRow`` and database values live here and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from laneway.ledger._money import nusd_to_usd, usd_to_nusd
from laneway.ledger._row import LedgerRow

__all__ = [
    "LEDGER",
    "SQLITE_COLUMNS",
    "UtcDateTime",
    "row_from_mapping",
    "row_to_params",
    "row_to_sqlite",
    "to_utc",
]


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out (TIMESTAMPTZ on PostgreSQL, sortable text on SQLite)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = to_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else to_utc(value)


def _ledger_table() -> sa.Table:
    return sa.Table(
        "ledger",
        sa.MetaData(),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("key_id", sa.Text),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("requested_model", sa.Text, nullable=False),
        sa.Column("tier", sa.Text),
        sa.Column("deployment", sa.Text),
        sa.Column("hosting", sa.Text),
        sa.Column("model_id", sa.Text),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("cached_tokens", sa.Integer),
        sa.Column("cost_nusd", sa.BigInteger),
        sa.Column("hourly_cost_nusd", sa.BigInteger),
        sa.Column("latency_ms", sa.Float),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_kind", sa.Text),
        sa.Column("fallbacks", sa.Integer, nullable=False),
        sa.Column("partial", sa.Boolean, nullable=False),
        sa.Column("route_reason", sa.Text),
        sa.Column("route_score", sa.Float),
        sa.Column("prompt", sa.Text),
        sa.Column("audit", sa.JSON),
        # migration 4
        sa.Column("estimated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("task", sa.Text),
        sa.Column("served_model", sa.Text),
        sa.Column("fingerprint", sa.Text),
        sa.Column("mirror_of", sa.Text),
        sa.Column("client", sa.Text),
        # migration 10
        sa.Column("cache_write_tokens", sa.Integer),
    )


LEDGER = _ledger_table()


def _json_safe(value: Any) -> Any:
    """A JSON-ready copy: anything orjson cannot encode natively becomes its ``str``."""
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


def row_to_params(row: LedgerRow) -> dict[str, Any]:
    """Database values for one row (raises on a row that cannot be stored)."""
    return {
        "request_id": row.request_id,
        "attempt": int(row.attempt),
        "ts": to_utc(row.ts),
        "key_id": row.key_id,
        "source": row.source,
        "requested_model": row.requested_model,
        "tier": row.tier,
        "deployment": row.deployment,
        "hosting": row.hosting,
        "model_id": row.model_id,
        "stream": bool(row.stream),
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cached_tokens": row.cached_tokens,
        "cost_nusd": usd_to_nusd(row.cost_usd),
        "hourly_cost_nusd": usd_to_nusd(row.hourly_cost_usd),
        "latency_ms": row.latency_ms,
        "ttft_ms": row.ttft_ms,
        "status": int(row.status),
        "error_kind": row.error_kind,
        "fallbacks": int(row.fallbacks),
        "partial": bool(row.partial),
        "route_reason": row.route_reason,
        "route_score": row.route_score,
        "prompt": row.prompt,
        "audit": None if row.audit is None else _json_safe(dict(row.audit)),
        "estimated": bool(row.estimated),
        "task": row.task,
        "served_model": row.served_model,
        "fingerprint": row.fingerprint,
        "mirror_of": row.mirror_of,
        "client": row.client,
        "cache_write_tokens": row.cache_write_tokens,
    }


SQLITE_COLUMNS = (
    "request_id", "attempt", "ts", "key_id", "source", "requested_model", "tier",
    "deployment", "hosting", "model_id", "stream", "prompt_tokens", "completion_tokens",
    "cached_tokens", "cost_nusd", "hourly_cost_nusd", "latency_ms", "ttft_ms", "status",
    "error_kind", "fallbacks", "partial", "route_reason", "route_score", "prompt", "audit",
    "estimated", "task", "served_model", "fingerprint", "mirror_of", "client",
    "cache_write_tokens",
)  # fmt: skip


def sqlite_ts(value: datetime) -> str:
    """The text form SQLAlchemy's SQLite dialect stores a (UTC) datetime in."""
    if value.tzinfo is UTC:  # the usual case: the aware form minus its "+00:00"
        return value.isoformat(" ", "microseconds")[:26]
    return to_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def row_to_sqlite(row: LedgerRow, ts: str | None = None) -> tuple[Any, ...]:
    """The same values as :func:`row_to_params`, already in SQLite's storage form (the
    text datetime SQLAlchemy writes, 0/1 booleans, JSON text), in ``SQLITE_COLUMNS``
    order: the writer's fast path inserts them with the driver's own ``executemany``.
    ``ts``: ``sqlite_ts(row.ts)`` when the caller already has it (rows of one request
    share their time)."""
    if ts is None:
        ts = sqlite_ts(row.ts)
    audit = (
        None
        if row.audit is None
        else orjson.dumps(dict(row.audit), default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    )
    return (
        row.request_id, int(row.attempt), ts, row.key_id,
        row.source, row.requested_model, row.tier, row.deployment, row.hosting, row.model_id,
        1 if row.stream else 0, row.prompt_tokens, row.completion_tokens, row.cached_tokens,
        usd_to_nusd(row.cost_usd), usd_to_nusd(row.hourly_cost_usd), row.latency_ms,
        row.ttft_ms, int(row.status), row.error_kind, int(row.fallbacks),
        1 if row.partial else 0, row.route_reason, row.route_score, row.prompt, audit,
        1 if row.estimated else 0, row.task, row.served_model, row.fingerprint, row.mirror_of,
        row.client, row.cache_write_tokens,
    )  # fmt: skip


def row_from_mapping(values: Any) -> LedgerRow:
    """A ``LedgerRow`` from a result row's mapping (``result.mappings()``)."""
    return LedgerRow(
        request_id=values["request_id"],
        attempt=values["attempt"],
        ts=values["ts"],
        key_id=values["key_id"],
        source=values["source"],
        requested_model=values["requested_model"],
        tier=values["tier"],
        deployment=values["deployment"],
        hosting=values["hosting"],
        model_id=values["model_id"],
        stream=bool(values["stream"]),
        prompt_tokens=values["prompt_tokens"],
        completion_tokens=values["completion_tokens"],
        cached_tokens=values["cached_tokens"],
        cost_usd=nusd_to_usd(values["cost_nusd"]),
        hourly_cost_usd=nusd_to_usd(values["hourly_cost_nusd"]),
        latency_ms=values["latency_ms"],
        ttft_ms=values["ttft_ms"],
        status=values["status"],
        error_kind=values["error_kind"],
        fallbacks=values["fallbacks"],
        partial=bool(values["partial"]),
        route_reason=values["route_reason"],
        route_score=values["route_score"],
        prompt=values["prompt"],
        audit=values["audit"],
        estimated=bool(values.get("estimated", False)),
        task=values.get("task"),
        served_model=values.get("served_model"),
        fingerprint=values.get("fingerprint"),
        mirror_of=values.get("mirror_of"),
        client=values.get("client"),
        cache_write_tokens=values.get("cache_write_tokens"),
    )
