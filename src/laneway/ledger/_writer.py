"""``LedgerWriter``: ledger rows written in batches by a background thread.

``record()`` only appends to a deque (about a microsecond, never blocks on the database,
never raises), so the request path does not wait for SQLite. A thread wakes every
``flush_interval`` seconds and writes what has queued in batches of at most ``max_batch``
rows, one transaction per batch. A process crash therefore loses at most the rows of
the last interval; ``close()`` (called at shutdown, and at interpreter exit as a safety
net) writes everything still queued.

On SQLite the batch goes straight to the driver (blocks of rows as multi-row ``INSERT``s,
the rest with ``executemany``) with values already in storage form (``row_to_sqlite``):
SQLAlchemy's per-value bind processing cost ~40 µs a row and competed with the event loop
for the interpreter lock; the driver releases it while SQLite works. Other databases use
SQLAlchemy Core.

A batch that fails because the database is away (locked, disk full, read-only, an I/O
error, a file it cannot open, a lost server connection) is kept and retried on every tick
until the database takes it: an outage loses no row, as long as the queue holds
``max_pending`` rows; past that new rows are dropped and counted in ``dropped``. Such an
outage is logged once when it starts, again every ``_REMIND_S`` seconds while it lasts, and
once when writes resume, never once per request (``failing_since`` and ``last_error`` say
so meanwhile; ``/health/ready`` shows them). Any other failure of a batch (a missing table)
is retried ``max_retries`` times and then dropped and counted. At shutdown (``close``) every
failure gets ``max_retries`` more tries, so that a database that stays away cannot hold the
process. Failures are logged with the exception type only, never row contents (prompts,
keys).
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import DBAPICursor

from laneway.ledger._row import LedgerRow
from laneway.ledger._schema import (
    LEDGER,
    SQLITE_COLUMNS,
    row_to_params,
    row_to_sqlite,
    sqlite_ts,
)

__all__ = ["LedgerWriter"]

_log = logging.getLogger("laneway.ledger")


def _describe(exc: BaseException) -> str:
    """The error's type and first line, without SQL parameters (row contents)."""
    orig = getattr(exc, "orig", None)
    cause = orig if isinstance(orig, BaseException) else exc
    first_line = (str(cause).splitlines() or [""])[0][:200]
    if isinstance(cause, sa.exc.StatementError):
        first_line = ""
    return f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__


def _refused_row(exc: BaseException) -> bool:
    """The database refused a value of the batch (it will refuse it again), as opposed to
    being unavailable (locked, disk full, gone), which a retry may cure."""
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, sqlite3.OperationalError) or isinstance(exc, sa.exc.OperationalError):
        return False
    return isinstance(
        cause,
        (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError, OverflowError,
         TypeError, ValueError),
    ) or isinstance(exc, (sa.exc.IntegrityError, sa.exc.DataError))  # fmt: skip


# SQLite's primary result codes for a database that is there but cannot take a write now:
# an outage, not a fault of the rows (the extended codes, e.g. SQLITE_IOERR_WRITE or
# SQLITE_READONLY_DBMOVED, share these prefixes).
_AWAY_CODES = frozenset(
    {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_FULL",
     "SQLITE_CANTOPEN", "SQLITE_PROTOCOL", "SQLITE_PERM", "SQLITE_NOLFS", "SQLITE_NOTADB"}
)  # fmt: skip

# While the database stays away, how often the outage is logged again.
_REMIND_S = 60.0


def _unavailable(exc: BaseException) -> bool:
    """The database is away (disk full, read-only, locked, gone) rather than refusing
    what was written: its rows are kept for when it comes back."""
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, DatabaseFileGone):
        return True
    name = getattr(cause, "sqlite_errorname", None)
    if isinstance(name, str):
        return "_".join(name.split("_")[:2]) in _AWAY_CODES
    return isinstance(exc, sa.exc.OperationalError) or bool(
        getattr(exc, "connection_invalidated", False)
    )


class DatabaseFileGone(OSError):
    """The SQLite file the writer opened was deleted or replaced: a write would go to the
    deleted file (its open descriptors keep it alive) and be lost with it."""


def _file_id(path: str | None) -> tuple[int, int] | None:
    """The file's (device, inode), ``None`` when there is no such file."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _none(_: None) -> None:
    return None


def _adapt_none_directly() -> None:
    """Give ``None`` an explicit sqlite3 adapter (idempotent; it binds NULL as before).

    The driver binds int, float and str directly but sends every other value, ``None``
    included, through its adapter lookup; without a registered adapter that lookup
    ends in two failed attribute lookups per value. A ledger row has about ten NULLs,
    and this one registration cuts the insert's instructions by about a quarter
    (cachegrind: 72k → 55k per row)."""
    sqlite3.register_adapter(type(None), _none)


# Rows per multi-row INSERT on SQLite (largest first): 64 rows are 2,112 parameters, far
# below SQLite's limit of 32,766; a few fixed sizes keep the statements cached.
_BLOCKS = (64, 16, 4)


def _insert_sql(rows: int) -> str:
    """``INSERT INTO ledger (…) VALUES (?, …), …`` for ``rows`` rows: fixed column names,
    every value bound as a parameter."""
    values = f"({', '.join('?' for _ in SQLITE_COLUMNS)})"
    return (
        f"INSERT INTO ledger ({', '.join(SQLITE_COLUMNS)}) "  # noqa: S608
        f"VALUES {', '.join([values] * rows)}"
    )


class LedgerWriter:
    """Batches ledger rows off the request path. Thread-safe; one per process."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        flush_interval: float = 0.1,
        max_batch: int = 1000,
        max_retries: int = 3,
        max_pending: int = 100_000,
    ) -> None:
        if flush_interval <= 0 or max_batch < 1 or max_retries < 0 or max_pending < 1:
            raise ValueError("flush_interval, max_batch and max_pending must be positive")
        self._engine = engine
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self._max_retries = max_retries
        self._max_pending = max_pending
        self._queue: deque[LedgerRow] = deque()
        self._pending: list[Any] = []
        self._sqlite = engine.dialect.name == "sqlite"
        if self._sqlite:
            _adapt_none_directly()
        self._convert = row_to_sqlite if self._sqlite else row_to_params
        self._insert_sql = _insert_sql(1)
        self._block_sql = {rows: _insert_sql(rows) for rows in _BLOCKS}
        self._pending_tries = 0
        self._flush_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.written = 0
        self.dropped = 0
        self.failed_flushes = 0
        self.failing_since: float | None = None  # time.monotonic() of an outage's first failure
        self.last_error: str | None = None  # its type and first line, no row contents
        self._logged_at = 0.0
        database = engine.url.database if self._sqlite else None
        self._path = database if database and database != ":memory:" else None
        self._file = _file_id(self._path)  # (device, inode) of the file written to

    @property
    def queued(self) -> int:
        """Rows waiting to be written (queued plus a batch being retried)."""
        return len(self._queue) + len(self._pending)

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is not None or self._closed:
            return
        self._thread = threading.Thread(target=self._run, name="laneway-ledger", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def record(self, row: LedgerRow) -> None:
        """Queue one row. Never blocks on the database and never raises."""
        try:
            if self._closed or len(self._queue) >= self._max_pending:
                self._count_dropped(1)
                return
            self._queue.append(row)
        except Exception:  # pragma: no cover - the append itself cannot fail in practice
            self._count_dropped(1)

    def flush(self) -> None:
        """Write everything queued now (synchronously); failures are counted, not raised."""
        with self._flush_lock:
            self._drain()

    def close(self) -> None:
        """Stop the thread and write what is left, retrying a failing batch a few times."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._flush_lock:
            self._pending_tries = 0  # each kind of failure gets max_retries tries now
            while self._queue or self._pending:
                if not self._drain():
                    time.sleep(self._flush_interval)

    def _run(self) -> None:
        while not self._stop.wait(self._flush_interval):
            try:
                self.flush()
            except Exception:  # pragma: no cover - _drain already catches database errors
                _log.exception("ledger writer tick failed")

    def _count_dropped(self, n: int) -> None:
        with self._count_lock:
            self.dropped += n

    def _take_batch(self) -> list[Any]:
        batch: list[Any] = []
        convert = self._convert
        sqlite = self._sqlite
        last: Any = None
        ts = ""
        while self._queue and len(batch) < self._max_batch:
            row = self._queue.popleft()
            try:
                if not sqlite:
                    batch.append(convert(row))
                    continue
                if row.ts is not last:  # a request's rows share one datetime object
                    last, ts = row.ts, sqlite_ts(row.ts)
                batch.append(row_to_sqlite(row, ts))
            except Exception as exc:
                self._count_dropped(1)
                _log.error("ledger row dropped: it cannot be stored (%s)", type(exc).__name__)
        return batch

    def _drain(self) -> bool:
        """Write queued rows until none are left; ``False`` when a batch failed."""
        while True:
            if not self._pending:
                self._pending = self._take_batch()
                self._pending_tries = 0
            if not self._pending:
                return True
            if not self._write(self._pending):
                return False
            self._pending = []

    def _check_file(self) -> None:
        """Raise ``DatabaseFileGone`` when the SQLite file was deleted; when another file
        took its place (restored, recreated), reconnect to it."""
        if self._path is None:
            return
        now = _file_id(self._path)
        if now is None:
            raise DatabaseFileGone(f"the database file {self._path} was deleted or moved")
        if now != self._file:
            self._engine.dispose()  # pooled connections still write to the old file
            self._file = now

    def _insert(self, batch: list[Any]) -> None:
        self._check_file()
        if not self._sqlite:
            with self._engine.connect() as conn, conn.begin():
                conn.execute(LEDGER.insert(), batch)
            return
        raw = self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                self._insert_rows(cursor, batch)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
            cursor.close()
        finally:
            raw.close()

    def _insert_rows(self, cursor: DBAPICursor, batch: list[Any]) -> None:
        """``batch`` in order: blocks of rows as one multi-row ``INSERT`` each, the rest
        with ``executemany``. The driver releases and takes back the interpreter lock
        around every statement step; a step per row made the writer thread and the event
        loop hand the lock back and forth (futex calls) hundreds of times a batch."""
        start, end = 0, len(batch)
        for rows in _BLOCKS:
            sql = self._block_sql[rows]
            while end - start >= rows:
                cursor.execute(sql, list(chain.from_iterable(batch[start : start + rows])))
                start += rows
        if start < end:
            cursor.executemany(self._insert_sql, batch[start:])

    def _write(self, batch: list[Any]) -> bool:
        try:
            self._insert(batch)
        except Exception as exc:
            if len(batch) > 1 and _refused_row(exc):
                return self._write_each(batch)
            return self._failed(batch, exc)
        with self._count_lock:
            self.written += len(batch)
        if self.failing_since is not None:
            self._resumed()
        return True

    def _resumed(self) -> None:
        since = self.failing_since or time.monotonic()
        self.failing_since = self.last_error = None
        _log.warning(
            "ledger writes resumed after %.1f s; the rows kept meanwhile are written "
            "(%d rows dropped since start)",
            time.monotonic() - since,
            self.dropped,
        )

    def _failed(self, batch: list[Any], exc: Exception) -> bool:
        """Count a failed try of the pending ``batch``: kept while the database is away
        (logged once an outage, then every ``_REMIND_S``), else dropped after
        ``max_retries`` (``True``: nothing is left pending)."""
        self._pending = batch
        self._pending_tries += 1
        with self._count_lock:
            self.failed_flushes += 1
        now = time.monotonic()
        self.last_error = _describe(exc)
        if self.failing_since is None:
            self.failing_since = now
            self._logged_at = 0.0
        if _unavailable(exc) and not self._closed:
            if now - self._logged_at >= _REMIND_S:
                self._logged_at = now
                _log.warning(
                    "ledger writes are failing since %.0f s (%s); %d rows are kept and "
                    "retried every %.2f s (at most %d; past that new rows are dropped, "
                    "%d so far)",
                    now - self.failing_since,
                    self.last_error,
                    self.queued,
                    self._flush_interval,
                    self._max_pending,
                    self.dropped,
                )
            return False
        give_up = self._pending_tries > self._max_retries
        _log.warning(
            "ledger write of %d rows failed (try %d of %d)%s: %s",
            len(batch),
            self._pending_tries,
            self._max_retries + 1,
            "; rows dropped" if give_up else "",
            _describe(exc),
        )
        if give_up:
            self._count_dropped(len(batch))
            self._pending = []
            return True
        return False

    def _write_each(self, batch: list[Any]) -> bool:
        """A batch the database refused for one of its values: written row by row, so that
        only the rows it cannot take are dropped; a failure of another kind (locked, disk
        full) keeps the rows not yet written pending, to be retried on the next tick."""
        for i, row in enumerate(batch):
            try:
                self._insert([row])
            except Exception as exc:
                if not _refused_row(exc):
                    return self._failed(batch[i:], exc)
                self._count_dropped(1)
                _log.error("ledger row dropped: the database refused it (%s)", _describe(exc))
                continue
            with self._count_lock:
                self.written += 1
        self._pending = []
        return True
