from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from laneway.errors import InvalidRequest
from laneway.ledger import (
    LedgerRow,
    UsageGroup,
    parse_since,
    percentile,
    request_costs,
    usage_summary,
)

from .conftest import T0, row

D = Decimal
DAY2 = T0 + timedelta(days=1)

# r1: simple request served by gpt-mini.  r2: falls back from flaky to gpt-big.
# r3: times out on gpt-mini (next day).  r4: eval traffic.  r5: a deployment without a price.
TRAFFIC = [
    row("r1", 0, key_id="k1", tier="simple", deployment="gpt-mini", latency_ms=100.0,
        ttft_ms=20.0, prompt_tokens=100, completion_tokens=50, cost_usd=D("0.001")),
    row("r1", 1, key_id="k1", tier="simple", deployment="gpt-mini", hosting="closed_api",
        prompt_tokens=100, completion_tokens=50, cached_tokens=20, cost_usd=D("0.001")),
    row("r2", 0, key_id="k1", tier="complex", requested_model="gpt-4o", deployment="gpt-big",
        latency_ms=300.0, fallbacks=1),
    row("r2", 1, key_id="k1", tier="complex", requested_model="gpt-4o", deployment="flaky",
        status=503, error_kind="upstream_server_error", prompt_tokens=0, completion_tokens=0,
        cost_usd=D("0")),
    row("r2", 2, key_id="k1", tier="complex", requested_model="gpt-4o", deployment="gpt-big",
        prompt_tokens=200, completion_tokens=100, cost_usd=D("0.01")),
    row("r3", 0, ts=DAY2, key_id="k2", tier="simple", deployment="gpt-mini", status=504,
        error_kind="upstream_timeout", latency_ms=1000.0),
    row("r3", 1, ts=DAY2, key_id="k2", tier="simple", deployment="gpt-mini", status=504,
        error_kind="upstream_timeout", prompt_tokens=0, completion_tokens=0, cost_usd=D("0")),
    row("r4", 0, source="eval", tier="simple", deployment="gpt-mini", latency_ms=5.0),
    row("r4", 1, source="eval", tier="simple", deployment="gpt-mini", prompt_tokens=7,
        completion_tokens=3, cost_usd=D("0.0005")),
    row("r5", 0, key_id="k2", tier="simple", deployment="mystery", latency_ms=50.0),
    row("r5", 1, key_id="k2", tier="simple", deployment="mystery", prompt_tokens=10,
        completion_tokens=5, cost_usd=None),
]  # fmt: skip


@pytest.fixture
def traffic(engine: sa.Engine, write_rows: Callable[[list[LedgerRow]], None]) -> sa.Engine:
    write_rows(TRAFFIC)
    return engine


def _by_key(groups: list[UsageGroup]) -> dict[str | None, UsageGroup]:
    return {g.key: g for g in groups}


def test_by_deployment_counts_requests_where_they_ended_and_spend_where_it_ran(
    traffic: sa.Engine,
) -> None:
    groups = _by_key(usage_summary(traffic, by="deployment"))
    assert set(groups) == {"gpt-mini", "gpt-big", "flaky", "mystery"}
    mini = groups["gpt-mini"]
    assert (mini.requests, mini.errors, mini.error_rate, mini.attempts) == (2, 1, 0.5, 2)
    assert (mini.prompt_tokens, mini.completion_tokens, mini.cached_tokens) == (100, 50, 20)
    assert mini.cost_usd == D("0.001")
    big = groups["gpt-big"]
    assert (big.requests, big.attempts, big.prompt_tokens, big.cost_usd) == (1, 1, 200, D("0.01"))
    flaky = groups["flaky"]
    assert (flaky.requests, flaky.attempts, flaky.error_rate, flaky.cost_usd) == (0, 1, None, D(0))
    mystery = groups["mystery"]
    assert mystery.cost_usd is None
    assert (mystery.cost_known_usd, mystery.cost_unknown_requests) == (D(0), 1)


def test_by_tier_puts_every_attempt_with_its_request(traffic: sa.Engine) -> None:
    groups = _by_key(usage_summary(traffic, by="tier"))
    simple, complex_ = groups["simple"], groups["complex"]
    assert (simple.requests, simple.errors, simple.attempts) == (3, 1, 3)
    assert simple.cost_usd is None  # r5 has no price
    assert (simple.cost_known_usd, simple.cost_unknown_requests) == (D("0.001"), 1)
    assert (complex_.requests, complex_.attempts, complex_.cost_usd) == (1, 2, D("0.01"))
    assert complex_.prompt_tokens == 200


def test_by_key_day_and_model(traffic: sa.Engine) -> None:
    keys = _by_key(usage_summary(traffic, by="key"))
    assert set(keys) == {"k1", "k2"}
    assert (keys["k1"].requests, keys["k1"].cost_usd) == (2, D("0.011"))
    assert (keys["k2"].requests, keys["k2"].errors, keys["k2"].cost_usd) == (2, 1, None)

    days = usage_summary(traffic, by="day")
    assert [(g.key, g.requests) for g in days] == [("2026-03-02", 3), ("2026-03-03", 1)]
    assert days[1].first_at == DAY2

    models = _by_key(usage_summary(traffic, by="model"))
    assert (models["auto"].requests, models["gpt-4o"].requests) == (3, 1)


def test_groups_are_sorted_by_requests_then_name(traffic: sa.Engine) -> None:
    keys = [g.key for g in usage_summary(traffic, by="deployment")]
    assert keys == ["gpt-mini", "gpt-big", "mystery", "flaky"]


def test_eval_rows_are_excluded_by_default(traffic: sa.Engine) -> None:
    api = _by_key(usage_summary(traffic, by="deployment"))["gpt-mini"]
    both = _by_key(usage_summary(traffic, by="deployment", source=None))["gpt-mini"]
    evals = usage_summary(traffic, by="deployment", source="eval")
    assert (api.requests, both.requests) == (2, 3)
    assert both.cost_usd == D("0.0015")
    assert [(g.key, g.requests, g.cost_usd) for g in evals] == [("gpt-mini", 1, D("0.0005"))]


def test_since_filters_by_time(traffic: sa.Engine) -> None:
    groups = usage_summary(traffic, by="day", since=T0 + timedelta(hours=12))
    assert [(g.key, g.requests) for g in groups] == [("2026-03-03", 1)]


def test_latency_percentiles_on_known_values(
    engine: sa.Engine, write_rows: Callable[[list[LedgerRow]], None]
) -> None:
    write_rows(
        [
            row(f"p{i}", 0, deployment="d", latency_ms=10.0 * i, ttft_ms=float(i))
            for i in range(1, 21)
        ]
    )
    (group,) = usage_summary(engine, by="deployment")
    assert group.requests == 20
    assert group.latency_p50_ms == pytest.approx(105.0)
    assert group.latency_p95_ms == pytest.approx(190.5)
    assert group.ttft_p50_ms == pytest.approx(10.5)


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_request_without_attempt_rows_uses_its_own_tokens_and_cost(
    engine: sa.Engine, write_rows: Callable[[list[LedgerRow]], None]
) -> None:
    """A request answered by its only call is one row: its summary is also that call."""
    write_rows([row("solo", 0, deployment="d", prompt_tokens=9, cost_usd=D("0.000000123"))])
    (group,) = usage_summary(engine)
    assert (group.requests, group.attempts, group.prompt_tokens) == (1, 1, 9)
    assert group.cost_usd == D("0.000000123")
    assert request_costs(engine, ["solo", "absent"]) == {"solo": D("0.000000123")}


def test_request_refused_before_any_call_counts_no_attempt(
    engine: sa.Engine, write_rows: Callable[[list[LedgerRow]], None]
) -> None:
    write_rows([row("refused", 0, status=403, error_kind="policy_denied")])
    (group,) = usage_summary(engine)
    assert (group.requests, group.errors, group.attempts, group.prompt_tokens) == (1, 1, 0, 0)


def _self_hosted(
    request_id: str,
    ts: datetime,
    deployment: str,
    hourly: str,
    tokens: tuple[int, int],
    source: str = "api",
) -> list[LedgerRow]:
    common = {"ts": ts, "deployment": deployment, "source": source, "hosting": "self_hosted"}
    return [
        row(request_id, 0, **common),
        row(request_id, 1, **common, prompt_tokens=tokens[0], completion_tokens=tokens[1],
            hourly_cost_usd=D(hourly)),
    ]  # fmt: skip


H10, H11 = T0, T0 + timedelta(hours=1)
SELF_HOSTED = [
    *_self_hosted("a1", H10 + timedelta(minutes=5), "llama-a", "2.00", (200, 100)),
    *_self_hosted("a2", H10 + timedelta(minutes=59, seconds=59), "llama-a", "2.00", (60, 40)),
    *_self_hosted("a3", H11 + timedelta(minutes=30), "llama-a", "2.00", (30, 20)),
    *_self_hosted("a4", H11 + timedelta(minutes=31), "llama-a", "2.00", (100, 50), source="eval"),
    *_self_hosted("b1", H10 + timedelta(minutes=1), "llama-b", "1.20", (900, 100)),
    *_self_hosted("b2", H10 + timedelta(minutes=2), "llama-b", "1.20", (1500, 500)),
    *_self_hosted("b3", H10 + timedelta(minutes=3), "llama-b", "1.00", (0, 0)),
    *_self_hosted("c1", H10 + timedelta(minutes=3), "llama-c", "1.00", (1, 1)),
    *_self_hosted("c2", H10 + timedelta(minutes=3), "llama-c", "1.00", (1, 1)),
    *_self_hosted("c3", H10 + timedelta(minutes=3), "llama-c", "1.00", (1, 1)),
]


def test_self_hosted_cost_is_the_hour_divided_by_tokens_served(
    engine: sa.Engine, write_rows: Callable[[list[LedgerRow]], None]
) -> None:
    write_rows(SELF_HOSTED)
    costs = request_costs(engine, ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "c1"])
    assert costs == {
        "a1": D("1.5"),  # 2.00 × 300 / 400 (hour 10)
        "a2": D("0.5"),  # 2.00 × 100 / 400
        "a3": D("0.5"),  # 2.00 × 50 / 200 (hour 11, the eval row shares the GPU hour)
        "a4": D("1.5"),
        "b1": D("0.4"),  # 1.20 × 1000 / 3000
        "b2": D("0.8"),
        "b3": D("0"),
        "c1": D(1) / D(3),
    }
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM ledger WHERE cost_nusd IS NOT NULL")
        assert stored.scalar_one() == 0  # amortised at query time, never stored as a price

    groups = _by_key(usage_summary(engine, by="deployment"))
    assert groups["llama-a"].cost_usd == D("2.5")  # api only: a1 + a2 + a3
    assert groups["llama-b"].cost_usd == D("1.2")
    assert groups["llama-c"].cost_usd == pytest.approx(D(1), abs=D("1e-20"))
    later = _by_key(usage_summary(engine, by="deployment", since=H11 + timedelta(minutes=10)))
    assert later["llama-a"].cost_usd == D("0.5")  # the hour's other rows still divide it


def test_single_row_requests_share_the_self_hosted_hour(
    engine: sa.Engine, write_rows: Callable[[list[LedgerRow]], None]
) -> None:
    """A request answered by its only call is one summary row; it still takes its share
    of the GPU hour, beside a request whose attempts have their own rows."""
    common = {"deployment": "gpu", "hosting": "self_hosted", "hourly_cost_usd": D("3.00")}
    write_rows(
        [
            row("one", 0, ts=T0, prompt_tokens=100, completion_tokens=50, **common),
            *_self_hosted("two", T0 + timedelta(minutes=1), "gpu", "3.00", (100, 50)),
        ]
    )
    assert request_costs(engine, ["one", "two"]) == {"one": D("1.5"), "two": D("1.5")}
    (group,) = usage_summary(engine, by="deployment")
    assert (group.requests, group.attempts, group.cost_usd) == (2, 2, D("3.00"))


def test_self_hosted_without_token_counts_is_unknown(
    engine: sa.Engine, write_rows: Callable[[list[LedgerRow]], None]
) -> None:
    write_rows(
        [
            row("x", 0, deployment="gpu", hosting="self_hosted"),
            row("x", 1, deployment="gpu", hosting="self_hosted", hourly_cost_usd=D("3")),
        ]
    )
    assert request_costs(engine, ["x"]) == {"x": None}
    (group,) = usage_summary(engine)
    assert (group.cost_usd, group.cost_unknown_requests) == (None, 1)


NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("30d", NOW - timedelta(days=30)),
        ("90m", NOW - timedelta(minutes=90)),
        ("2w", NOW - timedelta(weeks=2)),
        ("45s", NOW - timedelta(seconds=45)),
        ("1.5h", NOW - timedelta(minutes=90)),
        ("2026-05-01", datetime(2026, 5, 1, tzinfo=UTC)),
        ("2026-05-01T08:30:00Z", datetime(2026, 5, 1, 8, 30, tzinfo=UTC)),
        ("2026-05-01T10:30:00+02:00", datetime(2026, 5, 1, 8, 30, tzinfo=UTC)),
        ("2026-05-01T08:30", datetime(2026, 5, 1, 8, 30, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    parsed = parse_since(text, now=NOW)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "24", "h24", "-3d", "2026-13-01", ""])
def test_parse_since_rejects_nonsense_clearly(text: str) -> None:
    with pytest.raises(InvalidRequest, match="24h, 30d") as info:
        parse_since(text, now=NOW)
    assert info.value.param == "since"


def test_unknown_grouping_is_rejected(engine: sa.Engine) -> None:
    with pytest.raises(InvalidRequest, match="cannot group by"):
        usage_summary(engine, by="colour")  # type: ignore[arg-type]
