from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from laneway.ledger import LedgerRow, LedgerWriter, open_database

SECRET_PROMPT = "my card is 4111 1111 1111 1111"


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM ledger").scalar_one())


def _rows(make_row: Callable[..., LedgerRow], n: int, **fields: Any) -> list[LedgerRow]:
    return [make_row(f"req-{i}", 0, **fields) for i in range(n)]


def test_flush_writes_in_batches_of_max_batch_with_executemany(
    engine: sa.Engine, make_row: Callable[..., LedgerRow]
) -> None:
    # SQLite's own trace of the statements the driver ran: one transaction per batch,
    # each holding that batch's INSERTs (the writer bypasses SQLAlchemy's events there)
    statements: list[str] = []
    engine.dispose()

    @event.listens_for(engine, "connect")
    def spy(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    writer = LedgerWriter(engine, max_batch=3)
    for r in _rows(make_row, 10):
        writer.record(r)
    assert writer.queued == 10
    writer.flush()
    batches: list[int] = []
    for statement in statements:
        if statement.startswith("BEGIN IMMEDIATE"):
            batches.append(0)
        elif statement.startswith("INSERT INTO ledger"):
            batches[-1] += 1
    assert batches == [3, 3, 3, 1]
    assert (writer.written, writer.dropped, writer.failed_flushes) == (10, 0, 0)
    assert _count(engine) == 10


def test_background_thread_flushes_within_the_interval(
    engine: sa.Engine, make_row: Callable[..., LedgerRow]
) -> None:
    writer = LedgerWriter(engine, flush_interval=0.05)
    writer.start()
    try:
        started = time.monotonic()
        writer.record(make_row("bg"))
        while writer.written < 1 and time.monotonic() - started < 5:
            time.sleep(0.01)
        elapsed = time.monotonic() - started
    finally:
        writer.close()
    assert writer.written == 1
    assert elapsed < 1.0
    assert _count(engine) == 1


def test_close_writes_everything_still_queued(
    engine: sa.Engine, make_row: Callable[..., LedgerRow]
) -> None:
    writer = LedgerWriter(engine, flush_interval=60, max_batch=7)
    writer.start()
    for r in _rows(make_row, 50):
        writer.record(r)
    writer.close()
    assert writer.written == 50
    assert _count(engine) == 50
    writer.record(make_row("late"))  # after close: counted, never raised
    assert writer.dropped == 1
    writer.close()  # idempotent


def test_a_failing_database_never_raises_and_logs_no_row_contents(
    engine: sa.Engine, make_row: Callable[..., LedgerRow], caplog: pytest.LogCaptureFixture
) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE ledger")
    writer = LedgerWriter(engine, max_retries=2)
    rows = _rows(make_row, 4, prompt=SECRET_PROMPT, key_id="key-secret-123")
    with caplog.at_level(logging.WARNING, logger="laneway.ledger"):
        for r in rows:
            writer.record(r)
        writer.flush()
        writer.flush()
        assert (writer.failed_flushes, writer.dropped, writer.queued) == (2, 0, 4)
        writer.flush()  # third failure: retries exhausted, the batch is dropped
    assert (writer.written, writer.dropped, writer.failed_flushes) == (0, 4, 3)
    assert writer.queued == 0
    assert "no such table" in caplog.text
    assert "rows dropped" in caplog.text
    assert SECRET_PROMPT not in caplog.text
    assert "key-secret-123" not in caplog.text
    assert "req-0" not in caplog.text


def test_a_locked_database_is_retried_on_the_next_tick_without_loss(
    db_url: str, make_row: Callable[..., LedgerRow]
) -> None:
    engine = open_database(db_url, busy_timeout_ms=20)
    blocker = open_database(db_url)
    writer = LedgerWriter(engine)
    try:
        writer.record(make_row("locked"))
        with (
            blocker.connect().execution_options(laneway_begin="IMMEDIATE") as conn,
            conn.begin(),
        ):
            conn.exec_driver_sql("SELECT 1")
            writer.flush()  # the write lock is held elsewhere: database is locked
            assert (writer.failed_flushes, writer.written, writer.queued) == (1, 0, 1)
        writer.flush()
        assert (writer.written, writer.dropped) == (1, 0)
        assert _count(engine) == 1
    finally:
        writer.close()
        engine.dispose()
        blocker.dispose()


def test_a_row_that_cannot_be_stored_is_dropped_alone(
    engine: sa.Engine, make_row: Callable[..., LedgerRow]
) -> None:
    writer = LedgerWriter(engine)
    writer.record(make_row("good-1"))
    writer.record(make_row("bad", ts="not a datetime"))
    writer.record(make_row("good-2"))
    writer.flush()
    assert (writer.written, writer.dropped) == (2, 1)


@pytest.mark.parametrize("sqlite", [True, False])
def test_a_row_the_database_refuses_costs_no_other_row(
    engine: sa.Engine, make_row: Callable[..., LedgerRow], sqlite: bool
) -> None:
    """A value the database cannot take (an integer past 64 bits) fails the batch's insert:
    the batch is written again row by row and only that row is dropped — it used to be
    retried and then dropped with every other request's row in its batch."""
    from laneway.ledger._schema import row_to_params

    writer = LedgerWriter(engine)
    if not sqlite:  # the SQLAlchemy Core path, as for PostgreSQL
        writer._sqlite, writer._convert = False, row_to_params
    writer.record(make_row("good-1"))
    writer.record(make_row("huge", prompt_tokens=2**70))
    writer.record(make_row("good-2"))
    writer.flush()
    assert (writer.written, writer.dropped, writer.queued) == (2, 1, 0)
    assert _count(engine) == 2


def test_queue_is_capped_while_the_database_is_down(
    engine: sa.Engine, make_row: Callable[..., LedgerRow]
) -> None:
    writer = LedgerWriter(engine, max_pending=5)
    for r in _rows(make_row, 8):
        writer.record(r)
    assert (writer.queued, writer.dropped) == (5, 3)
    writer.flush()
    assert writer.written == 5


def test_naive_and_non_utc_times_are_stored_as_utc(
    engine: sa.Engine, make_row: Callable[..., LedgerRow]
) -> None:
    local = datetime(2026, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    writer = LedgerWriter(engine)
    writer.record(make_row("tz", ts=local))
    writer.record(make_row("naive", ts=datetime(2026, 3, 2, 10, 0)))
    writer.flush()
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT ts FROM ledger ORDER BY request_id").scalars().all()
    assert stored == ["2026-03-02 10:00:00.000000", "2026-03-02 10:00:00.000000"]


_CRASHER = textwrap.dedent(
    """
    import os, sys, time
    from datetime import UTC, datetime
    from laneway.ledger import LedgerRow, LedgerWriter, open_database
    writer = LedgerWriter(open_database(sys.argv[1]), flush_interval=0.1)
    writer.start()
    for i in range(200):
        writer.record(LedgerRow(f"r{i}", 0, datetime.now(UTC), "auto", 200))
    time.sleep(0.4)
    writer.record(LedgerRow("last", 0, datetime.now(UTC), "auto", 200))
    os._exit(3)  # a crash: no close(), no atexit
    """
)


def test_a_crash_loses_only_the_rows_of_the_last_interval(db_url: str) -> None:
    open_database(db_url).dispose()
    proc = subprocess.run(
        [sys.executable, "-c", _CRASHER, db_url], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3, proc.stderr
    engine = open_database(db_url)
    try:
        with engine.connect() as conn:
            ids = set(conn.exec_driver_sql("SELECT request_id FROM ledger").scalars())
    finally:
        engine.dispose()
    assert {f"r{i}" for i in range(200)} <= ids
