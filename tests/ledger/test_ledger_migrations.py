from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from laneway.errors import ConfigError
from laneway.ledger import (
    MIGRATIONS,
    Migration,
    applied_migrations,
    migrate,
    open_database,
    pending_migrations,
)
from laneway.ledger._db import _set_wal


def test_open_database_creates_the_file_in_wal_mode_and_migrates(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        assert applied_migrations(engine) == [m.number for m in MIGRATIONS]
        assert pending_migrations(engine) == []
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            names = set(sa.inspect(conn).get_table_names())
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("ledger")}
        assert {"ledger", "schema_migrations"} <= names
        assert {"ix_ledger_ts", "ix_ledger_request_id", "ix_ledger_deployment_ts"} <= indexes
    finally:
        engine.dispose()


def test_migrate_is_idempotent(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        assert migrate(engine) == []
        assert migrate(engine) == []
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT number, name FROM schema_migrations").all()
        assert [tuple(r) for r in rows] == [(m.number, m.name) for m in MIGRATIONS]
        assert rows[0] == (1, "ledger")
    finally:
        engine.dispose()
    again = open_database(db_url)
    try:
        assert applied_migrations(again) == [m.number for m in MIGRATIONS]
    finally:
        again.dispose()


def test_new_migrations_apply_in_order_and_only_once(db_url: str) -> None:
    engine = open_database(db_url)
    order: list[int] = []

    def add_table(number: int) -> Migration:
        def apply(conn: sa.Connection) -> None:
            order.append(number)
            conn.exec_driver_sql(f"CREATE TABLE extra_{number} (x INTEGER)")

        return Migration(number, f"extra_{number}", apply)

    n = MIGRATIONS[-1].number
    extended = (*MIGRATIONS, add_table(n + 1), add_table(n + 2))
    try:
        assert pending_migrations(engine, extended) == [n + 1, n + 2]
        assert migrate(engine, extended) == [n + 1, n + 2]
        assert migrate(engine, extended) == []
        assert order == [n + 1, n + 2]
    finally:
        engine.dispose()


def test_a_failing_migration_rolls_back_the_whole_run(db_url: str) -> None:
    engine = open_database(db_url, migrate=False)

    def broken(conn: sa.Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError):
            migrate(engine, (*MIGRATIONS, Migration(MIGRATIONS[-1].number + 1, "broken", broken)))
        assert applied_migrations(engine) == []
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table("half_done")
            assert not sa.inspect(conn).has_table("ledger")
    finally:
        engine.dispose()


def test_migration_numbers_must_increase(db_url: str) -> None:
    engine = open_database(db_url, migrate=False)
    try:
        with pytest.raises(ValueError, match="increasing"):
            migrate(engine, (*MIGRATIONS, MIGRATIONS[0]))
    finally:
        engine.dispose()


_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import sqlalchemy as sa
    from laneway.ledger import MIGRATIONS, Migration, migrate, open_database

    url, go, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    def slow(conn):
        conn.exec_driver_sql("CREATE TABLE slow_one (x INTEGER)")  # fails if run twice
        time.sleep(0.4)
    engine = open_database(url, migrate=False)
    ready.touch()
    while not go.exists():
        time.sleep(0.005)
    done = migrate(engine, (*MIGRATIONS, Migration(MIGRATIONS[-1].number + 1, "slow", slow)))
    print(json.dumps(done))
    """
)


def test_two_processes_migrating_at_once_apply_each_migration_once(
    tmp_path: Path, db_url: str
) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, db_url, str(go), str(tmp_path / f"ready-{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready-{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.01)
    go.touch()  # both are waiting on the start line: they race for the migrations
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=60))
        except subprocess.TimeoutExpired:
            proc.kill()
            outputs.append(proc.communicate())
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    results = [json.loads(out) for out, _ in outputs]
    everything = [m.number for m in MIGRATIONS] + [MIGRATIONS[-1].number + 1]
    assert sorted(results, key=len) == [[], everything]
    engine = open_database(db_url, migrate=False)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT number FROM schema_migrations").all()
        assert sorted(r[0] for r in rows) == everything
    finally:
        engine.dispose()


def test_read_only_open_refuses_a_missing_file_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "laneway.db"
    with pytest.raises(ConfigError, match="no ledger database"):
        open_database(f"sqlite:///{path}", create=False)
    assert not path.exists()
    assert not path.parent.exists()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="SQLite file"):
        open_database(url)


class _LockedCursor:
    """A cursor whose ``journal_mode`` pragma fails ``fails`` times with ``error``."""

    def __init__(self, fails: int, error: str = "database is locked") -> None:
        self.fails, self.error, self.calls = fails, error, 0

    def execute(self, sql: str) -> None:
        assert sql == "PRAGMA journal_mode = WAL"
        self.calls += 1
        if self.calls <= self.fails:
            raise sqlite3.OperationalError(self.error)


def test_switching_to_wal_is_retried_while_another_connection_holds_the_file() -> None:
    """SQLite answers "database is locked" at once, without waiting out busy_timeout, to a
    connection that wants the exclusive lock while another holds a shared one (two
    processes opening a new ledger together: the race above failed this way in CI)."""
    cursor = _LockedCursor(fails=3)
    _set_wal(cursor, busy_timeout_ms=5000)
    assert cursor.calls == 4


def test_switching_to_wal_gives_up_after_the_busy_timeout() -> None:
    cursor = _LockedCursor(fails=10**6)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _set_wal(cursor, busy_timeout_ms=200)
    assert 0.2 <= time.monotonic() - started < 5
    assert cursor.calls > 1


def test_other_errors_while_switching_to_wal_are_not_retried() -> None:
    cursor = _LockedCursor(fails=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _set_wal(cursor, busy_timeout_ms=5000)
    assert cursor.calls == 1
