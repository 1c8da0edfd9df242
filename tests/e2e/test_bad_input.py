"""Hostile and malformed requests: the right status, an OpenAI-style error body,
zero upstream calls, and the gateway keeps serving."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from laneway.testing import FakeOpenAI
from tests.e2e.conftest import GatewayFactory, openai_deployment

GOOD = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}


def _post(
    port: int, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=body,
            headers={"content-type": "application/json", **(headers or {})},
        )
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw), {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


CASES: list[tuple[str, bytes, int, str, str | None]] = [
    ("malformed json", b'{"model": "gpt", "messages": [', 400, "invalid_request", None),
    ("not an object", b"[1, 2]", 400, "invalid_request", None),
    (
        "invalid utf-8",
        b'{"model": "gpt", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        400,
        "invalid_request",
        None,
    ),
    (
        "NaN",
        b'{"model": "gpt", "temperature": NaN, "messages": [{"role": "user", "content": "x"}]}',
        400,
        "invalid_request",
        None,
    ),
    (
        "Infinity",
        b'{"model": "gpt", "top_p": Infinity, "messages": []}',
        400,
        "invalid_request",
        None,
    ),
    ("missing messages", _json({"model": "gpt"}), 400, "invalid_request", "messages"),
    ("empty messages", _json({"model": "gpt", "messages": []}), 400, "invalid_request", "messages"),
    (
        "unknown role",
        _json({"model": "gpt", "messages": [{"role": "wizard", "content": "x"}]}),
        400,
        "invalid_request",
        "messages[0].role",
    ),
    ("wrong type", _json({**GOOD, "temperature": "hot"}), 400, "invalid_request", "temperature"),
    ("bool as int", _json({**GOOD, "max_tokens": True}), 400, "invalid_request", "max_tokens"),
    ("n > 1", _json({**GOOD, "n": 3}), 400, "unsupported_parameter", "n"),
    (
        "client api_base",
        _json({**GOOD, "api_base": "http://evil.example/v1"}),
        400,
        "invalid_request",
        "api_base",
    ),
    (
        "client base_url",
        _json({**GOOD, "base_url": "http://169.254.169.254/"}),
        400,
        "invalid_request",
        "base_url",
    ),
    ("client api_key", _json({**GOOD, "api_key": "sk-x"}), 400, "invalid_request", "api_key"),
    (
        "deep nesting",
        b'{"model": "gpt", "messages": [{"role": "user", "content": "x"}], '
        b'"tools": [{"type": "function", "function": {"name": "f", "parameters": '
        + b'{"a":' * 5000
        + b"1"
        + b"}" * 5000
        + b"}}]}",
        400,
        "invalid_request",
        None,
    ),
    ("unknown model", _json({**GOOD, "model": "gpt-9-ultra"}), 404, "model_not_found", "model"),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "code", "param"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input(
    fake_openai: FakeOpenAI,
    start_gateway: GatewayFactory,
    name: str,
    body: bytes,
    status: int,
    code: str,
    param: str | None,
) -> None:
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)]})
    got_status, payload, headers = _post(gw.port, body)
    assert got_status == status, payload
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    assert headers["x-laneway-request-id"].startswith("chatcmpl-")
    assert fake_openai.received == []
    # the gateway still serves a good request afterwards
    ok_status, ok, _ = _post(gw.port, _json(GOOD))
    assert ok_status == 200, ok
    assert len(fake_openai.received) == 1


def test_body_over_the_limit_gets_413(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("gpt", fake_openai.url)],
            "server": {"max_body_bytes": 10_000},
        }
    )
    big = _json({**GOOD, "messages": [{"role": "user", "content": "x" * 20_000}]})
    status, payload, _ = _post(gw.port, big)
    assert status == 413
    assert payload["error"]["code"] == "payload_too_large"
    # a lying Content-Length is caught too, before the body is read
    status, payload, _ = _post(gw.port, _json(GOOD), {"content-length": "999999"})
    assert status in (400, 413)
    assert fake_openai.received == []


def test_default_limit_is_4_mib(fake_openai: FakeOpenAI, start_gateway: GatewayFactory) -> None:
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)]})
    over = _json({**GOOD, "messages": [{"role": "user", "content": "x" * (4 * 1024 * 1024)}]})
    status, payload, _ = _post(gw.port, over)
    assert status == 413
    assert payload["error"]["code"] == "payload_too_large"
    assert fake_openai.received == []


def test_unsupported_parameter_for_provider_is_rejected_not_dropped(
    start_gateway: GatewayFactory,
) -> None:
    from laneway.testing import FakeAnthropic

    with FakeAnthropic(api_key="sk-upstream-secret") as fake:
        gw = start_gateway(
            {
                "deployments": [
                    {
                        "name": "claude",
                        "model": "claude-sonnet-4-6",
                        "provider": "anthropic",
                        "api_base": fake.url,
                        "api_key": "env:FAKE_KEY",
                    }
                ]
            }
        )
        status, payload, _ = _post(gw.port, _json({**GOOD, "model": "claude", "seed": 42}))
        assert status == 400
        assert payload["error"]["code"] == "unsupported_parameter"
        assert payload["error"]["param"] == "seed"
        assert fake.received == []


def test_a_bug_becomes_a_500_json_error_and_the_gateway_keeps_serving(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import laneway.server._validate as chat

    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)]})
    real = chat.parse_chat_request

    def broken(body: bytes, *, max_depth: int = 64) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(chat, "parse_chat_request", broken)
    status, payload, _ = _post(gw.port, _json(GOOD))
    assert status == 500
    assert payload["error"]["code"] == "internal_error"
    assert "a bug" not in payload["error"]["message"]
    monkeypatch.setattr(chat, "parse_chat_request", real)
    status, _, _ = _post(gw.port, _json(GOOD))
    assert status == 200


def test_prompt_longer_than_the_context_window_is_refused_before_any_call(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "deployments": [
                openai_deployment(
                    "small",
                    fake_openai.url,
                    model="smollm2-135m-instruct",  # 8,192 tokens in the catalog
                    provider="openai_compatible",
                )
            ]
        }
    )
    long = _json(
        {**GOOD, "model": "small", "messages": [{"role": "user", "content": "word " * 6000}]}
    )
    status, payload, _ = _post(gw.port, long)
    assert status == 400
    assert payload["error"]["code"] == "context_length_exceeded"
    assert "8192" in payload["error"]["message"]
    assert fake_openai.received == []


def test_wrong_method_says_what_is_allowed_and_slashes_do_not_redirect(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)]})
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request("GET", "/v1/chat/completions")
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 405
        assert response.getheader("allow") == "POST"
        assert body["error"]["code"] == "method_not_allowed"
        assert "use POST" in body["error"]["message"]
        conn.request("POST", "/v1/chat/completions/", _json(GOOD),
                     {"content-type": "application/json", "host": "evil.example"})  # fmt: skip
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 404  # not a 307 to http://evil.example/...
        assert response.getheader("location") is None
        assert body["error"]["code"] == "not_found"
    finally:
        conn.close()
    assert fake_openai.received == []


def test_a_large_image_is_sized_as_image_tokens_not_as_its_base64_bytes(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    """A 600 KB base64 image is at most a few thousand tokens for a vision model, not 200,000
    (its bytes / 3): the context-window check must not skip the only deployment."""
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url, model="gpt-4o")]})
    image = "data:image/png;base64," + "A" * 600_000
    body = {
        **GOOD,
        "model": "gpt",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            }
        ],
    }
    status, payload, _ = _post(gw.port, _json(body))
    assert status == 200, payload
    assert len(fake_openai.received) == 1
