"""The shadow pairs' writer commits through the SQLite driver (no SQLAlchemy commit event
fires for it), so it asks ``check_database_file`` before its COMMIT: a batch for a deleted
database file is rolled back and logged as lost, not written into the deleted inode."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from laneway.gateway._shadow import ShadowMirror
from laneway.ledger import open_database
from laneway.settings import ShadowSettings


def _pair(i: int) -> tuple[Any, ...]:
    ts = datetime(2026, 1, 1, tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return (f"req{i}", ts, "r", None, "[]", "prod", "m", "a", 1.0, 0, 1,
            "cand", "m", "b", None, 1.0, 0, 1)  # fmt: skip


def _count(path: Path) -> int:
    engine = open_database(f"sqlite:///{path}", create=False, migrate=False)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM shadow_pairs").scalar_one())
    finally:
        engine.dispose()


def test_pairs_for_a_deleted_file_are_logged_lost_not_written_into_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "laneway.db"
    engine = open_database(f"sqlite:///{path}", file_check_s=0)
    try:
        mirror = ShadowMirror(ShadowSettings(), engine, gateway=None)  # type: ignore[arg-type]
        mirror._write_pairs([_pair(1)])
        assert _count(path) == 1
        raw = engine.raw_connection()  # the pool's connection, opened on the old file
        raw.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        with caplog.at_level(logging.ERROR):
            mirror._write_pairs([_pair(2)])
        assert "could not store 1 shadow pairs" in caplog.text
        assert not path.exists()  # nothing recreated in its place either
    finally:
        engine.dispose()
