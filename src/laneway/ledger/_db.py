"""Opening the database: SQLite (WAL) by default, any SQLAlchemy URL (PostgreSQL later).

SQLite connections are set up on connect: ``journal_mode=WAL`` (readers never block the
writer), ``synchronous=NORMAL`` (durable across process crashes; a power loss may drop the
last transactions), ``busy_timeout`` (several workers share one file) and ``foreign_keys``.
The driver's own implicit transactions are switched off and SQLAlchemy emits ``BEGIN``
itself, so a connection with the execution option ``laneway_begin="IMMEDIATE"`` takes the
write lock up front (used by migrations and the ledger writer).

A SQLite file deleted or replaced under a running process: the pooled connections would go
on writing to the old file, and lose the writes with it. So a connection opened on a
replaced file is swapped for one on the new file when it is checked out, a commit on a
deleted file fails with ``sa.exc.OperationalError`` (its ``orig`` the ledger writer's
``DatabaseFileGone``; every writer on the engine is covered: governance, stored responses,
shadow outcomes), and a new connection never recreates a deleted file empty. Reads go on
from the connections already open. The file is looked at (``stat``) at most once per
``file_check_s`` (0.1 s), not once per transaction, as the ledger writer looks once a batch.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import PoolProxiedConnection

from laneway.errors import ConfigError
from laneway.ledger import _migrations
from laneway.ledger._writer import DatabaseFileGone, _file_id

__all__ = ["check_database_file", "open_database", "sqlite_path"]

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


# How often the file behind an engine is looked at; the ledger writer looks once a batch,
# every ``ledger.flush_interval`` (100 ms by default).
FILE_CHECK_S = 0.1
_FILE_KEY = "laneway_file"  # a pooled connection's info: the (device, inode) it opened
_WATCH_KEY = "laneway_watch"  # ... and the engine's _FileWatch


class _FileWatch:
    """Which file a SQLite path names now (the ledger writer's ``_file_id``), looked at no
    more than once per ``interval`` seconds; thread-safe (one tuple swapped at a time)."""

    def __init__(self, path: str, interval: float) -> None:
        self.path = path
        self._interval = interval
        self._seen: tuple[float, tuple[int, int] | None] = (float("-inf"), None)
        self.opened = False  # a connection was opened: the file exists or existed

    def refresh(self) -> tuple[int, int] | None:
        ident = _file_id(self.path)
        self._seen = (time.monotonic(), ident)
        return ident

    def current(self) -> tuple[int, int] | None:
        at, ident = self._seen
        if time.monotonic() - at < self._interval:
            return ident
        return self.refresh()

    def gone(self) -> sa.exc.OperationalError:
        message = f"the database file {self.path} was deleted or moved"
        return sa.exc.OperationalError(None, None, DatabaseFileGone(message))


def _install_file_watch(engine: sa.Engine, path: Path, interval: float) -> None:
    watch = _FileWatch(str(path), interval)

    @event.listens_for(engine, "do_connect")
    def _refuse_to_recreate(_dialect: Any, _record: Any, _cargs: Any, _cparams: Any) -> None:
        if watch.opened and watch.refresh() is None:
            raise watch.gone()  # sqlite3 would create an empty file in its place

    @event.listens_for(engine, "connect")
    def _note_file(_dbapi_connection: Any, record: Any) -> None:
        watch.opened = True
        record.info[_FILE_KEY] = watch.refresh()
        record.info[_WATCH_KEY] = watch

    @event.listens_for(engine, "checkout")
    def _reconnect_if_replaced(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        now = watch.current()
        if now is not None and now != record.info.get(_FILE_KEY):
            raise sa.exc.DisconnectionError("the database file was replaced: reconnecting")

    @event.listens_for(engine, "commit")
    def _refuse_lost_write(conn: sa.Connection) -> None:
        check_database_file(conn.connection)  # rolled back when the pool takes it back


def check_database_file(connection: PoolProxiedConnection) -> None:
    """Raise ``sa.exc.OperationalError`` (``orig``: ``DatabaseFileGone``) when the SQLite
    file ``connection`` was opened on is deleted or replaced (looked at no more than once
    per ``file_check_s``). Commits through SQLAlchemy are checked already; a writer that
    commits on ``engine.raw_connection()`` itself calls this before it commits."""
    watch = connection.info.get(_WATCH_KEY)
    if isinstance(watch, _FileWatch) and watch.current() != connection.info.get(_FILE_KEY):
        raise watch.gone()


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
    file_check_s: float = FILE_CHECK_S,
) -> sa.Engine:
    """An engine for ``url`` with the ledger schema migrated to the latest version.

    ``create=False`` refuses to create a missing SQLite file (for read-only commands) and
    raises ``ConfigError``; ``migrate=False`` leaves the schema as it is. A SQLite file is
    looked at every ``file_check_s`` seconds for deletion or replacement (module docstring).
    """
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            if not create:
                raise ConfigError(f"no ledger database at {str(path)!r}")
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, hide_parameters=True, json_serializer=_json_dumps)
        _install_sqlite_events(engine, busy_timeout_ms)
        _install_file_watch(engine, path, file_check_s)
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
