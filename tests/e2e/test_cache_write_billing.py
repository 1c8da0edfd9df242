"""Prompt-cache writes are billed at the cache-write price, end to end: the ``anthropic``
SDK sends ``cache_control`` marks to ``/v1/messages``, the fake Anthropic reports cache
reads and writes, and the cost (header and ledger) is exactly fresh input at the input
price + reads at the cached-input price + writes at the 5-minute (1.25x input) or 1-hour
(2x input) cache-write price + output. Writes are 1-hour only when every mark of the
request asked for ``ttl: 1h`` (the fake, like an upstream that does not split its writes
by TTL, sends no ``usage.cache_creation``); the ledger's ``cache_write_tokens`` holds
the count."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest

from laneway.testing import FakeAnthropic
from tests.e2e.conftest import GatewayFactory, rows_when

D = Decimal
READS, WRITES = 300, 40
FIVE_MIN: Any = {"type": "ephemeral"}
HOUR: Any = {"type": "ephemeral", "ttl": "1h"}
# claude-sonnet-4-6 in the packaged catalog (https://www.anthropic.com/pricing, 2026-12-07)
SONNET = {"input": D("3"), "output": D("15"), "read": D("0.30"), "5m": D("3.75"), "1h": D("6")}
OVERRIDE = {
    "input_per_mtok": "2",
    "output_per_mtok": "10",
    "cached_input_per_mtok": "0.20",
    "cache_write_input_per_mtok": "2.50",
    "cache_write_1h_input_per_mtok": "4",
}


@pytest.fixture
def claude() -> Any:
    with FakeAnthropic(
        api_key="sk-upstream-secret", cache_read_tokens=READS, cache_creation_tokens=WRITES
    ) as server:
        yield server


@pytest.fixture
def gw(start_gateway: GatewayFactory, claude: Any) -> Any:
    deployments = [
        {"name": "catalog", "model": "claude-sonnet-4-6", "provider": "anthropic",
         "api_base": claude.url, "api_key": "env:FAKE_KEY"},
        {"name": "override", "model": "claude-sonnet-4-6", "provider": "anthropic",
         "api_base": claude.url, "api_key": "env:FAKE_KEY", "price": OVERRIDE},
    ]  # fmt: skip
    return start_gateway({"deployments": deployments, "ledger": {"flush_interval": 0.05}})


def _request(system_mark: Any, user_mark: Any) -> dict[str, Any]:
    return {
        "max_tokens": 100,
        "system": [{"type": "text", "text": "The catalogue. " * 80, "cache_control": system_mark}],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Find the atlas", "cache_control": user_mark}],
            }
        ],
    }


def _call(gw: Any, model: str, body: dict[str, Any], stream: bool) -> tuple[Any, Decimal | None]:
    client = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0, timeout=30)
    with client:
        if stream:
            with client.messages.stream(model=model, **body) as events:
                return events.get_final_message().usage, None
        raw = client.messages.with_raw_response.create(model=model, **body)
        return raw.parse().usage, Decimal(raw.headers["x-laneway-cost-usd"])


def _expected(usage: Any, prices: dict[str, Decimal], write_price: Decimal) -> Decimal:
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (READS, WRITES)
    fresh = usage.input_tokens  # Anthropic's input_tokens excludes reads and writes
    return (
        fresh * prices["input"]
        + READS * prices["read"]
        + WRITES * write_price
        + usage.output_tokens * prices["output"]
    ) / 1_000_000


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("marks", "ttl"),
    [((FIVE_MIN, FIVE_MIN), "5m"), ((HOUR, HOUR), "1h"), ((HOUR, FIVE_MIN), "5m")],
    ids=["all-5m", "all-1h", "mixed-billed-5m"],
)
def test_catalog_prices_bill_cache_writes_by_ttl(
    gw: Any, tmp_path: Path, marks: tuple[Any, Any], ttl: str, stream: bool
) -> None:
    usage, header = _call(gw, "catalog", _request(*marks), stream)
    expected = _expected(usage, SONNET, SONNET[ttl])
    if header is not None:
        assert header == expected
    row = rows_when(tmp_path, lambda rows: len(rows) == 1)[0]
    assert (row["cached_tokens"], row["cache_write_tokens"]) == (READS, WRITES)
    assert row["prompt_tokens"] == usage.input_tokens + READS + WRITES
    assert Decimal(row["cost_nusd"]) / 10**9 == expected
    # what the old billing (writes at the input price) would have charged is less
    under = _expected(usage, SONNET, SONNET["input"])
    assert expected - under == WRITES * (SONNET[ttl] - SONNET["input"]) / 1_000_000 > 0


def test_a_config_price_override_carries_its_own_write_prices(gw: Any, tmp_path: Path) -> None:
    usage, header = _call(gw, "override", _request(HOUR, HOUR), stream=False)
    prices = {"input": D("2"), "output": D("10"), "read": D("0.20")}
    expected = _expected(usage, prices, D("4"))
    assert header == expected
    row = rows_when(tmp_path, lambda rows: len(rows) == 1)[0]
    assert Decimal(row["cost_nusd"]) / 10**9 == expected
    assert row["cache_write_tokens"] == WRITES
