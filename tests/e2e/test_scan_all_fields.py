"""Issue 12, item 3, end to end: a sensitive value in any field the gateway forwards never
reaches a closed upstream. The official ``openai`` SDK sends each request to the real app
with the default policy (``self_hosted_only``), a closed fake upstream first in the tier
and a self-hosted fake second; the closed fake's record of what it received is checked."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from laneway.testing import FakeAnthropic, FakeOpenAI
from tests.e2e.conftest import GatewayFactory, ledger_rows, openai_deployment

EMAIL = "dana.whitfield@example.org"
SSN = "536-22-8417"
HELLO: list[Any] = [{"role": "user", "content": "hello"}]


@pytest.fixture
def closed() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-upstream-secret", model="gpt-4o") as server:
        yield server


@pytest.fixture
def private() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(model="in-house-vision-7b") as server:
        yield server


def _config(closed: FakeOpenAI, private: FakeOpenAI | None, **extra: Any) -> dict[str, Any]:
    deployments = [openai_deployment("closed", closed.url)]
    if private is not None:
        deployments.append(
            {
                "name": "private",
                "model": "in-house-vision-7b",  # not in the catalog: no capability gaps
                "provider": "openai_compatible",
                "vendor": "vllm",
                "api_base": private.url + "/v1",
                "hosting": "self_hosted",
            }
        )
    return {
        "deployments": deployments,
        "tiers": {"standard": [d["name"] for d in deployments]},
        "retry": {"max_retries": 0, "base_delay": 0.001, "max_delay": 0.002},
        **extra,
    }


def _tool(description: str = "Look up an order", enum: tuple[str, ...] = ("open",)) -> Any:
    return {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"status": {"type": "string", "enum": list(enum)}},
            },
        },
    }


# field -> keyword arguments of chat.completions.create holding the value there
PROBES: dict[str, dict[str, Any]] = {
    "messages[].name": {"messages": [{"role": "user", "name": "dana", "content": "hi"}]},
    "user": {"user": EMAIL},
    "metadata": {"metadata": {"customer": EMAIL}, "store": True},
    "tool description": {"tools": [_tool(description=f"Send the receipt to {EMAIL}")]},
    "tool enum": {"tools": [_tool(enum=("open", EMAIL))]},
    "response_format schema": {
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "reply",
                "schema": {
                    "type": "object",
                    "properties": {"to": {"type": "string", "const": EMAIL}},
                },
            },
        }
    },
    "stop": {"stop": ["END", f"SSN {SSN}"]},
    "prediction": {"prediction": {"type": "content", "content": f"Dear {EMAIL},"}},
    "image data: URL": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in this picture?"},
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "data:text/plain;base64,"
                            + base64.b64encode(f"SSN {SSN}".encode()).decode()
                        },
                    },
                ],
            }
        ]
    },
}
PROBES["messages[].name"]["messages"][0]["name"] = EMAIL.replace("@", "%40")  # URL-encoded


SECRETS = (EMAIL, EMAIL.replace("@", "%40"), SSN, base64.b64encode(f"SSN {SSN}".encode()).decode())


@pytest.mark.parametrize("field", list(PROBES))
def test_a_value_in_any_field_stays_off_the_closed_upstream(
    field: str,
    closed: FakeOpenAI,
    private: FakeOpenAI,
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> None:
    gw = start_gateway(_config(closed, private))
    kwargs = {"messages": HELLO, **PROBES[field]}
    with OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=30) as client:
        raw = client.chat.completions.with_raw_response.create(model="tier:standard", **kwargs)
        assert raw.headers["x-laneway-deployment"] == "private"
        clean = client.chat.completions.with_raw_response.create(
            model="tier:standard", messages=HELLO
        )
        assert clean.headers["x-laneway-deployment"] == "closed"
    received = json.dumps([r.body for r in closed.received])
    assert len(closed.received) == 1  # the clean request only
    assert not any(value in received for value in SECRETS)
    assert len(private.received) == 1
    gw.stop()
    audit = ledger_rows(tmp_path)[0]["audit"]
    audit = json.loads(audit) if isinstance(audit, str) else audit
    assert audit["sensitive"] is True
    assert EMAIL not in json.dumps(audit) and SSN not in json.dumps(audit)


def test_fails_closed_without_a_private_route(
    closed: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(_config(closed, None))
    with OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=30) as client:
        for field, extra in PROBES.items():
            with pytest.raises(openai.APIStatusError) as info:
                client.chat.completions.create(
                    model="tier:standard", **{"messages": HELLO, **extra}
                )
            assert info.value.status_code == 503, field
    assert closed.received == []


def test_redact_covers_the_new_fields_and_restores_the_answer(
    closed: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = start_gateway(_config(closed, None, policies={"sensitive": {"action": "redact"}}))
    with OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=30) as client:
        answer = client.chat.completions.create(
            model="tier:standard",
            messages=[{"role": "user", "content": f"Write to {EMAIL} please"}],
            user=EMAIL,
            metadata={"customer": EMAIL},
            tools=[_tool(description=f"Send the receipt to {EMAIL}")],
            stop=[f"SSN {SSN}"],
            tool_choice="none",
        )
    sent = json.dumps(closed.received[0].body)
    assert EMAIL not in sent and SSN not in sent
    body = closed.received[0].body
    assert body["user"] == "[EMAIL_1]" and body["metadata"] == {"customer": "[EMAIL_1]"}
    assert body["tools"][0]["function"]["description"] == "Send the receipt to [EMAIL_1]"
    assert body["stop"] == ["SSN [NATIONAL_ID_1]"]
    assert answer.choices[0].message.content == f"Echo: Write to {EMAIL} please"
    gw.stop()
    audit = ledger_rows(tmp_path)[0]["audit"]
    audit = json.loads(audit) if isinstance(audit, str) else audit
    assert audit["positions"] == {"user": 1, "params": 3, "tools": 1}


def test_what_the_anthropic_adapter_sends_is_redacted_too(start_gateway: GatewayFactory) -> None:
    """``user`` becomes ``metadata.user_id``, ``stop`` ``stop_sequences``, a tool its
    ``description`` and ``input_schema``: each was scanned and redacted before."""
    with FakeAnthropic(api_key="sk-upstream-secret") as claude:
        deployment = {
            "name": "claude",
            "model": "claude-sonnet-4-6",
            "provider": "anthropic",
            "api_base": claude.url,
            "api_key": "env:FAKE_KEY",
        }
        gw = start_gateway(
            {"deployments": [deployment], "policies": {"sensitive": {"action": "redact"}}}
        )
        with OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=30) as client:
            client.chat.completions.create(
                model="claude",
                messages=HELLO,
                user=EMAIL,
                stop=[f"SSN {SSN}"],
                tools=[_tool(description=f"Send the receipt to {EMAIL}", enum=("open", SSN))],
                tool_choice="auto",
            )
        body = claude.received[0].body
    sent = json.dumps(body)
    assert EMAIL not in sent and SSN not in sent
    assert body["metadata"] == {"user_id": "[EMAIL_1]"}
    assert body["stop_sequences"] == ["SSN [NATIONAL_ID_1]"]
    assert body["tools"][0]["description"] == "Send the receipt to [EMAIL_1]"
