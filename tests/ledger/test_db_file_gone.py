"""An engine from ``open_database`` whose SQLite file is deleted or replaced while it runs:
a commit to the deleted file is refused (its pooled connections would have written into
it and lost the write with it), no empty file is created in its place, a connection to a
replaced file is swapped for one to the new file, and the file is looked at no more than
once per ``file_check_s`` (no ``stat`` per transaction)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from laneway.ledger import LedgerWriter, open_database
from laneway.ledger._db import check_database_file
from laneway.server._response_store import ResponseStore
from tests.ledger.conftest import row

_NOTES = sa.Table("notes", sa.MetaData(), sa.Column("v", sa.Integer))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "laneway.db"


def _engine(path: Path, **options: Any) -> sa.Engine:
    engine = open_database(f"sqlite:///{path}", **options)
    _NOTES.create(engine)
    return engine


@pytest.fixture
def engine(path: Path) -> Iterator[sa.Engine]:
    eng = _engine(path, file_check_s=0)
    yield eng
    eng.dispose()


def _delete(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _count(path: Path, table: str) -> int:
    other = open_database(f"sqlite:///{path}", create=False, migrate=False)
    try:
        with other.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())  # noqa: S608
    finally:
        other.dispose()


def _insert(engine: sa.Engine, v: int = 1) -> None:
    with engine.begin() as conn:
        conn.execute(_NOTES.insert().values(v=v))


def test_a_commit_to_a_deleted_file_is_refused(engine: sa.Engine, path: Path) -> None:
    _insert(engine)
    _delete(path)
    with pytest.raises(sa.exc.OperationalError, match="deleted or moved"):
        _insert(engine)
    with engine.connect() as conn:  # reads go on from the connection already open
        assert conn.execute(sa.select(sa.func.count()).select_from(_NOTES)).scalar_one() == 1
    assert not path.exists()


def test_a_raw_connection_writer_can_ask_before_it_commits(engine: sa.Engine, path: Path) -> None:
    """Writers that commit through the driver (the shadow pairs' writer) see no commit
    event; ``check_database_file`` is their check."""
    raw = engine.raw_connection()
    try:
        check_database_file(raw)
        _delete(path)
        with pytest.raises(sa.exc.OperationalError, match="deleted or moved"):
            check_database_file(raw)
    finally:
        raw.close()


def test_no_empty_file_is_created_in_a_deleted_files_place(engine: sa.Engine, path: Path) -> None:
    _delete(path)
    engine.dispose()  # the next transaction needs a new connection
    with pytest.raises(sa.exc.OperationalError, match="deleted or moved"), engine.connect():
        pass
    assert not path.exists()


def test_a_replaced_file_gets_the_writes(engine: sa.Engine, path: Path, tmp_path: Path) -> None:
    _insert(engine)
    backup = tmp_path / "backup.db"
    _engine(backup).dispose()
    _delete(path)
    os.replace(backup, path)
    _insert(engine, 2)
    _insert(engine, 3)
    assert _count(path, "notes") == 2


def _counting_stat(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> Callable[[], int]:
    """``os.stat`` calls on ``paths`` only: another thread of the test process (a
    traceback's ``linecache``, a ``Path.exists``) may stat other files meanwhile (one
    stray call failed this test once in a full run)."""
    calls = [0]
    real = os.stat
    watched = {str(p) for p in paths}

    def stat(*args: Any, **kwargs: Any) -> os.stat_result:
        if args and str(args[0]) in watched:
            calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    return lambda: calls[0]


def test_the_file_is_looked_at_once_per_interval_not_per_transaction(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = _engine(path, file_check_s=3600)
    every = _engine(tmp_path / "every.db", file_check_s=0)
    try:
        for engine in (slow, every):
            _insert(engine)  # the pool holds a connection now
        stats = _counting_stat(monkeypatch, path, tmp_path / "every.db")
        for _ in range(100):
            _insert(slow)
        assert stats() == 0
        for _ in range(100):
            _insert(every)
        assert stats() >= 100  # the counter sees the watch's stat calls
    finally:
        slow.dispose()
        every.dispose()


def test_the_ledger_writer_still_keeps_rows_for_the_file_put_back(path: Path) -> None:
    engine = open_database(f"sqlite:///{path}", file_check_s=0)
    writer = LedgerWriter(engine, flush_interval=0.01)
    try:
        writer.record(row("r1"))
        writer.flush()
        _delete(path)
        writer.record(row("r2"))
        writer.flush()
        assert writer.last_error is not None and "deleted" in writer.last_error
        assert writer.queued == 1
        open_database(f"sqlite:///{path}").dispose()
        writer.flush()
        assert (writer.queued, writer.dropped, writer.written) == (0, 0, 2)
    finally:
        writer.close()
        engine.dispose()
    assert _count(path, "ledger") == 1


def test_stored_responses_are_not_lost_silently(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_database(f"sqlite:///{path}", file_check_s=0)
    store = ResponseStore(engine, retention_days=1, memory_items=10)

    def save(i: int) -> None:
        store.save(f"resp_{i}", None, [{"role": "user", "content": "hi"}], {"id": f"resp_{i}"})
        store._writer.submit(lambda: None).result()  # the save has landed (or failed)

    try:
        save(0)
        _delete(path)
        with caplog.at_level(logging.WARNING, logger="laneway.responses"):
            for i in range(1, 4):
                save(i)
            open_database(f"sqlite:///{path}").dispose()
            save(4)
    finally:
        store.close()
        engine.dispose()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages  # once when saves fail, once when they resume
    assert "deleted or moved" in messages[0]
    assert "3 were not" in messages[1]
    assert _count(path, "stored_responses") == 1  # resp_4, in the file put back
