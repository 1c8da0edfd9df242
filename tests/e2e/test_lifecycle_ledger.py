"""The ledger's database going away while the gateway serves: rows are kept and written
when it comes back, the outage is logged once (not per batch) and ``/health/ready`` says
so. Before, a batch was dropped after four failed ticks (0.4 s): 25 requests answered
while a tmpfs was full left no row."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from laneway.ledger import LedgerRow, LedgerWriter, open_database
from laneway.testing import FakeOpenAI
from tests.e2e.conftest import GatewayFactory, openai_deployment, rows_when

HELLO = {"model": "primary", "messages": [{"role": "user", "content": "hello"}]}


def _row(request_id: str) -> LedgerRow:
    return LedgerRow(
        request_id=request_id, attempt=0, ts=datetime.now(UTC), requested_model="m", status=200
    )


def _wait(condition: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.02)


def _switchable_engine(path: Path, away: list[bool]) -> sa.Engine:
    """An engine on ``path`` whose new connections are read-only while ``away[0]``
    (SQLITE_READONLY on every write: the directory made read-only, as root cannot)."""

    def connect() -> sqlite3.Connection:
        mode = "ro" if away[0] else "rw"
        return sqlite3.connect(f"file:{path}?mode={mode}", uri=True, check_same_thread=False)

    return sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)


def test_rows_are_kept_while_the_database_is_read_only_and_written_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger.db"
    open_database(f"sqlite:///{path}").dispose()  # the schema
    away = [True]
    writer = LedgerWriter(_switchable_engine(path, away), flush_interval=0.01)
    writer.start()
    try:
        with caplog.at_level(logging.WARNING, logger="laneway.ledger"):
            for i in range(30):
                writer.record(_row(f"r{i}"))
            _wait(lambda: writer.failed_flushes >= 20)  # 20 ticks: the old code dropped at 4
            assert writer.failing_since is not None
            assert "readonly" in (writer.last_error or "").lower()
            assert (writer.dropped, writer.queued) == (0, 30)
            away[0] = False
            _wait(lambda: writer.written == 30)
        assert writer.failing_since is None
        outage_logs = [r for r in caplog.records if "failing" in r.getMessage()]
        assert len(outage_logs) == 1, caplog.text  # once, not once per tick
        assert "resumed" in caplog.text
    finally:
        writer.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (30,)


def test_close_does_not_hang_on_a_database_that_stays_away(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    open_database(f"sqlite:///{path}").dispose()
    writer = LedgerWriter(_switchable_engine(path, [True]), flush_interval=0.01, max_retries=2)
    writer.start()
    writer.record(_row("r"))
    _wait(lambda: writer.failed_flushes >= 5)
    started = time.monotonic()
    writer.close()
    assert time.monotonic() - started < 5
    assert (writer.dropped, writer.queued) == (1, 0)


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 600 KB tmpfs, to fill up: skipped where this process may not mount one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def test_a_full_disk_loses_no_row_and_ready_says_so(
    tiny_tmpfs: Path, fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    database = {"url": f"sqlite:///{tiny_tmpfs / 'ledger.db'}"}
    gw = start_gateway(
        {
            "database": database,
            "deployments": [openai_deployment("primary", fake_openai.url)],
            "ledger": {"flush_interval": 0.05},
        }
    )
    root = gw.base_url.removesuffix("/v1")
    with httpx.Client(base_url=root, timeout=20) as client:
        assert client.post("/v1/chat/completions", json=HELLO).status_code == 200
        rows_when(tiny_tmpfs, lambda rows: len(rows) == 1)
        filler = tiny_tmpfs / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)
        answered = [client.post("/v1/chat/completions", json=HELLO).status_code for _ in range(20)]
        assert answered == [200] * 20  # no key: served while the ledger cannot write

        def ledger() -> Any:
            return client.get("/health/ready").json()["ledger"]

        _wait(lambda: ledger()["writing"] is False)
        assert "full" in ledger()["error"]
        assert ledger()["queued"] == 20
        filler.unlink()
        _wait(lambda: ledger()["writing"] is True)
        assert ledger()["dropped"] == 0
    rows_when(tiny_tmpfs, lambda rows: len(rows) == 21)


def test_a_deleted_database_file_keeps_the_rows_for_the_file_put_back(
    tmp_path: Path, fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    """Deleted under a running gateway, the file lived on through the open connections:
    the writer said all was well while 10 answered requests went into a file no one could
    read. Now it notices (``/health/ready``), keeps the rows, and writes them to the file
    that takes the old one's place."""
    gw = start_gateway(
        {
            "deployments": [openai_deployment("primary", fake_openai.url)],
            "ledger": {"flush_interval": 0.05},
        }
    )
    path = tmp_path / "ledger.db"
    root = gw.base_url.removesuffix("/v1")
    with httpx.Client(base_url=root, timeout=20) as client:
        assert client.post("/v1/chat/completions", json=HELLO).status_code == 200
        rows_when(tmp_path, lambda rows: len(rows) == 1)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        answered = [client.post("/v1/chat/completions", json=HELLO).status_code for _ in range(10)]
        assert answered == [200] * 10

        def ledger() -> Any:
            return client.get("/health/ready").json()["ledger"]

        _wait(lambda: ledger()["writing"] is False)
        assert "deleted" in ledger()["error"]
        assert ledger()["queued"] == 10
        open_database(f"sqlite:///{path}").dispose()  # the operator puts a database back
        _wait(lambda: ledger()["writing"] is True)
        assert ledger()["dropped"] == 0
    rows_when(tmp_path, lambda rows: len(rows) == 10)
