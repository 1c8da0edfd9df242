"""Anthropic Messages (``/v1/messages``) through the gateway with the official
``anthropic`` SDK: sync, async, ``messages.stream`` (text and final message), a tool-use
round trip, errors in Anthropic's shape, ``count_tokens``, and the same governance,
ledger and ``x-laneway-*`` headers as chat — over an OpenAI-format upstream, a Gemini
one and Anthropic itself."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from laneway.testing import FakeOpenAI
from tests.e2e.conftest import GatewayFactory, Upstreams, openai_deployment, three_formats

PRICE = {"input_per_mtok": "2.50", "output_per_mtok": "10.00"}
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    },
}


@pytest.fixture
def gw(start_gateway: GatewayFactory, upstreams: Upstreams) -> Any:
    return start_gateway(
        {
            "deployments": three_formats(upstreams, PRICE),
            "tiers": {"standard": ["gpt"], "frontier": ["claude"]},
            "ledger": {"flush_interval": 0.05},
        }
    )


def _client(gw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0, timeout=30)


@pytest.mark.parametrize("model", ["gpt", "claude", "gemini", "tier:standard"])
def test_sync_create_text(gw: Any, model: str) -> None:
    with _client(gw) as client:
        raw = client.messages.with_raw_response.create(
            model=model,
            max_tokens=100,
            system="You are terse.",
            messages=[{"role": "user", "content": "Say hello to Ada"}],
        )
        message = raw.parse()
    assert message.type == "message"
    assert message.id == "msg_" + raw.headers["x-laneway-request-id"].rsplit("-", 1)[-1]
    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert "Say hello to Ada" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-laneway-request-id"]
    assert raw.headers["x-laneway-deployment"] in ("gpt", "claude", "gemini")


def test_async_create(gw: Any) -> None:
    async def run() -> str:
        async with anthropic.AsyncAnthropic(
            base_url=gw.url, api_key="unused", max_retries=0
        ) as client:
            message = await client.messages.create(
                model="gpt", max_tokens=50, messages=[{"role": "user", "content": "async hi"}]
            )
        block = message.content[0]
        assert block.type == "text"
        return block.text

    assert "async hi" in asyncio.run(run())


@pytest.mark.parametrize("model", ["gpt", "claude", "gemini"])
def test_messages_stream_text_and_final_message(gw: Any, model: str) -> None:
    with (
        _client(gw) as client,
        client.messages.stream(
            model=model,
            max_tokens=100,
            messages=[{"role": "user", "content": "stream these words please"}],
        ) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "stream these words please" in text
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["gpt", "claude"])
@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_round_trip(gw: Any, model: str, stream: bool) -> None:
    question = [{"role": "user", "content": "weather in Paris"}]
    with _client(gw) as client:
        if stream:
            with client.messages.stream(
                model=model, max_tokens=100, tools=[WEATHER], messages=question
            ) as events:
                first = events.get_final_message()
        else:
            first = client.messages.create(
                model=model, max_tokens=100, tools=[WEATHER], messages=question
            )
        assert first.stop_reason == "tool_use"
        call = next(block for block in first.content if block.type == "tool_use")
        assert call.name == "get_weather"
        assert call.input == {"query": "weather in Paris"}
        second = client.messages.create(
            model=model,
            max_tokens=100,
            tools=[WEATHER],
            messages=[
                *question,
                {"role": "assistant", "content": first.content},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": call.id, "content": "18 C, sunny"}
                    ],
                },
            ],
        )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"


def test_errors_come_in_anthropic_shape_with_zero_upstream_calls(
    gw: Any, upstreams: Upstreams
) -> None:
    with _client(gw) as client:
        with pytest.raises(anthropic.BadRequestError) as info:
            client.messages.create(
                model="gpt", max_tokens=10, messages=[{"role": "system", "content": "x"}]
            )
        assert isinstance(info.value.body, dict)
        assert info.value.body["type"] == "error"
        assert info.value.body["error"]["type"] == "invalid_request_error"
        with pytest.raises(anthropic.NotFoundError) as missing:
            client.messages.create(
                model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}]
            )
        assert isinstance(missing.value.body, dict)
        assert missing.value.body["error"]["laneway_code"] == "model_not_found"
    raw = httpx.post(gw.url + "/v1/messages", json={"model": "gpt", "messages": []})
    assert raw.status_code == 400
    assert raw.json()["type"] == "error"
    unknown = httpx.post(
        gw.url + "/v1/messages",
        json={
            "model": "gpt",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
            "n": 2,
        },
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "unknown parameter 'n'"
    assert all(not u.received for u in upstreams)


def test_thinking_goes_to_anthropic_and_is_refused_elsewhere(gw: Any, upstreams: Upstreams) -> None:
    openai_fake, claude, _ = upstreams
    body = {
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "think"}],
    }
    refused = httpx.post(gw.url + "/v1/messages", json={**body, "model": "gpt"})
    assert refused.status_code == 400
    assert refused.json()["error"]["laneway_code"] == "unsupported_parameter"
    assert openai_fake.received == []
    answered = httpx.post(gw.url + "/v1/messages", json={**body, "model": "claude"})
    assert answered.status_code == 200, answered.text
    assert claude.received[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_count_tokens(gw: Any) -> None:
    with _client(gw) as client:
        short = client.messages.count_tokens(
            model="gpt", messages=[{"role": "user", "content": "hi"}]
        )
        long = client.messages.count_tokens(
            model="gpt", messages=[{"role": "user", "content": "word " * 400}]
        )
    assert 0 < short.input_tokens < long.input_tokens
    assert 400 <= long.input_tokens <= 700


def test_sensitive_messages_stay_private_and_everything_is_ledgered(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    with (
        FakeOpenAI(api_key="sk-upstream-secret", model="gpt-4o") as closed,
        FakeOpenAI(model="llama-3.1-8b-instruct") as private,
    ):
        gw = start_gateway(
            {
                "deployments": [
                    openai_deployment("closed", closed.url, price=PRICE),
                    {
                        "name": "private",
                        "model": "llama-3.1-8b-instruct",
                        "provider": "openai_compatible",
                        "vendor": "vllm",
                        "api_base": private.url + "/v1",
                        "hosting": "self_hosted",
                    },
                ],
                "tiers": {"standard": ["closed", "private"]},
                "ledger": {"flush_interval": 0.05},
            }
        )
        with _client(gw) as client:
            raw = client.messages.with_raw_response.create(
                model="tier:standard",
                max_tokens=50,
                messages=[{"role": "user", "content": "mail maria.lopez@example.org today"}],
            )
        assert raw.headers["x-laneway-deployment"] == "private"
        assert closed.received == []
    path = tmp_path / "ledger.db"
    deadline = time.monotonic() + 10
    rows: list[Any] = []
    while time.monotonic() < deadline and not rows:
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT deployment, status, audit FROM ledger").fetchall()
        time.sleep(0.05)
    assert rows and rows[0][0] == "private" and rows[0][1] == 200
    assert '"sensitive":true' in rows[0][2]


def test_models_list_serves_both_sdks(gw: Any) -> None:
    with _client(gw) as client:
        page = client.models.list()
        ids = [m.id for m in page.data]
        assert {"gpt", "claude", "gemini", "tier:standard"} <= set(ids)
        assert all(m.type == "model" and m.display_name for m in page.data)
    import openai as openai_sdk

    with openai_sdk.OpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as other:
        assert {"gpt", "claude"} <= {m.id for m in other.models.list().data}
