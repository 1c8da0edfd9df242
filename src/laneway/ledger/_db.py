"""Opening the database: SQLite (WAL) by default, any SQLAlchemy URL (PostgreSQL later).

SQLite connections are set up on connect: ``journal_mode=WAL`` (readers never block the
writer), ``synchronous=NORMAL`` (durable across process crashes; a power loss may drop the
last transactions), ``busy_timeout`` (several workers share one file) and ``foreign_keys``.
The driver's own implicit transactions are switched off and SQLAlchemy emits ``BEGIN``
itself, so a connection with the execution option ``laneway_begin="IMMEDIATE"`` takes the
write lock up front (used by migrations and the ledger writer).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event

from laneway.errors import ConfigError
from laneway.ledger import _migrations

__all__ = ["open_database", "sqlite_path"]

_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE", "EXCLUSIVE"})


def sqlite_path(url: str | sa.URL) -> Path | None:
    """The file of a ``sqlite:///`` URL; ``None`` for other databases."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ConfigError(
            f"the ledger needs a SQLite file, not {database or 'an in-memory database'!r}: "
            "use sqlite:///path/to/laneway.db"
        )
    return Path(database)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _set_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """``journal_mode = WAL``, retried while another connection holds the file.

    Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is
    locked" at once, without waiting out ``busy_timeout``, when two connections both hold a
    shared lock and want it (two workers opening a fresh ledger together). So the switch is
    retried here, for as long as ``busy_timeout`` would have waited.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _install_sqlite_events(engine: sa.Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            _set_wal(cursor, busy_timeout_ms)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = str(conn.get_execution_options().get("laneway_begin", "DEFERRED")).upper()
        if mode not in _BEGIN_MODES:
            mode = "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def open_database(
    url: str,
    *,
    create: bool = True,
    migrate: bool = True,
    busy_timeout_ms: int = 5000,
) -> sa.Engine:
    """An engine for ``url`` with the ledger schema migrated to the latest version.

    ``create=False`` refuses to create a missing SQLite file (for read-only commands) and
    raises ``ConfigError``; ``migrate=False`` leaves the schema as it is.
    """
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            if not create:
                raise ConfigError(f"no ledger database at {str(path)!r}")
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, hide_parameters=True, json_serializer=_json_dumps)
        _install_sqlite_events(engine, busy_timeout_ms)
    else:
        engine = sa.create_engine(
            url, hide_parameters=True, pool_pre_ping=True, json_serializer=_json_dumps
        )
    if migrate:
        try:
            _migrations.migrate(engine)
        except BaseException:
            engine.dispose()
            raise
    return engine
