"""Prompt-cache writes: priced above the input price (Anthropic: 1.25x for the 5-minute
TTL, 2x for 1 hour), stored in the ledger's ``cache_write_tokens`` column (migration 10)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from laneway.ledger import (
    LEDGER,
    MIGRATIONS,
    LedgerRow,
    migrate,
    row_from_mapping,
    token_cost,
)

D = Decimal
SONNET = {
    "input_per_mtok": D("3"),
    "output_per_mtok": D("15"),
    "cached_input_per_mtok": D("0.30"),
    "cache_write_input_per_mtok": D("3.75"),
    "cache_write_1h_input_per_mtok": D("6"),
}


def test_writes_are_billed_at_the_cache_write_price() -> None:
    # 1000 prompt = 200 reads + 300 writes (100 of them 1h) + 500 fresh; 100 out
    cost = token_cost(1000, 100, 200, cache_write_tokens=300, cache_write_1h_tokens=100, **SONNET)
    expected = (
        D(500) * D("3") + D(200) * D("0.30") + D(200) * D("3.75") + D(100) * D("6") + D(100) * 15
    ) / 1_000_000
    assert cost == expected == D("0.00441")


def test_without_writes_the_cost_is_what_it_was() -> None:
    assert (
        token_cost(1000, 100, 200, **SONNET)
        == (D(800) * 3 + D(200) * D("0.30") + D(100) * 15) / 1_000_000
    )


def test_missing_write_prices_fall_back_1h_to_5m_to_input() -> None:
    base = {"input_per_mtok": D("3"), "output_per_mtok": D("15")}
    no_1h = {**base, "cache_write_input_per_mtok": D("3.75")}
    assert token_cost(100, 0, 0, cache_write_tokens=100, cache_write_1h_tokens=100, **no_1h) == (
        D(100) * D("3.75") / 1_000_000
    )
    assert token_cost(100, 0, 0, cache_write_tokens=100, cache_write_1h_tokens=40, **base) == (
        D(100) * 3 / 1_000_000
    )


def test_writes_never_exceed_the_prompt_left_after_reads() -> None:
    # 100 prompt, 80 reads: only 20 can be writes, all of them 1h at most
    cost = token_cost(100, 0, 80, cache_write_tokens=50, cache_write_1h_tokens=90, **SONNET)
    assert cost == (D(80) * D("0.30") + D(20) * 6) / 1_000_000


@pytest.mark.parametrize(("writes", "writes_1h"), [(-1, 0), (10, -1), (True, 0)])
def test_nonsense_write_counts_make_the_cost_unknown(writes: int, writes_1h: int) -> None:
    cost = token_cost(
        100, 0, 0, cache_write_tokens=writes, cache_write_1h_tokens=writes_1h, **SONNET
    )
    assert cost is None


def test_cache_writes_round_trip_through_the_sqlite_writer(
    engine: sa.Engine,
    write_rows: Callable[[list[LedgerRow]], None],
    make_row: Callable[..., LedgerRow],
) -> None:
    write_rows(
        [
            make_row("written", 1, prompt_tokens=500, cached_tokens=100, cache_write_tokens=40),
            make_row("none", 1, prompt_tokens=5),
        ]
    )
    with engine.connect() as conn:
        raw = dict(conn.execute(sa.select(LEDGER.c.request_id, LEDGER.c.cache_write_tokens)).all())
        rows = {
            r.request_id: r for r in map(row_from_mapping, conn.execute(LEDGER.select()).mappings())
        }
    assert raw == {"written": 40, "none": None}
    assert rows["written"].cache_write_tokens == 40
    assert rows["written"].cached_tokens == 100


def test_migration_10_adds_the_column_and_keeps_older_rows(tmp_path: Path) -> None:
    assert MIGRATIONS[-1].number == 10
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        assert migrate(engine, MIGRATIONS[:-1])[-1] == 9
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO ledger (request_id, attempt, ts, source, requested_model, stream,"
                " status, fallbacks, partial, estimated)"
                " VALUES ('old', 0, '2026-12-07 00:00:00.000000', 'api', 'm', 0, 200, 0, 0, 0)"
            )
        assert migrate(engine) == [10]
        with engine.connect() as conn:
            old = row_from_mapping(conn.execute(LEDGER.select()).mappings().one())
        assert old.request_id == "old"
        assert old.cache_write_tokens is None
    finally:
        engine.dispose()
