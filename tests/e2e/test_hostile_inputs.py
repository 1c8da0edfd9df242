"""Hostile bodies on the protocols other than chat completions: each is refused the way
chat refuses it (README's error table: an invalid tool schema, a ``tool_choice`` naming
no declared tool ... are 400 before any upstream call), in that protocol's error shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from laneway.testing import FakeOpenAI, RunningGateway
from tests.e2e.conftest import GatewayFactory, openai_deployment

HI = [{"role": "user", "content": "hi"}]
TOOL = {"name": "lookup", "input_schema": {"type": "object"}}


@pytest.fixture
def gw(start_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> RunningGateway:
    return start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)]})


MESSAGES_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "invalid input_schema",
        {"tools": [{"name": "lookup", "input_schema": {"type": "nope"}}]},
        "tools[0].input_schema",
    ),
    (
        "remote $ref in input_schema",
        {
            "tools": [
                {
                    "name": "lookup",
                    "input_schema": {"$ref": "http://169.254.169.254/latest/meta-data"},
                }
            ]
        },
        "tools[0].input_schema",
    ),
    ("duplicate tool names", {"tools": [TOOL, TOOL]}, "tools[1].name"),
    (
        "tool_choice names a missing tool",
        {"tools": [TOOL], "tool_choice": {"type": "tool", "name": "missing"}},
        "tool_choice.name",
    ),
    ("tool_choice any without tools", {"tool_choice": {"type": "any"}}, "tool_choice"),
    (
        "tool_choice tool without tools",
        {"tool_choice": {"type": "tool", "name": "lookup"}},
        "tool_choice",
    ),
]


@pytest.mark.parametrize(
    ("extra", "param"), [c[1:] for c in MESSAGES_CASES], ids=[c[0] for c in MESSAGES_CASES]
)
def test_messages_tool_mistakes_are_400_before_any_upstream_call(
    gw: RunningGateway, fake_openai: FakeOpenAI, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "gpt", "max_tokens": 50, "messages": HI, **extra}
    response = httpx.post(gw.url + "/v1/messages", json=body, timeout=30)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["laneway_code"] == "invalid_request"
    assert param in payload["error"]["message"]
    assert fake_openai.received == []
    good = {"model": "gpt", "max_tokens": 50, "messages": HI, "tools": [TOOL]}
    assert httpx.post(gw.url + "/v1/messages", json=good, timeout=30).status_code == 200
