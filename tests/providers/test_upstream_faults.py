"""Upstream faults every adapter (OpenAI-compatible, Anthropic, Gemini) must handle the
same way, against the fake servers over real HTTP: a proxy's HTML error page never
reaches the message (only its status, type and size), a stream that ends cleanly after
its finish reason is a success, and a stream that drips forever is cut at the
deployment's maximum stream duration."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from tests.providers._scripted import ANTHROPIC_EVENTS, GEMINI_EVENTS, OPENAI_EVENTS, Scripted

from laneway.errors import UpstreamBadResponse, UpstreamServerError, UpstreamTimeout
from laneway.providers._anthropic import AnthropicAdapter
from laneway.providers._gemini import GeminiAdapter
from laneway.providers._http import AiohttpUpstream, Timeouts
from laneway.providers._openai_chat import OpenAIChatAdapter
from laneway.providers._status import Endpoint, describe_body
from laneway.providers._types import ChatRequest, StreamDelta
from laneway.testing import FakeAnthropic, FakeGemini, FakeOpenAI, FakeUpstreamServer, Fault

Adapter = OpenAIChatAdapter | AnthropicAdapter | GeminiAdapter
PROVIDERS = ("openai", "anthropic", "gemini")
WORDS = "one two three four five six"
REQUEST = ChatRequest(model="m", messages=({"role": "user", "content": WORDS},))
STREAM = ChatRequest(model="m", messages=REQUEST.messages, stream=True)


def _fake(provider: str) -> FakeUpstreamServer:
    if provider == "openai":
        return FakeOpenAI()
    if provider == "anthropic":
        return FakeAnthropic()
    return FakeGemini()


def _adapter(
    provider: str, url: str, client: AiohttpUpstream, timeouts: Timeouts | None = None
) -> Adapter:
    t = timeouts or Timeouts()
    if provider == "openai":
        return OpenAIChatAdapter(Endpoint("d", url + "/v1", "m", api_key="k", timeouts=t), client)
    if provider == "anthropic":
        return AnthropicAdapter(Endpoint("d", url, "m", api_key="k", timeouts=t), client)
    return GeminiAdapter(Endpoint("d", url, "m", api_key="k", timeouts=t), client)


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstreamServer]]:
    servers = {p: _fake(p).start() for p in PROVIDERS}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
async def client() -> AsyncIterator[AiohttpUpstream]:
    upstream = AiohttpUpstream()
    yield upstream
    await upstream.close()


async def _collect(
    adapter: Adapter, request: ChatRequest, seen: list[StreamDelta] | None = None
) -> list[StreamDelta]:
    deltas = [] if seen is None else seen
    async for delta in adapter.stream(request):
        deltas.append(delta)
    return deltas


# -- item 11: an HTML error page never reaches the message -----------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_html_error_page_is_described_not_copied(
    fakes: dict[str, FakeUpstreamServer], client: AiohttpUpstream, provider: str, stream: bool
) -> None:
    fake = fakes[provider]
    fake.reset()
    fake.fail_next(Fault("html", status=502))
    adapter = _adapter(provider, fake.url, client)
    with pytest.raises(UpstreamServerError) as info:
        if stream:
            await _collect(adapter, STREAM)
        else:
            await adapter.complete(REQUEST)
    message = info.value.message
    assert info.value.upstream_status == 502
    # what came back: status, content type and size, none of the page's text
    assert "502" in message and "text/html" in message and "bytes" in message
    for leaked in ("<", "DOCTYPE", "Bad Gateway", "SECRET-INTERNAL-HOST", "corp.internal"):
        assert leaked not in message, message


def test_describe_body_gives_type_and_size_only() -> None:
    page = b"<html><body>internal host db-7</body></html>"
    assert describe_body({"content-type": "text/html; charset=utf-8"}, page) == (
        f"a non-JSON body (text/html, {len(page)} bytes)"
    )
    assert describe_body({}, b"oops") == "a non-JSON body (no content type, 4 bytes)"
    # a content type that is not a media type is not echoed either
    assert "evil" not in describe_body({"content-type": "<b>evil</b>"}, b"x")


async def test_an_html_page_with_status_200_is_a_malformed_body_described(
    client: AiohttpUpstream,
) -> None:
    page = b"<html><body>Captive portal: log in at 10.0.0.1</body></html>"
    with Scripted(body=page) as fake, pytest.raises(UpstreamBadResponse) as info:
        await _adapter("openai", fake.url, client).complete(REQUEST)
    assert "non-JSON body" in info.value.message
    assert "<" not in info.value.message and "10.0.0.1" not in info.value.message


# -- item 12: a stream that ends cleanly after its finish reason is a success ----------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_stream_without_its_terminator_after_the_finish_is_a_success(
    fakes: dict[str, FakeUpstreamServer], client: AiohttpUpstream, provider: str
) -> None:
    fake = fakes[provider]
    fake.reset()
    fake.fail_next(Fault("unended"))  # no [DONE] / no message_stop, then a clean close
    deltas = await _collect(_adapter(provider, fake.url, client), STREAM)
    assert "".join(d.content or "" for d in deltas) == f"Echo: {WORDS}"
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    if provider == "anthropic":  # the usage counted so far comes with the finish
        assert deltas[-1].usage is not None and deltas[-1].usage.completion_tokens > 0


@pytest.mark.parametrize(
    ("provider", "events"),
    [
        ("openai", OPENAI_EVENTS[:2]),  # content, then a clean close: no finish_reason
        ("anthropic", ANTHROPIC_EVENTS[:4]),  # content, then a close before any stop_reason
        ("gemini", GEMINI_EVENTS[:2]),  # content, then a close before any finishReason
    ],
)
async def test_a_stream_that_ends_before_its_finish_reason_is_truncated(
    client: AiohttpUpstream, provider: str, events: list[Any]
) -> None:
    with Scripted(events=events) as fake:
        seen: list[StreamDelta] = []
        with pytest.raises(UpstreamBadResponse):
            await _collect(_adapter(provider, fake.url, client), STREAM, seen)
    assert any(d.content for d in seen)


async def test_gemini_has_no_terminator_its_finish_reason_ends_the_stream(
    client: AiohttpUpstream,
) -> None:
    with Scripted(events=GEMINI_EVENTS) as fake:
        deltas = await _collect(_adapter("gemini", fake.url, client), STREAM)
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]


# -- item 10: the maximum stream duration ------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_that_drips_forever_is_cut_at_its_maximum_duration(
    fakes: dict[str, FakeUpstreamServer], client: AiohttpUpstream, provider: str
) -> None:
    fake = fakes[provider]
    fake.reset()
    # then repeat a content event: OpenAI's 2nd chunk, Anthropic's first text delta
    first = {"openai": 1, "anthropic": 3, "gemini": 1}[provider]
    fake.fail_next(Fault("drip", seconds=0.05, after_chunks=first))
    timeouts = Timeouts(connect=5, read=5, idle=5, stream=0.6)
    seen: list[StreamDelta] = []
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as info:
        await _collect(_adapter(provider, fake.url, client, timeouts), STREAM, seen)
    elapsed = time.monotonic() - started
    assert 0.55 <= elapsed < 3.0  # at the limit, not at the idle time-out or never
    assert "maximum duration" in info.value.message
    assert len([d for d in seen if d.content]) >= 3  # it was streaming until then


async def test_a_steady_stream_within_its_maximum_duration_completes(
    fakes: dict[str, FakeUpstreamServer], client: AiohttpUpstream
) -> None:
    fake = fakes["openai"]
    fake.reset()
    timeouts = Timeouts(connect=5, read=5, idle=5, stream=5)
    deltas = await _collect(_adapter("openai", fake.url, client, timeouts), STREAM)
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
