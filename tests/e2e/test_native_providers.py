"""The openai SDK against Anthropic and Gemini deployments (fake upstreams speaking the
real Messages and generateContent protocols), circuit breaking and disconnects."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from laneway.testing import FakeAnthropic, FakeGemini, FakeOpenAI, Fault
from tests.e2e.conftest import GatewayFactory, ledger_rows, openai_deployment

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "look something up",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def native(start_gateway: GatewayFactory) -> Iterator[tuple[Any, FakeAnthropic, FakeGemini]]:
    with (
        FakeAnthropic(api_key="sk-upstream-secret", cache_read_tokens=5) as claude,
        FakeGemini(api_key="sk-other-secret") as gemini,
    ):
        gw = start_gateway(
            {
                "deployments": [
                    {
                        "name": "claude",
                        "model": "claude-sonnet-4-6",
                        "provider": "anthropic",
                        "api_base": claude.url,
                        "api_key": "env:FAKE_KEY",
                    },
                    {
                        "name": "gemini",
                        "model": "gemini-2.5-pro",
                        "provider": "gemini",
                        "api_base": gemini.url,
                        "api_key": "env:OTHER_KEY",
                    },
                ]
            }
        )
        yield gw, claude, gemini


@pytest.mark.parametrize("deployment", ["claude", "gemini"])
def test_native_provider_text_stream_and_tools(
    native: tuple[Any, FakeAnthropic, FakeGemini], client_factory: Any, deployment: str
) -> None:
    gw, claude, gemini = native
    client = client_factory(gw.base_url)
    fake = claude if deployment == "claude" else gemini
    answer = client.chat.completions.create(
        model=deployment,
        max_tokens=100,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello world"},
        ],
    )
    assert answer.choices[0].message.content == "Echo: hello world"
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0
    if deployment == "claude":
        sent = fake.received[-1].body
        assert sent["system"] == "be brief"
        assert sent["max_tokens"] == 100
        assert answer.usage.prompt_tokens_details is not None
        assert answer.usage.prompt_tokens_details.cached_tokens == 5
    else:
        sent = fake.received[-1].body
        assert sent["systemInstruction"] == {"parts": [{"text": "be brief"}]}
        assert sent["generationConfig"]["maxOutputTokens"] == 100
    text = ""
    for chunk in client.chat.completions.create(
        model=deployment, stream=True, messages=[{"role": "user", "content": "a b c"}]
    ):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    assert text == "Echo: a b c"
    tool_answer = client.chat.completions.create(
        model=deployment, tools=TOOLS, messages=[{"role": "user", "content": "find cats"}]
    )
    call = tool_answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert tool_answer.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"query": "find cats"}  # type: ignore[union-attr]
    followup = client.chat.completions.create(
        model=deployment,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "find cats"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "three cats"},
        ],
    )
    assert followup.choices[0].finish_reason == "stop"


def test_circuit_opens_and_shows_in_health_and_metrics(
    fake_openai: FakeOpenAI,
    fake_backup: FakeOpenAI,
    start_gateway: GatewayFactory,
    client_factory: Any,
) -> None:
    gw = start_gateway(
        {
            "deployments": [
                openai_deployment("flaky", fake_openai.url),
                openai_deployment(
                    "steady", fake_backup.url, provider="openai_compatible", api_key=None
                ),
            ],
            "tiers": {"standard": ["flaky", "steady"]},
            "retry": {"max_retries": 0},
            "circuit": {"failure_threshold": 2, "cooldown": 60},
        }
    )
    client = client_factory(gw.base_url)
    fake_openai.fail_next(*(Fault("status", status=500) for _ in range(2)))
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(
            model="tier:standard", messages=[{"role": "user", "content": "x"}]
        )
        assert raw.headers["x-laneway-deployment"] == "steady"
    # the circuit is open now: the flaky deployment goes last, so it is not called
    before = len(fake_openai.received)
    raw = client.chat.completions.with_raw_response.create(
        model="tier:standard", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-laneway-deployment"] == "steady"
    assert len(fake_openai.received) == before
    import urllib.request

    with urllib.request.urlopen(f"{gw.url}/health/ready") as response:  # noqa: S310
        health = json.loads(response.read())
    assert health["deployments"]["flaky"]["circuit"] == "open"
    assert health["deployments"]["steady"]["circuit"] == "closed"
    with urllib.request.urlopen(f"{gw.url}/metrics") as response:  # noqa: S310 (loopback)
        metrics = response.read().decode()
    assert 'laneway_circuit_open{deployment="flaky"} 1.0' in metrics
    assert 'laneway_upstream_attempts_total{deployment="flaky",outcome="error"} 2.0' in metrics


def test_client_disconnect_cancels_upstream_and_bills(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    with FakeOpenAI(api_key="sk-upstream-secret", chunk_delay=0.05) as slow:
        gw = start_gateway(
            {
                "deployments": [
                    openai_deployment(
                        "gpt", slow.url, price={"input_per_mtok": "1", "output_per_mtok": "1"}
                    )
                ]
            }
        )
        words = " ".join(f"w{i}" for i in range(200))
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        body = json.dumps(
            {"model": "gpt", "stream": True, "messages": [{"role": "user", "content": words}]}
        )
        conn.request(
            "POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"}
        )
        response = conn.getresponse()
        assert response.status == 200
        received = response.read1(4096)
        assert b"data:" in received
        conn.sock.close()  # type: ignore[union-attr]
        conn.close()
        # the gateway notices the disconnect by itself: the request is recorded (the ledger
        # writes every 100 ms) long before the 10 s the whole answer would take
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if any(r["attempt"] == 0 for r in ledger_rows(tmp_path)):
                break
            time.sleep(0.1)
        noticed = any(r["attempt"] == 0 for r in ledger_rows(tmp_path))
        gw.stop()  # flushes the ledger
        assert noticed, "the disconnect was not noticed while the gateway ran"
    rows = ledger_rows(tmp_path)
    summary = next(r for r in rows if r["attempt"] == 0)
    assert summary["partial"] in (1, True)
    assert summary["status"] == 499
    assert summary["completion_tokens"] is not None
    assert 0 < summary["completion_tokens"] < 200  # billed for what was generated only
    assert summary["cost_nusd"] is not None
