from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
import sqlalchemy as sa

from laneway.ledger import (
    LEDGER,
    LedgerRow,
    amortised_cost,
    format_usd,
    nusd_to_usd,
    row_from_mapping,
    token_cost,
    usd_to_nusd,
)

D = Decimal


@pytest.mark.parametrize(
    ("usd", "nusd"),
    [("0.000000123", 123), ("0", 0), ("12.5", 12_500_000_000), ("98765.432101234", 98765432101234)],
)
def test_money_round_trips_exactly(usd: str, nusd: int) -> None:
    assert usd_to_nusd(D(usd)) == nusd
    assert nusd_to_usd(nusd) == D(usd)
    assert format_usd(nusd_to_usd(nusd)) == usd


def test_unknown_money_stays_none() -> None:
    assert usd_to_nusd(None) is None
    assert nusd_to_usd(None) is None
    assert format_usd(None) is None


def test_sub_nano_amounts_round_half_even() -> None:
    assert usd_to_nusd(D("0.0000000015")) == 2
    assert usd_to_nusd(D("0.0000000025")) == 2
    assert format_usd(D("1.23E-7")) == "0.000000123"


def test_cost_round_trips_through_the_database(
    engine: sa.Engine,
    write_rows: Callable[[list[LedgerRow]], None],
    make_row: Callable[..., LedgerRow],
) -> None:
    write_rows(
        [
            make_row("exact", 1, cost_usd=D("0.000000123"), hourly_cost_usd=D("2.75")),
            make_row("unknown", 1, cost_usd=None),
        ]
    )
    with engine.connect() as conn:
        raw = dict(conn.execute(sa.select(LEDGER.c.request_id, LEDGER.c.cost_nusd)).all())
        rows = {
            r.request_id: r for r in map(row_from_mapping, conn.execute(LEDGER.select()).mappings())
        }
    assert raw == {"exact": 123, "unknown": None}
    assert rows["exact"].cost_usd == D("0.000000123")
    assert rows["exact"].hourly_cost_usd == D("2.75")
    assert rows["unknown"].cost_usd is None


def test_token_cost_prices_input_output_and_cached_tokens() -> None:
    cost = token_cost(
        1_000_000,
        500_000,
        400_000,
        input_per_mtok=D("2.50"),
        output_per_mtok=D("10"),
        cached_input_per_mtok=D("1.25"),
    )
    # 600k uncached × 2.50 + 400k cached × 1.25 + 500k out × 10, per million
    assert cost == D("1.5") + D("0.5") + D("5")


def test_cached_tokens_fall_back_to_the_input_price() -> None:
    assert token_cost(1000, 0, 1000, input_per_mtok=D("3"), output_per_mtok=None) == D("0.003")


def test_free_cached_price_is_zero_not_the_input_price() -> None:
    cost = token_cost(
        1000, 0, 1000, input_per_mtok=D("3"), output_per_mtok=None, cached_input_per_mtok=D("0")
    )
    assert cost == D("0")


@pytest.mark.parametrize(
    ("prompt", "completion", "input_price", "output_price"),
    [
        (100, 10, None, D("1")),  # input price unknown
        (100, 10, D("1"), None),  # output price unknown
        (None, 10, D("1"), D("1")),  # usage unknown
        (-5, 10, D("1"), D("1")),  # nonsense counts
        (100, 10, D("NaN"), D("1")),
    ],
)
def test_token_cost_is_none_when_something_needed_is_unknown(
    prompt: int | None,
    completion: int | None,
    input_price: Decimal | None,
    output_price: Decimal | None,
) -> None:
    assert (
        token_cost(
            prompt, completion, None, input_per_mtok=input_price, output_per_mtok=output_price
        )
        is None
    )


def test_token_cost_needs_no_price_for_unused_kinds() -> None:
    assert token_cost(0, 2_000, None, input_per_mtok=None, output_per_mtok=D("0.6")) == D("0.0012")


def test_amortised_cost_divides_the_hour_exactly() -> None:
    assert amortised_cost(D("2.00"), 300, 400) == D("1.5")
    assert amortised_cost(D("2.00"), 100, 400) == D("0.5")
    assert amortised_cost(D("1.20"), 0, 400) == D("0")
    assert amortised_cost(D("3"), 1, 3) == D(1)
    assert amortised_cost(D("2"), 1, 3) == D("2") / D("3")


@pytest.mark.parametrize(
    ("hourly", "row_tokens", "hour_tokens"),
    [(None, 10, 100), (D("1"), None, 100), (D("1"), 10, None), (D("1"), 10, 5), (D("1"), 5, 0)],
)
def test_amortised_cost_unknown_or_inconsistent_is_none(
    hourly: Decimal | None, row_tokens: int | None, hour_tokens: int | None
) -> None:
    assert amortised_cost(hourly, row_tokens, hour_tokens) is None
