"""Upstream answers of the wrong shape (``"message": null``, a number as content, a
string token count …) are malformed responses: each adapter raises
``UpstreamBadResponse`` (never AttributeError / ValueError), so the gateway retries and
then falls back to the next deployment instead of answering 500; nonsense values that
are still usable (an unknown finish reason, a negative token count) are normalised."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.providers._scripted import (
    ANTHROPIC_EVENTS,
    ANTHROPIC_OK,
    GEMINI_EVENTS,
    GEMINI_OK,
    OPENAI_EVENTS,
    OPENAI_OK,
    Scripted,
    adapter,
    broken,
)

from laneway.errors import UpstreamBadResponse
from laneway.ledger import open_database
from laneway.providers._http import AiohttpUpstream
from laneway.providers._types import ChatRequest, StreamDelta, Usage
from laneway.server import create_app
from laneway.settings import Settings
from laneway.testing import FakeOpenAI, RunningGateway

REQUEST = ChatRequest(model="m", messages=({"role": "user", "content": "hi"},))
STREAM = ChatRequest(model="m", messages=({"role": "user", "content": "hi"},), stream=True)
OPENAI_MESSAGE = ("choices", 0, "message")
TOOL_USE = {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
GEMINI_PARTS = ("candidates", 0, "content", "parts")

# (provider, a malformed non-streaming body)
BAD_BODIES: dict[str, tuple[str, Any]] = {
    "openai message null": ("openai", broken(OPENAI_OK, OPENAI_MESSAGE, None)),
    "openai message string": ("openai", broken(OPENAI_OK, OPENAI_MESSAGE, "zz")),
    "openai choice null": ("openai", broken(OPENAI_OK, ("choices", 0), None)),
    "openai content number": ("openai", broken(OPENAI_OK, (*OPENAI_MESSAGE, "content"), 5)),
    "openai refusal object": ("openai", broken(OPENAI_OK, (*OPENAI_MESSAGE, "refusal"), {})),
    "openai tool_calls string": ("openai", broken(OPENAI_OK, (*OPENAI_MESSAGE, "tool_calls"), "z")),
    "openai tool call null": ("openai", broken(OPENAI_OK, (*OPENAI_MESSAGE, "tool_calls"), [None])),
    "openai usage count string": (
        "openai",
        broken(OPENAI_OK, ("usage",), {"prompt_tokens": "abc", "completion_tokens": 1}),
    ),
    "openai usage count fraction": (
        "openai",
        broken(OPENAI_OK, ("usage",), {"prompt_tokens": 1.7, "completion_tokens": 1}),
    ),
    "openai usage string": ("openai", broken(OPENAI_OK, ("usage",), "lots")),
    "openai logprobs string": ("openai", broken(OPENAI_OK, ("choices", 0, "logprobs"), "x")),
    "anthropic block null": ("anthropic", broken(ANTHROPIC_OK, ("content",), [None])),
    "anthropic text number": ("anthropic", broken(ANTHROPIC_OK, ("content", 0, "text"), 5)),
    "anthropic tool input string": (
        "anthropic",
        broken(ANTHROPIC_OK, ("content",), [{**TOOL_USE, "input": "x"}]),
    ),
    "anthropic tool name null": (
        "anthropic",
        broken(ANTHROPIC_OK, ("content",), [{**TOOL_USE, "name": None}]),
    ),
    "anthropic usage string": (
        "anthropic",
        broken(ANTHROPIC_OK, ("usage", "input_tokens"), "abc"),
    ),
    "gemini part null": ("gemini", broken(GEMINI_OK, GEMINI_PARTS, [None])),
    "gemini text number": ("gemini", broken(GEMINI_OK, (*GEMINI_PARTS, 0, "text"), 5)),
    "gemini parts string": ("gemini", broken(GEMINI_OK, GEMINI_PARTS, "zz")),
    "gemini content string": ("gemini", broken(GEMINI_OK, ("candidates", 0, "content"), "zz")),
    "gemini call args string": (
        "gemini",
        broken(GEMINI_OK, GEMINI_PARTS, [{"functionCall": {"name": "f", "args": "x"}}]),
    ),
    "gemini usage string": (
        "gemini",
        broken(GEMINI_OK, ("usageMetadata", "promptTokenCount"), "abc"),
    ),
}

# (provider, well-formed events, the malformed event put in place of the second one)
BAD_EVENTS: dict[str, tuple[str, list[Any], Any]] = {
    "openai choice null": ("openai", OPENAI_EVENTS, {"choices": [None]}),
    "openai choices string": ("openai", OPENAI_EVENTS, {"choices": "zz"}),
    "openai delta string": ("openai", OPENAI_EVENTS, {"choices": [{"index": 0, "delta": "zz"}]}),
    "openai content number": ("openai", OPENAI_EVENTS, {"choices": [{"delta": {"content": 5}}]}),
    "openai tool call delta null": (
        "openai",
        OPENAI_EVENTS,
        {"choices": [{"delta": {"tool_calls": [None]}}]},
    ),
    "openai usage count string": (
        "openai",
        OPENAI_EVENTS,
        {"choices": [], "usage": {"prompt_tokens": "x"}},
    ),
    "anthropic message null": ("anthropic", ANTHROPIC_EVENTS, {"type": "message_start"}),
    "anthropic block null": (
        "anthropic",
        ANTHROPIC_EVENTS,
        {"type": "content_block_start", "index": 1, "content_block": None},
    ),
    "anthropic delta string": (
        "anthropic",
        ANTHROPIC_EVENTS,
        {"type": "content_block_delta", "index": 0, "delta": "zz"},
    ),
    "anthropic text number": (
        "anthropic",
        ANTHROPIC_EVENTS,
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}},
    ),
    "anthropic usage string": (
        "anthropic",
        ANTHROPIC_EVENTS,
        {"type": "message_delta", "delta": {}, "usage": {"output_tokens": "x"}},
    ),
    "gemini part null": ("gemini", GEMINI_EVENTS, {"candidates": [{"content": {"parts": [None]}}]}),
    "gemini text number": (
        "gemini",
        GEMINI_EVENTS,
        {"candidates": [{"content": {"parts": [{"text": 5}]}}]},
    ),
    "gemini usage string": ("gemini", GEMINI_EVENTS, {"usageMetadata": {"promptTokenCount": "x"}}),
}


def _replace_second(provider: str, events: list[Any], bad: Any) -> list[Any]:
    """``events`` with the malformed one after the first content ("hi")."""
    if bad == {"type": "message_start"}:  # "message": null must be the first event
        return [{"type": "message_start", "message": None}, *events[1:]]
    at = 2 if provider == "anthropic" else 1
    return [*events[:at], bad, *events[at + 1 :]]


async def _stream(provider: str, events: list[Any], into: list[StreamDelta]) -> None:
    with Scripted(events=events) as server:
        client = AiohttpUpstream()
        try:
            async for delta in adapter(provider, server.url, client).stream(STREAM):
                into.append(delta)
        finally:
            await client.close()


# -- adapter level -------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
async def test_malformed_body_is_a_bad_response(case: str) -> None:
    provider, body = BAD_BODIES[case]
    with Scripted(body=body) as server:
        client = AiohttpUpstream()
        try:
            with pytest.raises(UpstreamBadResponse):
                await adapter(provider, server.url, client).complete(REQUEST)
        finally:
            await client.close()


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_well_formed_answers_still_parse(provider: str) -> None:
    body = {"openai": OPENAI_OK, "anthropic": ANTHROPIC_OK, "gemini": GEMINI_OK}[provider]
    events = {"openai": OPENAI_EVENTS, "anthropic": ANTHROPIC_EVENTS, "gemini": GEMINI_EVENTS}
    with Scripted(body=body) as server:
        client = AiohttpUpstream()
        try:
            result = await adapter(provider, server.url, client).complete(REQUEST)
        finally:
            await client.close()
    assert (result.content, result.finish_reason) == ("ok", "stop")
    assert result.usage == Usage(prompt_tokens=3, completion_tokens=2)
    deltas: list[StreamDelta] = []
    await _stream(provider, events[provider], deltas)
    assert "".join(d.content or "" for d in deltas).startswith("hi there")
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    assert [d.usage for d in deltas if d.usage] == [Usage(prompt_tokens=3, completion_tokens=2)]


@pytest.mark.parametrize("case", sorted(BAD_EVENTS))
async def test_malformed_stream_event_is_a_bad_response(case: str) -> None:
    provider, events, bad = BAD_EVENTS[case]
    deltas: list[StreamDelta] = []
    with pytest.raises(UpstreamBadResponse):
        await _stream(provider, _replace_second(provider, events, bad), deltas)
    if bad != {"type": "message_start"}:  # the first chunk got through before the error
        assert deltas and deltas[0].content == "hi"


async def test_unknown_finish_reason_becomes_stop() -> None:
    body = broken(OPENAI_OK, ("choices", 0, "finish_reason"), "eos")
    with Scripted(body=body) as server:
        client = AiohttpUpstream()
        try:
            result = await adapter("openai", server.url, client).complete(REQUEST)
        finally:
            await client.close()
    assert result.finish_reason == "stop"
    events = [*OPENAI_EVENTS]
    events[2] = broken(events[2], ("choices", 0, "finish_reason"), "eos")
    deltas: list[StreamDelta] = []
    await _stream("openai", events, deltas)
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]


@pytest.mark.parametrize("finish", ["length", "tool_calls", "function_call"])
async def test_known_finish_reasons_pass(finish: str) -> None:
    body = broken(OPENAI_OK, ("choices", 0, "finish_reason"), finish)
    with Scripted(body=body) as server:
        client = AiohttpUpstream()
        try:
            result = await adapter("openai", server.url, client).complete(REQUEST)
        finally:
            await client.close()
    assert result.finish_reason == finish


NEGATIVE_USAGE = {
    "openai": broken(OPENAI_OK, ("usage",), {"prompt_tokens": -1000000, "completion_tokens": -5}),
    "anthropic": broken(ANTHROPIC_OK, ("usage", "input_tokens"), -1000000),
    "gemini": broken(GEMINI_OK, ("usageMetadata", "candidatesTokenCount"), -5),
}


@pytest.mark.parametrize("provider", sorted(NEGATIVE_USAGE))
async def test_negative_token_counts_make_usage_unknown(provider: str) -> None:
    with Scripted(body=NEGATIVE_USAGE[provider]) as server:
        client = AiohttpUpstream()
        try:
            result = await adapter(provider, server.url, client).complete(REQUEST)
        finally:
            await client.close()
    assert result.content == "ok"
    assert result.usage is None


async def test_negative_streamed_usage_is_unknown() -> None:
    events = [*OPENAI_EVENTS]
    events[3] = {"choices": [], "usage": {"prompt_tokens": -3, "completion_tokens": 2}}
    deltas: list[StreamDelta] = []
    await _stream("openai", events, deltas)
    assert [d.usage for d in deltas if d.usage] == []
    events = [*ANTHROPIC_EVENTS]
    events[4] = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}}
    events[4]["usage"]["output_tokens"] = -2
    deltas = []
    await _stream("anthropic", events, deltas)
    assert [d.usage for d in deltas if d.usage] == []


# -- through the gateway: retry, then the next deployment ------------------------------

ENV = {"FAKE_KEY": "sk-upstream-secret"}
MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-6", "gemini": "gemini-2.5-pro"}


def _gateway(servers: dict[str, Scripted], backup: FakeOpenAI, db: Path) -> RunningGateway:
    deployments: list[dict[str, Any]] = [
        {
            "name": f"bad-{provider}",
            "model": MODELS[provider],
            "provider": provider,
            "api_base": server.url + ("/v1" if provider == "openai" else ""),
            "api_key": "env:FAKE_KEY",
        }
        for provider, server in servers.items()
    ]
    deployments.append(
        {
            "name": "backup",
            "model": "llama-3.1-70b-instruct",
            "provider": "openai_compatible",
            "api_base": backup.url + "/v1",
        }
    )
    settings = Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{db}"},
            "deployments": deployments,
            "tiers": {p: [f"bad-{p}", "backup"] for p in servers},
            # a retry budget no case can drain: the shared gateway's bad deployments fail
            # on every call, which the default budget rightly throttles after ~5 retries
            "retry": {"max_retries": 1, "base_delay": 0.01, "max_delay": 0.02, "budget_min": 1000},
            "circuit": {"failure_threshold": 1000, "cooldown": 1},
        }
    )
    return RunningGateway(create_app(settings, env=ENV)).start()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, Scripted], FakeOpenAI]]:
    servers = {p: Scripted().start() for p in MODELS}
    backup = FakeOpenAI(model="llama-3.1-70b-instruct").start()
    gw = _gateway(servers, backup, tmp_path_factory.mktemp("gw") / "ledger.db")
    try:
        yield gw.base_url, servers, backup
    finally:
        gw.stop()
        backup.stop()
        for server in servers.values():
            server.stop()


def _post(base_url: str, provider: str, *, stream: bool = False) -> httpx.Response:
    body: dict[str, Any] = {
        "model": f"tier:{provider}",
        "messages": [{"role": "user", "content": "hi"}],
    }
    if stream:
        body["stream"] = True
    return httpx.post(base_url + "/chat/completions", json=body, timeout=20)


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_gateway_falls_back_on_malformed_body(
    gateway: tuple[str, dict[str, Scripted], FakeOpenAI], case: str
) -> None:
    base_url, servers, backup = gateway
    provider, body = BAD_BODIES[case]
    server = servers[provider]
    server.reset()
    backup.reset()
    server.body = body
    response = _post(base_url, provider)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Echo: hi"
    assert response.headers["x-laneway-deployment"] == "backup"
    assert len(server.received) == 2  # one try, one retry, then the next deployment
    assert len(backup.received) == 1


@pytest.mark.parametrize("case", ["openai choice null", "openai delta string", "gemini part null"])
def test_gateway_falls_back_on_malformed_first_stream_event(
    gateway: tuple[str, dict[str, Scripted], FakeOpenAI], case: str
) -> None:
    base_url, servers, backup = gateway
    provider, events, bad = BAD_EVENTS[case]
    server = servers[provider]
    server.reset()
    backup.reset()
    server.events = [bad, *events]
    response = _post(base_url, provider, stream=True)
    assert response.status_code == 200, response.text
    assert response.headers["x-laneway-deployment"] == "backup"
    lines = [line for line in response.text.split("\n\n") if line.startswith("data: {")]
    text = "".join(
        (orjson.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for line in lines
    )
    assert text == "Echo: hi"
    assert response.text.rstrip().endswith("data: [DONE]")
    assert len(server.received) == 2
    assert len(backup.received) == 1


def test_gateway_normalises_finish_reason_and_negative_usage(tmp_path: Path) -> None:
    body = broken(OPENAI_OK, ("choices", 0, "finish_reason"), "eos")
    body["usage"] = {"prompt_tokens": -1000000, "completion_tokens": -5}
    with (
        Scripted(body=body) as server,
        FakeOpenAI(model="llama-3.1-70b-instruct") as backup,
    ):
        gw = _gateway({"openai": server}, backup, tmp_path / "ledger.db")
        try:
            response = _post(gw.base_url, "openai")
        finally:
            gw.stop()
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["choices"][0]["message"]["content"] == "ok"
    assert answer["usage"] is None
    assert response.headers["x-laneway-deployment"] == "bad-openai"
    engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with engine.connect() as conn:
            from sqlalchemy import text

            query = "SELECT prompt_tokens, completion_tokens, estimated FROM ledger"
            rows = [tuple(row) for row in conn.execute(text(query))]
    finally:
        engine.dispose()
    counts = [row[:2] for row in rows]
    assert counts and all(c is None or c >= 0 for row in counts for c in row)
    # the negative usage is not trusted: the tokens are estimated, and marked so
    assert rows and all(estimated for *_, estimated in rows)
