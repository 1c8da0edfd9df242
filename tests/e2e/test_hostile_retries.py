"""The official SDKs' own retry logic against the gateway's errors: a ``Retry-After`` no
client should wait for in line (a spent monthly budget resets in days) must not make an
SDK sleep that long; the gateway says ``x-should-retry: false`` with it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import anthropic
import openai
import pytest

from laneway.governance import GovernanceStore
from laneway.ledger import open_database
from laneway.testing import FakeOpenAI
from tests.e2e.conftest import ENV, GatewayFactory, openai_deployment

MASTER = "master-for-hostile-retries"
PRICE = {"input_per_mtok": "2.50", "output_per_mtok": "10.00"}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(ENV, "LANEWAY_MASTER_KEY", MASTER)
    return MASTER


def _spent_key(tmp_path: Path) -> str:
    """A key whose monthly budget is too small for any request: 429 budget_exceeded with
    a Retry-After of the seconds until the month ends."""
    engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
    secret, _ = GovernanceStore(engine).create_key("tiny", budget_usd=Decimal("0.000001"))
    engine.dispose()
    return secret


@pytest.mark.usefixtures("master_key")
def test_a_spent_budget_is_not_retried_by_either_sdk(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url, price=PRICE)]})
    secret = _spent_key(tmp_path)
    waits: list[float] = []

    def no_wait(*args: object, **kwargs: object) -> float:
        waits.append(0.0)  # one call per retry the SDK decided on
        return 0.0

    # The anthropic SDK waits whatever Retry-After says (here weeks); without a stop
    # signal it would sleep that long. Its wait is made 0 here so that the test counts
    # the retries instead of hanging.
    with anthropic.Anthropic(base_url=gw.url, api_key=secret, max_retries=2) as claude:
        claude._calculate_retry_timeout = no_wait  # type: ignore[method-assign]
        with pytest.raises(anthropic.RateLimitError) as info:
            claude.messages.create(model="gpt", max_tokens=100, messages=HI)  # type: ignore[arg-type]
    headers = info.value.response.headers
    assert info.value.body["error"]["laneway_code"] == "budget_exceeded"  # type: ignore[index]
    if int(headers["retry-after"]) <= 120:  # run in the month's last two minutes
        pytest.skip("the budget resets within two minutes: a retry is then reasonable")
    assert headers["x-should-retry"] == "false"
    assert waits == []  # not retried

    with openai.OpenAI(base_url=gw.base_url, api_key=secret, max_retries=2) as client:
        client._calculate_retry_timeout = no_wait  # type: ignore[method-assign]
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="gpt", messages=HI)  # type: ignore[arg-type]
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert waits == []
    assert fake_openai.received == []


@pytest.mark.usefixtures("master_key")
def test_a_short_retry_after_is_still_left_to_the_sdk(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """A key's per-minute limit says Retry-After within two minutes (its sliding window):
    the SDKs may wait it out and retry, so no ``x-should-retry`` is sent."""
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url, price=PRICE)]})
    engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
    secret, _ = GovernanceStore(engine).create_key("limited", rpm=1)
    engine.dispose()
    with anthropic.Anthropic(base_url=gw.url, api_key=secret, max_retries=0) as claude:
        claude.messages.create(model="gpt", max_tokens=100, messages=HI)  # type: ignore[arg-type]
        with pytest.raises(anthropic.RateLimitError) as info:
            claude.messages.create(model="gpt", max_tokens=100, messages=HI)  # type: ignore[arg-type]
    headers = info.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 120
    assert "x-should-retry" not in headers
