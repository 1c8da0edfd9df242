"""Numbered schema migrations, applied in order, each exactly once.

Add a migration by appending ``Migration(n, "name", apply)`` to ``MIGRATIONS``; ``apply``
receives a connection inside the migration transaction and must only use definitions frozen
in its own function (never the current ``_schema`` table, which moves on).

Several worker processes may start at once: ``migrate`` takes the database's write lock
first (SQLite ``BEGIN IMMEDIATE``; a transaction-scoped advisory lock on PostgreSQL), then
reads what is applied, so the second process waits and finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from laneway.ledger._schema import UtcDateTime

__all__ = ["MIGRATIONS", "Migration", "applied_migrations", "migrate", "pending_migrations"]

# Any constant that other Laneway advisory locks do not use ("LANE" in ASCII).
_PG_LOCK_KEY = 0x4C414E45


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    apply: Callable[[sa.Connection], None]


def _schema_migrations_table() -> sa.Table:
    return sa.Table(
        "schema_migrations",
        sa.MetaData(),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("applied_at", UtcDateTime(), nullable=False),
    )


def m001_ledger(conn: sa.Connection) -> None:
    """The ledger: one row per request (attempt 0) and per upstream attempt (1..n)."""
    table = sa.Table(
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
    )
    sa.Index("ix_ledger_ts", table.c.ts)
    sa.Index("ix_ledger_request_id", table.c.request_id, table.c.attempt)
    sa.Index("ix_ledger_deployment_ts", table.c.deployment, table.c.ts)
    table.create(conn)


def m002_eval_runs(conn: sa.Connection) -> None:
    """Eval runs: one row per run, one per (run, case, model, repeat) result, and the
    pairwise verdicts (judge model or person) of a run."""
    meta = sa.MetaData()
    runs = sa.Table(
        "eval_runs",
        meta,
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("suite_name", sa.Text, nullable=False),
        sa.Column("suite_digest", sa.Text, nullable=False),
        sa.Column("suite", sa.JSON, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("repeats", sa.Integer, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("format_version", sa.Integer, nullable=False),
    )
    results = sa.Table(
        "eval_results",
        meta,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("repeat", sa.Integer, nullable=False),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("request_id", sa.Text),
        sa.Column("deployment", sa.Text),
        sa.Column("model_id", sa.Text),
        sa.Column("output", sa.Text),
        sa.Column("error_code", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("passed", sa.Boolean),
        sa.Column("score", sa.Float),
        sa.Column("checks", sa.JSON),
        sa.Column("latency_ms", sa.Float),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("cost_nusd", sa.BigInteger),
    )
    pairs = sa.Table(
        "eval_pairs",
        meta,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("model_a", sa.Text, nullable=False),
        sa.Column("model_b", sa.Text, nullable=False),
        sa.Column("rater", sa.Text, nullable=False),
        sa.Column("winner", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON),
        sa.Column("ts", UtcDateTime(), nullable=False),
    )
    sa.Index(
        "ux_eval_results_key",
        results.c.run_id,
        results.c.case_id,
        results.c.model,
        results.c.repeat,
        unique=True,
    )
    sa.Index(
        "ux_eval_pairs_key",
        pairs.c.run_id,
        pairs.c.case_id,
        pairs.c.model_a,
        pairs.c.model_b,
        pairs.c.rater,
        unique=True,
    )
    for table in (runs, results, pairs):
        table.create(conn)


def m003_governance(conn: sa.Connection) -> None:
    """Governance: virtual keys (hashed), budget spend per period, open reservations,
    rate-limit windows, active kill switches and their history."""
    meta = sa.MetaData()
    keys = sa.Table(
        "gov_keys",
        meta,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("rotated_at", UtcDateTime()),
        sa.Column("revoked_at", UtcDateTime()),
        sa.Column("budget_nusd", sa.BigInteger),
        sa.Column("period", sa.Text),
        sa.Column("models", sa.JSON),
        sa.Column("tiers", sa.JSON),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("allow_unknown_price", sa.Boolean, nullable=False),
        sa.Column("log_prompts", sa.Boolean, nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
    )
    sa.Index(
        "ux_gov_keys_active_name",
        keys.c.name,
        unique=True,
        sqlite_where=keys.c.revoked_at.is_(None),
        postgresql_where=keys.c.revoked_at.is_(None),
    )
    sa.Table(
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
    sa.Index("ix_gov_reservations_key_expires", reservations.c.key_id, reservations.c.expires_at)
    _m003_rate_and_kills(meta)
    meta.create_all(conn)


def _m003_rate_and_kills(meta: sa.MetaData) -> None:
    """Migration 3, continued: rate-limit windows, active kill switches, kill history."""
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    sa.Table(
        "gov_rate",
        meta,
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
    )
    sa.Table(
        "gov_kills",
        meta,
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("killed_at", UtcDateTime(), nullable=False),
    )
    history = sa.Table(
        "gov_kill_history",
        meta,
        sa.Column("id", big_id, primary_key=True),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
    )
    sa.Index("ix_gov_kill_history_ts", history.c.ts)


def m004_ledger_provenance(conn: sa.Connection) -> None:
    """Ledger columns for estimated usage, the request's task, the model id and
    fingerprint the upstream reported, shadow copies and refused requests' clients."""
    columns = (
        "estimated BOOLEAN NOT NULL DEFAULT false",
        "task TEXT",
        "served_model TEXT",
        "fingerprint TEXT",
        "mirror_of TEXT",
        "client TEXT",
    )
    for column in columns:
        conn.execute(sa.text(f"ALTER TABLE ledger ADD COLUMN {column}"))
    conn.execute(sa.text("CREATE INDEX ix_ledger_mirror_of ON ledger (mirror_of)"))


def m005_eval_provenance_and_drift(conn: sa.Connection) -> None:
    """Eval results: the model id and fingerprint the upstream reported for each answer;
    drift: the pinned baseline run of each canary target and every signal checked."""
    for column in ("served_model TEXT", "fingerprint TEXT"):
        conn.execute(sa.text(f"ALTER TABLE eval_results ADD COLUMN {column}"))
    meta = sa.MetaData()
    sa.Table(
        "drift_baselines",
        meta,
        sa.Column("target", sa.Text, primary_key=True),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("pinned_at", UtcDateTime(), nullable=False),
    )
    signals = sa.Table(
        "drift_signals",
        meta,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
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
    sa.Index("ix_drift_signals_target", signals.c.target, signals.c.signal, signals.c.id)
    meta.create_all(conn)


def m007_stored_responses(conn: sa.Connection) -> None:
    """Stored ``/v1/responses`` answers (``store``), for ``previous_response_id`` and
    ``GET /v1/responses/{id}``: the conversation in neutral form and the response body,
    scoped to the key that made it, until ``expires_at``."""
    meta = sa.MetaData()
    table = sa.Table(
        "stored_responses",
        meta,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("key_id", sa.Text),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("conversation", sa.JSON, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
    )
    sa.Index("ix_stored_responses_expires", table.c.expires_at)
    meta.create_all(conn)


def m008_shadow_pairs(conn: sa.Connection) -> None:
    """Shadow traffic: one row per (mirrored request, candidate) with both answers, for
    ``laneway shadow report`` (judged later; the prompt is stored redacted)."""
    meta = sa.MetaData()
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    table = sa.Table(
        "shadow_pairs",
        meta,
        sa.Column("id", big_id, primary_key=True),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("task", sa.Text),
        sa.Column("prompt", sa.JSON, nullable=False),
        sa.Column("primary_deployment", sa.Text),
        sa.Column("primary_model", sa.Text),
        sa.Column("primary_output", sa.Text),
        sa.Column("primary_latency_ms", sa.Float),
        sa.Column("primary_cost_nusd", sa.BigInteger),
        sa.Column("primary_tokens", sa.Integer),
        sa.Column("candidate", sa.Text, nullable=False),
        sa.Column("candidate_model", sa.Text),
        sa.Column("candidate_output", sa.Text),
        sa.Column("candidate_error", sa.Text),
        sa.Column("candidate_latency_ms", sa.Float),
        sa.Column("candidate_cost_nusd", sa.BigInteger),
        sa.Column("candidate_tokens", sa.Integer),
        sa.Column("verdict", sa.Text),
        sa.Column("judge", sa.Text),
        sa.Column("judge_prompt_version", sa.Text),
    )
    sa.Index("ix_shadow_pairs_candidate_ts", table.c.candidate, table.c.ts)
    meta.create_all(conn)


def m009_shadow_reviews(conn: sa.Connection) -> None:
    """A person's blind verdict on a shadow pair (``laneway shadow review``) beside the
    judge's, and which side the candidate was shown on."""
    for column in ("human_verdict TEXT", "human_shown_as TEXT"):
        conn.execute(sa.text(f"ALTER TABLE shadow_pairs ADD COLUMN {column}"))


def m010_ledger_cache_writes(conn: sa.Connection) -> None:
    """Ledger: the prompt tokens written to the provider's prompt cache (Anthropic's
    ``cache_creation_input_tokens``), billed above the input price; part of
    ``prompt_tokens`` like ``cached_tokens`` (cache reads)."""
    conn.execute(sa.text("ALTER TABLE ledger ADD COLUMN cache_write_tokens INTEGER"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "ledger", m001_ledger),
    Migration(2, "eval_runs", m002_eval_runs),
    Migration(3, "governance", m003_governance),
    Migration(4, "ledger_provenance", m004_ledger_provenance),
    Migration(5, "eval_provenance_and_drift", m005_eval_provenance_and_drift),
    Migration(7, "stored_responses", m007_stored_responses),
    Migration(8, "shadow_pairs", m008_shadow_pairs),
    Migration(9, "shadow_reviews", m009_shadow_reviews),
    Migration(10, "ledger_cache_writes", m010_ledger_cache_writes),
)


def _lock(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))


def _applied(conn: sa.Connection, table: sa.Table) -> set[int]:
    return set(conn.scalars(sa.select(table.c.number)))


def migrate(engine: sa.Engine, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the missing migrations in order in one transaction; returns their numbers."""
    numbers = [m.number for m in migrations]
    if numbers != sorted(set(numbers)):
        raise ValueError("migration numbers must be unique and increasing")
    table = _schema_migrations_table()
    done: list[int] = []
    with engine.connect().execution_options(laneway_begin="IMMEDIATE") as conn, conn.begin():
        _lock(conn)
        table.create(conn, checkfirst=True)
        applied = _applied(conn, table)
        for migration in migrations:
            if migration.number in applied:
                continue
            migration.apply(conn)
            conn.execute(
                table.insert().values(
                    number=migration.number, name=migration.name, applied_at=datetime.now(UTC)
                )
            )
            done.append(migration.number)
    return done


def applied_migrations(engine: sa.Engine) -> list[int]:
    """Numbers of the migrations applied to this database (empty for a bare database)."""
    table = _schema_migrations_table()
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(table.name):
            return []
        return sorted(_applied(conn, table))


def pending_migrations(
    engine: sa.Engine, migrations: Sequence[Migration] = MIGRATIONS
) -> list[int]:
    """Numbers of the migrations this database still lacks."""
    applied = set(applied_migrations(engine))
    return [m.number for m in migrations if m.number not in applied]
