"""Hostile bodies on the protocols other than chat completions: each is refused the way
chat refuses it (README's error table: an invalid tool schema, a ``tool_choice`` naming
no declared tool ... are 400 before any upstream call), in that protocol's error shape."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from laneway.testing import FakeOpenAI, RunningGateway
from tests._quiet_gc import session_heap_frozen
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


def _anthropic_error(response: httpx.Response) -> dict[str, Any]:
    payload = response.json()
    assert payload["type"] == "error", payload
    assert set(payload["error"]) == {"type", "message", "laneway_code"}
    error: dict[str, Any] = payload["error"]
    return error


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_refusals_before_routing_come_in_anthropic_shape_on_messages_paths(
    gw: RunningGateway, fake_openai: FakeOpenAI, path: str
) -> None:
    """Too many headers (431), a wrong method (405) or an unknown sub-path (404) are
    refused before the request reaches its protocol: on /v1/messages they must still be
    Anthropic errors, as the anthropic SDK and README's per-protocol table expect."""
    body = {"model": "gpt", "max_tokens": 5, "messages": HI}
    many = {f"x-extra-{i}": "v" for i in range(120)}
    crowded = httpx.post(gw.url + path, json=body, headers=many, timeout=30)
    assert crowded.status_code == 431
    error = _anthropic_error(crowded)
    assert error["type"] == "invalid_request_error"
    assert error["laneway_code"] == "request_header_fields_too_large"
    wrong_method = httpx.get(gw.url + path, timeout=30)
    assert wrong_method.status_code == 405
    assert _anthropic_error(wrong_method)["laneway_code"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "POST"
    unknown = httpx.post(gw.url + path + "/batches", json=body, timeout=30)
    assert unknown.status_code == 404
    assert _anthropic_error(unknown)["type"] == "not_found_error"
    assert fake_openai.received == []
    # the OpenAI routes keep the OpenAI shape
    other = httpx.post(gw.base_url + "/chat/completions", json=body, headers=many, timeout=30)
    assert other.status_code == 431 and other.json()["error"]["code"] == (
        "request_header_fields_too_large"
    )


def test_a_bug_on_the_messages_route_is_a_500_in_anthropic_shape(
    gw: RunningGateway, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from laneway.server import _messages_render

    def broken(body: bytes, max_depth: int) -> Any:
        raise RuntimeError("a bug with a secret inside")

    monkeypatch.setattr(_messages_render.ANTHROPIC_MESSAGES, "parse", broken)
    body = {"model": "gpt", "max_tokens": 5, "messages": HI}
    response = httpx.post(gw.url + "/v1/messages", json=body, timeout=30)
    assert response.status_code == 500
    error = _anthropic_error(response)
    assert error["type"] == "api_error" and error["laneway_code"] == "internal_error"
    assert "secret" not in error["message"]
    monkeypatch.undo()
    assert httpx.post(gw.url + "/v1/messages", json=body, timeout=30).status_code == 200


def _pattern_tools(count: int, patterns: int) -> list[dict[str, Any]]:
    """Tools whose schemas hold many regex patterns: each is compiled when the request
    is checked (~60 µs a pattern), so a 1 MB body costs about a second of CPU."""
    properties = {
        f"p{j}": {"type": "string", "pattern": f"^[a-z]{{1,{j % 50 + 1}}}(x|y)*[0-9]+$"}
        for j in range(patterns)
    }
    schema = {"type": "object", "properties": properties}
    return [
        {"type": "function", "function": {"name": f"t{i}", "parameters": schema}}
        for i in range(count)
    ]


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
def test_checking_a_large_body_does_not_stall_other_requests(gw: RunningGateway, path: str) -> None:
    """The checks of a large body (here 128 tool schemas of 100 patterns each) run off
    the event loop: the worker keeps answering other requests meanwhile (they waited
    for the whole check before). /responses: a request relayed to the Responses API."""
    import threading

    tools = _pattern_tools(128, 100)
    body: dict[str, Any] = {"model": "gpt", "messages": HI, "tools": tools}
    if path == "/responses":
        body = {
            "model": "gpt",
            "input": "hi",
            "include": ["reasoning.encrypted_content"],
            "tools": [{"type": "function", **tool["function"]} for tool in tools],
        }
    waits: list[float] = []
    done = threading.Event()

    def ping() -> None:
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                started = time.monotonic()
                client.get(gw.url + "/health/live")
                waits.append(time.monotonic() - started)
                time.sleep(0.005)

    with session_heap_frozen():  # a full collection of the session's heap is no stall of ours
        pinger = threading.Thread(target=ping)
        pinger.start()
        try:
            time.sleep(0.1)
            started = time.monotonic()
            response = httpx.post(gw.base_url + path, json=body, timeout=60)
            took = time.monotonic() - started
        finally:
            done.set()
            pinger.join()
    assert response.status_code != 500, response.text  # checked (then context, upstream...)
    assert took > 0.3, took  # the check is long enough to measure against
    assert max(waits) < took / 3, (max(waits), took)


def test_count_tokens_for_an_unknown_model_is_404_like_messages(gw: RunningGateway) -> None:
    body = {"model": "claude-9-imaginary", "messages": HI}
    counted = httpx.post(gw.url + "/v1/messages/count_tokens", json=body, timeout=30)
    sent = httpx.post(gw.url + "/v1/messages", json={**body, "max_tokens": 5}, timeout=30)
    assert sent.status_code == 404
    assert counted.status_code == 404, counted.text  # it said 200 for a model never served
    assert _anthropic_error(counted)["type"] == "not_found_error"
    assert _anthropic_error(counted)["laneway_code"] == "model_not_found"
    ok = httpx.post(gw.url + "/v1/messages/count_tokens", json={**body, "model": "gpt"}, timeout=30)
    assert ok.status_code == 200 and ok.json()["input_tokens"] > 0


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://x", "javascript:alert(1)"]
)
@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
def test_an_image_url_that_is_not_http_or_data_is_400_before_any_call(
    gw: RunningGateway, fake_openai: FakeOpenAI, url: str, path: str
) -> None:
    """As /v1/messages refuses them: a self-hosted OpenAI-compatible server (vLLM with a
    local media path) would read a file:// URL from its own disk."""
    if path == "/chat/completions":
        part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
        body: dict[str, Any] = {"model": "gpt", "messages": [{"role": "user", "content": [part]}]}
        where = "messages[0].content[0].image_url.url"
    else:
        part = {"type": "input_image", "image_url": url}
        body = {"model": "gpt", "input": [{"role": "user", "content": [part]}]}
        where = "image_url.url"
    response = httpx.post(gw.base_url + path, json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["param"].endswith(where)
    assert fake_openai.received == []
    good = "data:image/png;base64,iVBORw0KGgo="
    if path == "/chat/completions":
        part["image_url"]["url"] = good
    else:
        part["image_url"] = good
    assert httpx.post(gw.base_url + path, json=body, timeout=30).status_code == 200
