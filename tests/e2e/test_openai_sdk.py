"""The official openai SDK against the gateway, which calls fake upstreams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from laneway.testing import FakeOpenAI, Fault
from tests.e2e.conftest import GatewayFactory, ledger_rows, openai_deployment

_CLIENTS: list[OpenAI] = []


def _client(base_url: str) -> OpenAI:
    client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)
    _CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def test_sync_completion_with_headers_and_cost(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    price = {"input_per_mtok": "2.50", "output_per_mtok": "10.00"}
    gw = start_gateway(
        {
            "deployments": [openai_deployment("gpt", fake_openai.url, price=price)],
            "tiers": {"frontier": ["gpt"]},
        }
    )
    raw = _client(gw.base_url).chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": "hello there"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-laneway-deployment"] == "gpt"
    assert raw.headers["x-laneway-tier"] == "frontier"
    assert raw.headers["x-laneway-fallbacks"] == "0"
    assert raw.headers["x-laneway-request-id"].startswith("chatcmpl-")
    usage = completion.usage
    expected = (
        Decimal(usage.prompt_tokens) * Decimal("2.50")
        + Decimal(usage.completion_tokens) * Decimal("10.00")
    ) / 1_000_000
    assert Decimal(raw.headers["x-laneway-cost-usd"]) == expected
    sent = fake_openai.received[0]
    assert sent.headers["Authorization"] == "Bearer sk-upstream-secret"
    assert sent.body["model"] == "gpt-4o"
    gw.stop()
    rows = ledger_rows(tmp_path)
    summary = [r for r in rows if r["attempt"] == 0]
    assert len(summary) == 1 and summary[0]["deployment"] == "gpt"
    assert summary[0]["status"] == 200
    assert summary[0]["cost_nusd"] == int(expected * 1_000_000_000)
    assert summary[0]["prompt_tokens"] == usage.prompt_tokens
    # answered by its first and only call: the summary row is that call's record too
    assert [r for r in rows if r["attempt"] >= 1] == []


def test_model_resolution_order(fake_openai: FakeOpenAI, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("main", fake_openai.url)],
            "tiers": {"frontier": ["main"]},
        }
    )
    client = _client(gw.base_url)
    for name in ("main", "gpt-4o", "tier:frontier"):
        raw = client.chat.completions.with_raw_response.create(
            model=name, messages=[{"role": "user", "content": "x"}]
        )
        assert raw.headers["x-laneway-deployment"] == "main", name
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "model_not_found"
    assert "main" in body["message"] and "tier:frontier" in body["message"]
    ids = {m.id for m in client.models.list()}
    assert {"main", "tier:frontier", "gpt-4o"} <= ids


async def test_async_streaming_with_usage(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    price = {"input_per_mtok": "2.50", "output_per_mtok": "10.00"}
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url, price=price)]})
    client = AsyncOpenAI(base_url=gw.base_url, api_key="unused", max_retries=0)
    stream = await client.chat.completions.create(
        model="gpt",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "one two three four"}],
    )
    text, usage_chunks, finish = "", [], None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage_chunks.append(chunk)
    await client.close()
    assert text == "Echo: one two three four"
    assert finish == "stop"
    assert len(usage_chunks) == 1
    assert usage_chunks[0].usage.completion_tokens > 0
    extra = usage_chunks[0].model_extra or {}
    assert float(extra["laneway_cost_usd"]) > 0


def test_tools_round_trip(fake_openai: FakeOpenAI, start_gateway: GatewayFactory) -> None:
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)]})
    client = _client(gw.base_url)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            },
        }
    ]
    first = client.chat.completions.create(
        model="gpt",
        tools=tools,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "weather in Paris"}],
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"query": "weather in Paris"}
    second = client.chat.completions.create(
        model="gpt",
        tools=tools,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "weather in Paris"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    sent = fake_openai.received[-1].body
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}
    # streamed tool calls arrive as OpenAI tool-call deltas
    stream = client.chat.completions.create(
        model="gpt",
        tools=tools,
        stream=True,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "weather in Rome"}],
    )
    args = ""
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            args += delta.function.arguments or ""  # type: ignore[union-attr]
    assert json.loads(args) == {"query": "weather in Rome"}


def test_fallback_after_retries(
    fake_openai: FakeOpenAI,
    fake_backup: FakeOpenAI,
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> None:
    gw = start_gateway(
        {
            "deployments": [
                openai_deployment("primary", fake_openai.url),
                openai_deployment(
                    "backup",
                    fake_backup.url,
                    model="llama-3.1-70b-instruct",
                    provider="openai_compatible",
                    api_key=None,
                ),
            ],
            "tiers": {"complex": ["primary", "backup"]},
            "retry": {"max_retries": 1, "base_delay": 0.01, "max_delay": 0.02},
        }
    )
    fake_openai.fail_next(Fault("status", status=503), Fault("status", status=500))
    raw = _client(gw.base_url).chat.completions.with_raw_response.create(
        model="tier:complex", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().choices[0].message.content == "Echo: hi"
    assert raw.headers["x-laneway-deployment"] == "backup"
    assert raw.headers["x-laneway-fallbacks"] == "1"
    assert len(fake_openai.received) == 2  # one try + one retry, then fall back
    assert len(fake_backup.received) == 1
    gw.stop()
    attempts = [r for r in ledger_rows(tmp_path) if r["attempt"] > 0]
    assert [(r["deployment"], r["status"]) for r in attempts] == [
        ("primary", 503),
        ("primary", 500),
        ("backup", 200),
    ]


def test_rate_limit_retry_after_is_honoured(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("gpt", fake_openai.url)],
            "retry": {"max_retries": 2, "max_retry_after": 5},
        }
    )
    fake_openai.fail_next(Fault("status", status=429, retry_after=0.3))
    import time

    started = time.perf_counter()
    out = _client(gw.base_url).chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "hi"}]
    )
    assert out.choices[0].message.content == "Echo: hi"
    assert time.perf_counter() - started >= 0.3
    assert len(fake_openai.received) == 2


def test_context_length_error_is_not_retried_or_sent_elsewhere(
    fake_openai: FakeOpenAI, fake_backup: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "deployments": [
                openai_deployment("primary", fake_openai.url),
                openai_deployment(
                    "backup", fake_backup.url, provider="openai_compatible", api_key=None
                ),
            ],
            "tiers": {"complex": ["primary", "backup"]},
        }
    )
    fake_openai.fail_next(Fault("status", status=400, error_code="context_length_exceeded"))
    with pytest.raises(openai.BadRequestError) as info:
        _client(gw.base_url).chat.completions.create(
            model="tier:complex", messages=[{"role": "user", "content": "hi"}]
        )
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "context_length_exceeded"
    assert len(fake_openai.received) == 1
    assert fake_backup.received == []


def test_upstream_timeout_gives_504(fake_openai: FakeOpenAI, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("gpt", fake_openai.url, timeouts={"read": 0.3})],
            "retry": {"max_retries": 0},
        }
    )
    fake_openai.fail_next(Fault("stall", seconds=2))
    with pytest.raises(openai.APIStatusError) as info:
        _client(gw.base_url).chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 504
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "upstream_timeout"


def test_stream_cut_mid_way_is_an_error_not_a_success(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)]})
    fake_openai.fail_next(Fault("cut", after_chunks=3))
    stream = _client(gw.base_url).chat.completions.create(
        model="gpt",
        stream=True,
        messages=[{"role": "user", "content": "a b c d e f g h i j"}],
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received, "the first chunks arrived before the cut"
    gw.stop()
    summary = next(r for r in ledger_rows(tmp_path) if r["attempt"] == 0)
    assert summary["partial"] in (1, True)
    assert summary["error_kind"] is not None


def test_stream_failure_before_first_byte_falls_back(
    fake_openai: FakeOpenAI, fake_backup: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "deployments": [
                openai_deployment("primary", fake_openai.url),
                openai_deployment(
                    "backup", fake_backup.url, provider="openai_compatible", api_key=None
                ),
            ],
            "tiers": {"complex": ["primary", "backup"]},
            "retry": {"max_retries": 0},
        }
    )
    fake_openai.fail_next(Fault("status", status=502))
    raw = _client(gw.base_url).chat.completions.with_raw_response.create(
        model="tier:complex", stream=True, messages=[{"role": "user", "content": "yo"}]
    )
    assert raw.headers["x-laneway-deployment"] == "backup"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "Echo: yo"


def test_unknown_price_is_null_not_zero(
    fake_backup: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = start_gateway(
        {
            "deployments": [
                {
                    "name": "mystery",
                    "model": "some-fine-tune",
                    "provider": "openai_compatible",
                    "api_base": fake_backup.url + "/v1",
                }
            ]
        }
    )
    raw = _client(gw.base_url).chat.completions.with_raw_response.create(
        model="mystery", messages=[{"role": "user", "content": "hi"}]
    )
    assert "x-laneway-cost-usd" not in raw.headers
    assert (raw.parse().model_extra or {})["laneway_cost_usd"] is None
    gw.stop()
    summary = next(r for r in ledger_rows(tmp_path) if r["attempt"] == 0)
    assert summary["cost_nusd"] is None
