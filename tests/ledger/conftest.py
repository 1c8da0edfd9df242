from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from laneway.ledger import LedgerRow, LedgerWriter, open_database

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger' / 'laneway.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = open_database(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def write_rows(engine: sa.Engine) -> Callable[[list[LedgerRow]], None]:
    def write(rows: list[LedgerRow]) -> None:
        writer = LedgerWriter(engine)
        for row in rows:
            writer.record(row)
        writer.close()
        assert writer.written == len(rows)

    return write


def row(request_id: str, attempt: int = 0, **fields: Any) -> LedgerRow:
    fields.setdefault("ts", T0)
    fields.setdefault("requested_model", "auto")
    fields.setdefault("status", 200)
    return LedgerRow(request_id=request_id, attempt=attempt, **fields)


@pytest.fixture
def make_row() -> Callable[..., LedgerRow]:
    return row
