"""Adversarial review of the sensitive-data rule: fields and paths where a detected value
could reach a closed upstream. Each test sends a value through the real app (official SDKs
or raw HTTP) and checks what the closed fake upstream received."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from laneway.governance import on_private_network
from laneway.testing import FakeOpenAI, FakeOpenAIResponses
from tests.e2e.conftest import GatewayFactory, ledger_rows, openai_deployment

EMAIL = "dana.whitfield@example.org"
CARD = "4111 1111 1111 1111"
INCLUDE: Any = ["reasoning.encrypted_content"]


def _private(url: str, model: str = "in-house-7b") -> dict[str, Any]:
    return {
        "name": "private",
        "model": model,
        "provider": "openai_compatible",
        "vendor": "vllm",
        "api_base": url + "/v1",
        "hosting": "self_hosted",
    }


def _client(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=30)


# -- /v1/responses relayed unchanged: every string of the body, not only the translated ones


@pytest.fixture
def gpt() -> Iterator[FakeOpenAIResponses]:
    with FakeOpenAIResponses(api_key="sk-upstream-secret") as server:
        yield server


SUMMARY = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"}
RELAY_PROBES: dict[str, dict[str, Any]] = {
    "message item id": {
        "input": [{"type": "message", "id": f"msg {EMAIL}", "role": "user", "content": "hi"}]
    },
    "output_text annotations": {
        "input": [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": "see the source",
                        "annotations": [{"type": "url_citation", "title": f"Mail {EMAIL}"}],
                    }
                ],
            },
            {"role": "user", "content": "ok"},
        ]
    },
    "refusal part of a user turn": {
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "hi"},
                    {"type": "refusal", "refusal": f"card {CARD}"},
                ],
            }
        ]
    },
    "function_call id": {
        "input": [
            {
                "type": "function_call",
                "id": f"fc {EMAIL}",
                "call_id": "c1",
                "name": "f",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
        ]
    },
    "function_call_output status": {
        "input": [
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok", "status": EMAIL},
        ]
    },
    "reasoning.summary": {"input": "hi", "reasoning": {"summary": EMAIL}},
    "text.verbosity": {"input": "hi", "text": {"verbosity": EMAIL}},
}


@pytest.mark.parametrize("field", list(RELAY_PROBES))
def test_every_string_of_a_relayed_responses_body_is_scanned(
    field: str, gpt: FakeOpenAIResponses, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway({"deployments": [openai_deployment("gpt", gpt.url, model="gpt-5.4")]})
    body = {"model": "gpt", "include": INCLUDE, "store": False, **RELAY_PROBES[field]}
    reply = httpx.post(gw.base_url + "/responses", json=body, timeout=30)
    assert reply.status_code == 503, reply.text
    assert reply.json()["error"]["code"] == "no_private_route"
    assert not gpt.received


# -- embeddings under `redact`: `user` is sent too


def test_redacted_embeddings_send_no_sensitive_user(start_gateway: GatewayFactory) -> None:
    with FakeOpenAI(api_key="sk-upstream-secret", model="text-embedding-3-small") as closed:
        deployment = openai_deployment("embed", closed.url, model="text-embedding-3-small")
        gw = start_gateway(
            {"deployments": [deployment], "policies": {"sensitive": {"action": "redact"}}}
        )
        with _client(gw) as client:
            answer = client.embeddings.create(model="embed", input=["clean"], user=EMAIL)
        assert len(answer.data) == 1
        sent = closed.received[0].body
    assert EMAIL not in json.dumps(sent)
    assert sent["user"] == "[EMAIL_1]" and sent["input"] == ["clean"]


@pytest.fixture
def lanes() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with (
        FakeOpenAI(api_key="sk-upstream-secret", model="gpt-4o") as closed,
        FakeOpenAI(model="in-house-7b") as private,
    ):
        yield closed, private


def _two_lane(closed: FakeOpenAI, private: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {
        "deployments": [openai_deployment("closed", closed.url), _private(private.url)],
        "tiers": {"standard": ["closed", "private"]},
        "retry": {"max_retries": 0, "base_delay": 0.001, "max_delay": 0.002},
        **extra,
    }


# -- previous_response_id: the stored turn is part of what the continuation sends


def test_a_continuation_of_a_sensitive_turn_stays_private(
    lanes: tuple[FakeOpenAI, FakeOpenAI], start_gateway: GatewayFactory
) -> None:
    closed, private = lanes
    gw = start_gateway(_two_lane(closed, private))
    with _client(gw) as client:
        first = client.responses.with_raw_response.create(
            model="tier:standard", input=f"Remember {EMAIL}", store=True
        )
        assert first.headers["x-laneway-deployment"] == "private"
        with pytest.raises(openai.APIStatusError) as info:
            client.responses.create(
                model="closed", input="Who was that?", previous_response_id=first.parse().id
            )
    assert info.value.status_code == 503
    assert not closed.received


# -- everyday encodings: an HTML character reference (how web pages write e-mail addresses)

ENTITIES = {
    "decimal": "Write to dana.whitfield&#64;example.org",
    "hex": "Write to dana.whitfield&#x40;example&#x2E;org",
    "card": "Charge &#52;111 1111 1111 1111",
}


@pytest.mark.parametrize("form", list(ENTITIES))
def test_an_html_character_reference_is_read_as_the_character(
    form: str,
    lanes: tuple[FakeOpenAI, FakeOpenAI],
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> None:
    closed, private = lanes
    gw = start_gateway(_two_lane(closed, private))
    with _client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="tier:standard", messages=[{"role": "user", "content": ENTITIES[form]}]
        )
    assert raw.headers["x-laneway-deployment"] == "private"
    assert not closed.received
    gw.stop()
    audit = ledger_rows(tmp_path)[0]["audit"]
    audit = json.loads(audit) if isinstance(audit, str) else audit
    assert audit["sensitive"] is True and audit["positions"] == {"user": 1}


# -- logged prompts: a value the redactor cannot replace is not stored in any form

SSN_TEXT = "SSN 536-22-8417"
UNREDACTABLE: dict[str, tuple[Any, tuple[str, ...]]] = {
    "data: URL": (
        [
            {"type": "text", "text": "what does this say?"},
            {
                "type": "image_url",
                "image_url": {
                    "url": "data:text/plain;base64," + base64.b64encode(SSN_TEXT.encode()).decode()
                },
            },
        ],
        (base64.b64encode(SSN_TEXT.encode()).decode(),),
    ),
    "split across parts": (
        [
            {"type": "text", "text": "Write to dana.whitfield@"},
            {"type": "text", "text": "example.org"},
        ],
        ("dana.whitfield@", "example.org"),
    ),
}


@pytest.mark.parametrize("case", list(UNREDACTABLE))
def test_a_prompt_that_cannot_be_redacted_is_not_logged(
    case: str,
    lanes: tuple[FakeOpenAI, FakeOpenAI],
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> None:
    closed, private = lanes
    content, pieces = UNREDACTABLE[case]
    gw = start_gateway({**_two_lane(closed, private), "ledger": {"log_prompts": True}})
    with _client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="tier:standard", messages=[{"role": "user", "content": content}]
        )
        client.chat.completions.create(
            model="tier:standard", messages=[{"role": "user", "content": "hi"}]
        )
    assert raw.headers["x-laneway-deployment"] == "private"
    gw.stop()
    rows = ledger_rows(tmp_path)
    assert any(r["prompt"] and "hi" in r["prompt"] for r in rows)  # prompts are logged
    for path in tmp_path.glob("ledger.db*"):
        data = path.read_bytes()
        assert not all(piece.encode() in data for piece in pieces), path


# -- an OpenAI-compatible deployment of no known vendor, on a public address


def test_an_unknown_vendors_public_api_is_not_taken_for_self_hosted(
    lanes: tuple[FakeOpenAI, FakeOpenAI], start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """``provider: openai_compatible`` with no ``vendor`` and no ``hosting`` was taken for
    a self-hosted server wherever it was: a new serverless vendor's API got sensitive
    requests. Only a private address (or an hourly cost) makes it self-hosted now."""
    closed, private = lanes
    newcomer = {
        "name": "newcomer",
        "model": "llama-3.1-70b-instruct",
        "provider": "openai_compatible",
        "api_base": "https://api.newcomer-inference.example/v1",  # not reachable: never tried
        "api_key": "env:FAKE_KEY",
    }
    config = _two_lane(closed, private)
    config["deployments"].append(newcomer)
    config["tiers"] = {"standard": ["newcomer", "private"]}
    gw = start_gateway(config)
    with _client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="tier:standard", messages=[{"role": "user", "content": f"Mail {EMAIL}"}]
        )
    assert raw.headers["x-laneway-deployment"] == "private"
    assert raw.headers.get("x-laneway-fallbacks", "0") == "0"  # newcomer was never tried
    gw.stop()
    audit = ledger_rows(tmp_path)[0]["audit"]
    audit = json.loads(audit) if isinstance(audit, str) else audit
    assert {"deployment": "newcomer", "rule": "sensitive"}.items() <= audit["removed"][0].items()


@pytest.mark.parametrize(
    ("url", "private"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://localhost:8000/v1", True),
        ("http://vllm:8000/v1", True),  # a container or service name
        ("http://10.1.2.3/v1", True),
        ("http://[::1]:8080/v1", True),
        ("http://gpu-01.internal/v1", True),
        ("http://llm.ml.svc.cluster.local/v1", True),
        ("https://api.together.xyz/v1", False),
        ("https://llm.example.com/v1", False),
        ("http://8.8.8.8/v1", False),
        ("", False),
    ],
)
def test_which_addresses_count_as_a_private_network(url: str, private: bool) -> None:
    assert on_private_network(url) is private
