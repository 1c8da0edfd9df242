"""Anthropic Messages (``/v1/messages``) through the official ``anthropic`` SDK: a detected
value in any block of the body never reaches a closed upstream (here Claude itself, which
would receive the blocks back nearly as sent); the request goes to the self-hosted lane."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from laneway.testing import FakeAnthropic, FakeOpenAI
from tests.e2e.conftest import GatewayFactory

EMAIL = "dana.whitfield@example.org"
CARD = "4111 1111 1111 1111"
HELLO: list[Any] = [{"role": "user", "content": "hello"}]
CALL = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "order"}}


def _turns(result: Any, call: Any = CALL) -> list[Any]:
    return [
        {"role": "user", "content": "find my order"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", **result}]},
    ]


TOOL = {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}
PROBES: dict[str, dict[str, Any]] = {
    "system string": {"system": f"The customer is {EMAIL}"},
    "system block with cache_control": {
        "system": [
            {"type": "text", "text": "You are helpful."},
            {
                "type": "text",
                "text": f"Card on file {CARD}",
                "cache_control": {"type": "ephemeral"},
            },
        ]
    },
    "tool_use input": {"messages": _turns({"content": "found"}, {**CALL, "input": {"q": EMAIL}})},
    "tool_result string": {"messages": _turns({"content": f"owner {EMAIL}"})},
    "tool_result blocks": {
        "messages": _turns({"content": [{"type": "text", "text": f"card {CARD}"}]})
    },
    "tool_result error": {"messages": _turns({"content": f"no {EMAIL}", "is_error": True})},
    "image base64 that is text": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "read this"},
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": base64.b64encode(f"mail {EMAIL}".encode()).decode(),
                        },
                    },
                ],
            }
        ]
    },
    "image url": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": f"https://x.test/{EMAIL}"}}
                ],
            }
        ]
    },
    "tool description": {"tools": [{**TOOL, "description": f"mails {EMAIL}"}]},
    "tool schema enum": {
        "tools": [
            {
                **TOOL,
                "input_schema": {
                    "type": "object",
                    "properties": {"to": {"type": "string", "enum": [EMAIL]}},
                },
            }
        ]
    },
    "stop_sequences": {"stop_sequences": [f"card {CARD}"]},
    "metadata.user_id": {"metadata": {"user_id": EMAIL}},
    "text block with cache_control": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"{EMAIL}", "cache_control": {"type": "ephemeral"}}
                ],
            }
        ]
    },
}
SECRETS = (EMAIL, CARD, base64.b64encode(f"mail {EMAIL}".encode()).decode())


@pytest.fixture
def lanes() -> Iterator[tuple[FakeAnthropic, FakeOpenAI]]:
    with (
        FakeAnthropic(api_key="sk-upstream-secret") as claude,
        FakeOpenAI(model="in-house-7b") as private,
    ):
        yield claude, private


@pytest.mark.parametrize("field", list(PROBES))
def test_a_value_in_any_messages_block_stays_off_claude(
    field: str, lanes: tuple[FakeAnthropic, FakeOpenAI], start_gateway: GatewayFactory
) -> None:
    claude, private = lanes
    deployments = [
        {
            "name": "claude",
            "model": "claude-sonnet-4-6",
            "provider": "anthropic",
            "api_base": claude.url,
            "api_key": "env:FAKE_KEY",
        },
        {
            "name": "private",
            "model": "in-house-7b",
            "provider": "openai_compatible",
            "vendor": "vllm",
            "api_base": private.url + "/v1",
            "hosting": "self_hosted",
        },
    ]
    gw = start_gateway({"deployments": deployments, "tiers": {"t": ["claude", "private"]}})
    kwargs = {"messages": HELLO, **PROBES[field]}
    if "tools" not in kwargs and any(m["role"] == "assistant" for m in kwargs["messages"]):
        kwargs["tools"] = [TOOL]
    client = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0, timeout=30)
    with client:
        raw = client.messages.with_raw_response.create(model="tier:t", max_tokens=16, **kwargs)
        clean = client.messages.with_raw_response.create(
            model="tier:t", max_tokens=16, messages=HELLO
        )
    assert raw.headers["x-laneway-deployment"] == "private"
    assert clean.headers["x-laneway-deployment"] == "claude"
    received = json.dumps([r.body for r in claude.received])
    assert len(claude.received) == 1
    assert not any(value in received for value in SECRETS)
