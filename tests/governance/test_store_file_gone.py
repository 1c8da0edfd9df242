"""The database file deleted or replaced under a running gateway.

The governance store's pooled connections kept the deleted file alive and wrote budgets,
rate limits and kill switches into it: every write "succeeded" and was lost with the file.
Now a write after the file is gone is 503 governance_unavailable (fails closed, as for a
full or read-only database), reads go on from the connections already open, and a file put
in its place is written to (as the ledger writer does)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from laneway.errors import GovernanceUnavailable
from laneway.governance._keys import KEYS, KeyRecord
from laneway.governance._store import GovernanceStore
from laneway.ledger import open_database


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "laneway.db"


@pytest.fixture
def engine(path: Path) -> Iterator[sa.Engine]:
    eng = open_database(f"sqlite:///{path}", file_check_s=0)  # look at the file every time
    yield eng
    eng.dispose()


def _delete(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _key_names(path: Path) -> set[str]:
    other = open_database(f"sqlite:///{path}", create=False, migrate=False)
    try:
        with other.connect() as conn:
            return set(conn.execute(sa.select(KEYS.c.name)).scalars())
    finally:
        other.dispose()


def _gone(store: GovernanceStore, path: Path) -> KeyRecord:
    """A budgeted key of ``store``, then the file deleted: its next reservation is 503."""
    key = store.create_key("team", budget_usd=Decimal("10"), period="day")[1]
    _delete(path)
    with pytest.raises(GovernanceUnavailable):
        store.reserve(key, Decimal("0.01"))
    return key


def test_after_the_file_is_deleted_every_write_is_refused_and_reads_go_on(
    engine: sa.Engine, path: Path
) -> None:
    store = GovernanceStore(engine)
    plaintext, free = store.create_key("free")
    _gone(store, path)
    with pytest.raises(GovernanceUnavailable):
        store.kill("model", "gpt-x", actor="test")
    with pytest.raises(GovernanceUnavailable):
        store.create_key("late")
    # reads go on from the open connection: keys without limits are still served
    record = store.authenticate(plaintext)
    assert record is not None and record.id == free.id
    assert not path.exists()  # no empty database was created in the file's place


def test_a_file_put_back_is_written_to(engine: sa.Engine, path: Path) -> None:
    store = GovernanceStore(engine)
    _gone(store, path)
    open_database(f"sqlite:///{path}").dispose()  # the operator puts a database back
    store.create_key("after")
    assert _key_names(path) == {"after"}
    assert store.get_key("after").name == "after"


def test_a_replaced_file_is_written_to_not_the_old_one(
    engine: sa.Engine, path: Path, tmp_path: Path
) -> None:
    store = GovernanceStore(engine)
    store.create_key("old")
    backup = tmp_path / "backup.db"
    open_database(f"sqlite:///{backup}").dispose()
    _delete(path)  # the old file's -wal and -shm must go with it (SQLite would read them)
    os.replace(backup, path)  # restored from a backup: a new file under the same name
    store.create_key("new")
    assert _key_names(path) == {"new"}


def test_a_refused_write_releases_the_write_lock(engine: sa.Engine, path: Path) -> None:
    _gone(GovernanceStore(engine), path)
    raw = engine.raw_connection()
    try:
        assert not raw.driver_connection.in_transaction  # type: ignore[union-attr]
    finally:
        raw.close()
