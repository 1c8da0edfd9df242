"""Anthropic prompt caching through ``/v1/messages``: ``cache_control`` reaches an
Anthropic deployment on the very blocks the client marked (system, text, image,
tool_use, tool_result, tools), never reaches an OpenAI-format or Gemini deployment, and
the upstream's cache-read / cache-write counts come back to the client, into the ledger
and into the cost (cache reads at the cached-input price)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

from laneway.testing import FakeAnthropic, FakeGemini, FakeOpenAI
from tests.e2e.conftest import GatewayFactory, openai_deployment, rows_when

EPHEMERAL: Any = {"type": "ephemeral"}
HOUR: Any = {"type": "ephemeral", "ttl": "1h"}
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhK"
    "mMIQAAAABJRU5ErkJggg=="
)
TOOL: Any = {
    "name": "lookup",
    "description": "Look a thing up",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
    "cache_control": HOUR,
}
PRICE = {"input_per_mtok": "3", "output_per_mtok": "15", "cached_input_per_mtok": "0.30"}


def _conversation() -> dict[str, Any]:
    """A request with a breakpoint on every kind of block that can hold one."""
    return {
        "max_tokens": 200,
        "system": [
            {"type": "text", "text": "You are a careful librarian."},
            {"type": "text", "text": "The catalogue follows. " * 40, "cache_control": HOUR},
        ],
        "tools": [TOOL],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Find the atlas", "cache_control": EPHEMERAL},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        "cache_control": EPHEMERAL,
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Looking.", "cache_control": EPHEMERAL},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "lookup",
                        "input": {"query": "atlas"},
                        "cache_control": EPHEMERAL,
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": "shelf 4",
                        "cache_control": EPHEMERAL,
                    },
                    {"type": "text", "text": "Where is it?"},
                ],
            },
        ],
    }


@pytest.fixture
def fakes() -> Any:
    with (
        FakeAnthropic(
            api_key="sk-upstream-secret", cache_read_tokens=300, cache_creation_tokens=40
        ) as claude,
        FakeOpenAI(api_key="sk-upstream-secret", model="gpt-4o") as gpt,
        FakeGemini(api_key="sk-other-secret") as gemini,
    ):
        yield claude, gpt, gemini


@pytest.fixture
def gw(start_gateway: GatewayFactory, fakes: Any) -> Any:
    claude, gpt, gemini = fakes
    deployments = [
        {"name": "claude", "model": "claude-sonnet-4-6", "provider": "anthropic",
         "api_base": claude.url, "api_key": "env:FAKE_KEY", "price": PRICE},
        openai_deployment("gpt", gpt.url),
        {"name": "gemini", "model": "gemini-2.5-pro", "provider": "gemini",
         "api_base": gemini.url, "api_key": "env:OTHER_KEY"},
    ]  # fmt: skip
    return start_gateway({"deployments": deployments, "ledger": {"flush_interval": 0.05}})


def _client(gw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0, timeout=30)


@pytest.mark.parametrize("stream", [False, True])
def test_breakpoints_reach_anthropic_where_the_client_put_them(
    gw: Any, fakes: Any, stream: bool
) -> None:
    claude = fakes[0]
    with _client(gw) as client:
        if stream:
            with client.messages.stream(model="claude", **_conversation()) as events:
                message = events.get_final_message()
        else:
            message = client.messages.create(model="claude", **_conversation())
    sent = claude.received[-1].body
    assert sent["system"] == [
        {"type": "text", "text": "You are a careful librarian."},
        {"type": "text", "text": "The catalogue follows. " * 40, "cache_control": HOUR},
    ]
    assert sent["tools"][0]["cache_control"] == HOUR
    first, second, third = sent["messages"]
    assert [b.get("cache_control") for b in first["content"]] == [EPHEMERAL, EPHEMERAL]
    assert [b["type"] for b in second["content"]] == ["text", "tool_use"]
    assert [b.get("cache_control") for b in second["content"]] == [EPHEMERAL, EPHEMERAL]
    assert third["content"][0]["type"] == "tool_result"
    assert third["content"][0]["cache_control"] == EPHEMERAL
    assert "cache_control" not in third["content"][1]  # the client marked no other block
    assert message.usage.cache_read_input_tokens == 300
    assert message.usage.cache_creation_input_tokens == 40


def test_unmarked_requests_are_sent_as_before(gw: Any, fakes: Any) -> None:
    with _client(gw) as client:
        client.messages.create(
            model="claude",
            max_tokens=50,
            system=[{"type": "text", "text": "Be brief."}],
            messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        )
    sent = fakes[0].received[-1].body
    assert sent["system"] == "Be brief."
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert b"cache_control" not in orjson.dumps(sent)


@pytest.mark.parametrize("model", ["gpt", "gemini"])
def test_other_wire_formats_never_see_cache_control(gw: Any, fakes: Any, model: str) -> None:
    fake = fakes[1] if model == "gpt" else fakes[2]
    with _client(gw) as client:
        message = client.messages.create(model=model, **_conversation())
    assert message.content
    sent = orjson.dumps(fake.received[-1].body)
    assert b"cache_control" not in sent and b"ephemeral" not in sent
    assert b"catalogue follows" in sent  # the marked system block itself was sent


def test_cached_tokens_are_ledgered_and_billed_at_the_cached_price(gw: Any, tmp_path: Path) -> None:
    with _client(gw) as client:
        raw = client.messages.with_raw_response.create(model="claude", **_conversation())
        message = raw.parse()
    usage = message.usage
    prompt = usage.input_tokens + 300 + 40
    rows = rows_when(tmp_path, lambda rows: len(rows) == 1)
    row = rows[0]
    assert (row["prompt_tokens"], row["cached_tokens"]) == (prompt, 300)
    # uncached input (fresh + cache writes) at 3 $/Mtok, cache reads at 0.30, output at 15
    expected = (
        Decimal(prompt - 300) * 3 + Decimal(300) * Decimal("0.30") + usage.output_tokens * 15
    ) / 1_000_000
    assert Decimal(raw.headers["x-laneway-cost-usd"]) == expected
    assert Decimal(row["cost_nusd"]) / 10**9 == expected


@pytest.mark.parametrize(
    ("control", "param"),
    [
        ({"cache_control": {"type": "persistent"}}, "content[0].cache_control.type"),
        ({"cache_control": {"type": "ephemeral", "ttl": "2d"}}, "content[0].cache_control.ttl"),
        ({"cache_control": {"type": "ephemeral", "scope": "x"}}, "content[0].cache_control"),
    ],
)
def test_a_malformed_cache_control_is_a_400_before_any_call(
    gw: Any, fakes: Any, control: Any, param: str
) -> None:
    with _client(gw) as client, pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="claude",
            max_tokens=10,
            messages=[{"role": "user", "content": [{"type": "text", "text": "x", **control}]}],
        )
    assert param in str(caught.value)
    assert fakes[0].received == []
