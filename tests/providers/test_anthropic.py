"""The Anthropic Messages adapter: translation against recorded real-format payloads,
and round trips against the fake Anthropic server over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from laneway.errors import (
    ContentFiltered,
    InvalidRequest,
    UnsupportedParameter,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamInvalidRequest,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from laneway.providers._anthropic import AnthropicAdapter
from laneway.providers._http import AiohttpUpstream, Timeouts, UpstreamResponse
from laneway.providers._status import Endpoint
from laneway.providers._types import ChatRequest, ChatResult, Message, StreamDelta, Tool, Usage
from laneway.testing._fake_anthropic import FakeAnthropic
from laneway.testing._server import Fault

FIXTURES = Path(__file__).parent / "fixtures"
MODEL = "claude-sonnet-4-5-20250929"
WEATHER: Tool = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def user(text: str) -> Message:
    return {"role": "user", "content": text}


def req(*messages: Message, **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=messages or (user("Hi"),), **kwargs)


# -- a replaying UpstreamClient for recorded payloads ----------------------------


@dataclass
class _ReplayStream:
    status: int
    headers: Mapping[str, str]
    body: bytes

    async def read_body(self) -> bytes:
        return self.body

    async def lines(self) -> AsyncIterator[bytes]:
        for line in self.body.split(b"\n"):
            yield line


@dataclass
class Replay:
    """Answers every request with one recorded body and keeps what was sent."""

    body: bytes = b"{}"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    sent: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeouts: Timeouts
    ) -> UpstreamResponse:
        self.sent.append((url, dict(headers), orjson.loads(body)))
        return UpstreamResponse(self.status, self.headers, self.body)

    @asynccontextmanager
    async def post_stream(
        self, url: str, headers: Mapping[str, str], body: bytes, timeouts: Timeouts
    ) -> AsyncIterator[_ReplayStream]:
        self.sent.append((url, dict(headers), orjson.loads(body)))
        yield _ReplayStream(self.status, self.headers, self.body)

    async def close(self) -> None:
        return None


def adapter(client: Any, **quirks: Any) -> AnthropicAdapter:
    endpoint = Endpoint(
        deployment="claude",
        api_base="https://api.anthropic.test/",
        upstream_model=MODEL,
        api_key="sk-ant-test",
        quirks=quirks or None,
    )
    return AnthropicAdapter(endpoint, client)


async def collect(
    model: AnthropicAdapter, request: ChatRequest, into: list[StreamDelta] | None = None
) -> list[StreamDelta]:
    deltas = [] if into is None else into
    async for delta in model.stream(request):
        deltas.append(delta)
    return deltas


async def call(model: AnthropicAdapter, request: ChatRequest) -> object:
    """``complete`` or the whole ``stream``, as the request says."""
    return await (collect(model, request) if request.stream else model.complete(request))


# -- request translation ---------------------------------------------------------


async def test_text_request_body_and_headers() -> None:
    replay = Replay(fixture("anthropic_text.json"))
    request = req(
        {"role": "system", "content": "You are terse."},
        user("Hi"),
        {"role": "system", "content": [{"type": "text", "text": "Answer in English."}]},
        temperature=0.2,
        top_p=0.9,
        stop=("END",),
        user="user-42",
        max_tokens=64,
    )
    await adapter(replay).complete(request)
    url, headers, body = replay.sent[0]
    assert url == "https://api.anthropic.test/v1/messages"
    assert headers == {
        "content-type": "application/json",
        "accept": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-ant-test",
    }
    assert body == {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hi"}],
        "system": "You are terse.\n\nAnswer in English.",
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
    }


@pytest.mark.parametrize(("quirks", "expected"), [({}, 4096), ({"default_max_tokens": 1000}, 1000)])
def test_max_tokens_default(quirks: dict[str, Any], expected: int) -> None:
    body = adapter(Replay(), **quirks).build_body(req(), stream=True)
    assert body == {
        "model": MODEL,
        "max_tokens": expected,
        "messages": [user("Hi")],
        "stream": True,
    }


def test_tool_conversation_is_merged_into_alternating_turns() -> None:
    messages: tuple[Message, ...] = (
        user("Weather in Paris"),
        user("and in Rome?"),
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        user("thanks"),  # text placed before the second result is moved after it
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "24C"}]},
        {"role": "assistant", "content": None, "tool_calls": []},  # empty: dropped
    )
    body = adapter(Replay()).build_body(req(*messages, tools=(WEATHER,)), stream=False)
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris"},
                {"type": "text", "text": "and in Rome?"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"location": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "24C"},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
        }
    ]
    assert "tool_choice" not in body


def test_images_data_url_and_http_url() -> None:
    message: Message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Compare"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {
                "type": "image_url",
                "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
            },
        ],
    }
    body = adapter(Replay()).build_body(req(message), stream=False)
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "data:image/png,rawbytes", "cat.png"])
async def test_unusable_image_url_is_rejected_before_the_network(url: str) -> None:
    replay = Replay()
    message: Message = {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": url}}],
    }
    with pytest.raises(InvalidRequest) as info:
        await adapter(replay).complete(req(message))
    assert info.value.param == "messages"
    assert replay.sent == []


@pytest.mark.parametrize("arguments", ['{"location": ', "[1, 2]"])
async def test_bad_tool_call_arguments_are_rejected_before_the_network(arguments: str) -> None:
    replay = Replay()
    messages: tuple[Message, ...] = (
        user("Hi"),
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
            ],
        },
    )
    with pytest.raises(InvalidRequest) as info:
        await collect(adapter(replay), req(*messages, stream=True))
    assert info.value.param == "messages"
    assert replay.sent == []


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, None),
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    request = req(tools=(WEATHER,), tool_choice=choice, parallel_tool_calls=parallel)
    body = adapter(Replay()).build_body(request, stream=False)
    assert body.get("tool_choice") == expected


@pytest.mark.parametrize(
    ("response_format", "tool"),
    [
        (
            {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}},
            {"name": "answer", "input_schema": SCHEMA},
        ),
        (
            {"type": "json_schema", "json_schema": {"schema": SCHEMA}},
            {"name": "json_output", "input_schema": SCHEMA},
        ),
        ({"type": "json_object"}, {"name": "json_output", "input_schema": {"type": "object"}}),
    ],
)
def test_response_format_becomes_a_forced_tool(
    response_format: dict[str, Any], tool: dict[str, Any]
) -> None:
    body = adapter(Replay()).build_body(req(response_format=response_format), stream=False)
    assert body["tools"] == [tool]
    assert body["tool_choice"] == {"type": "tool", "name": tool["name"]}


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"seed": 7}, "seed"),
        ({"options": {"presence_penalty": 0.5}}, "presence_penalty"),
        ({"options": {"frequency_penalty": 1.0}}, "frequency_penalty"),
        ({"options": {"logprobs": True}}, "logprobs"),
        ({"options": {"logit_bias": {"50256": -100}}}, "logit_bias"),
        ({"options": {"n": 2}}, "n"),
        ({"temperature": 1.5}, "temperature"),
        ({"tools": (WEATHER,), "response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_check_rejects_what_anthropic_cannot_honour(kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        adapter(Replay()).check(req(**kwargs))
    assert info.value.param == param
    assert info.value.status == 400


def test_check_accepts_defaults_and_the_temperature_range() -> None:
    model = adapter(Replay())
    model.check(req(temperature=1.0, options={"n": 1, "logprobs": False, "presence_penalty": 0}))
    model.check(req(temperature=0.0, tools=(WEATHER,), seed=None))


# -- response translation (recorded payloads) --------------------------------------


async def test_text_answer_from_recorded_payload() -> None:
    result = await adapter(Replay(fixture("anthropic_text.json"))).complete(req())
    assert result == ChatResult(
        content="Hi! My name is Claude.",
        finish_reason="stop",
        model="claude-sonnet-4-5-20250929",
        usage=Usage(
            prompt_tokens=21 + 1024 + 188,
            completion_tokens=10,
            cached_tokens=1024,
            cache_creation_tokens=188,
        ),
    )


async def test_tool_use_answer_from_recorded_payload() -> None:
    result = await adapter(Replay(fixture("anthropic_tool_use.json"))).complete(
        req(tools=(WEATHER,))
    )
    assert result == ChatResult(
        content="I'll check the current weather in San Francisco for you.",
        finish_reason="tool_calls",
        model="claude-sonnet-4-5-20250929",
        usage=Usage(prompt_tokens=384, completion_tokens=92),
        tool_calls=[
            {
                "id": "toolu_01A09q90qw90lq917835lq9",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
                },
            }
        ],
    )


async def test_json_mode_answer_is_the_tool_input() -> None:
    request = req(response_format={"type": "json_object"})
    result = await adapter(Replay(fixture("anthropic_tool_use.json"))).complete(request)
    assert result.content == '{"location":"San Francisco, CA","unit":"celsius"}'
    assert result.finish_reason == "stop"
    assert result.tool_calls == []


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ],
)
async def test_stop_reasons(stop_reason: str, finish: str) -> None:
    payload = orjson.loads(fixture("anthropic_text.json"))
    payload["stop_reason"] = stop_reason
    result = await adapter(Replay(orjson.dumps(payload))).complete(req())
    assert result.finish_reason == finish


async def test_refusal_without_text_is_content_filtered() -> None:
    payload = orjson.loads(fixture("anthropic_text.json"))
    payload.update(content=[], stop_reason="refusal")
    with pytest.raises(ContentFiltered):
        await adapter(Replay(orjson.dumps(payload))).complete(req())


@pytest.mark.parametrize("body", [b'{"id": "msg_x", "content": [', b'{"type": "message"}', b"[]"])
async def test_malformed_body_is_a_bad_response(body: bytes) -> None:
    with pytest.raises(UpstreamBadResponse):
        await adapter(Replay(body)).complete(req())


@pytest.mark.parametrize(
    ("status", "err_type", "expected"),
    [
        (400, "invalid_request_error", UpstreamInvalidRequest),
        (401, "authentication_error", UpstreamAuthError),
        (403, "permission_error", UpstreamAuthError),
        (413, "request_too_large", UpstreamInvalidRequest),
        (429, "rate_limit_error", UpstreamRateLimited),
        (500, "api_error", UpstreamServerError),
        (529, "overloaded_error", UpstreamServerError),
        (400, "overloaded_error", UpstreamServerError),  # the type wins over the status
        (502, None, UpstreamServerError),  # a proxy's HTML page: by status
    ],
)
async def test_error_mapping(
    status: int, err_type: str | None, expected: type[UpstreamError]
) -> None:
    body = (
        orjson.dumps({"type": "error", "error": {"type": err_type, "message": "boom"}})
        if err_type
        else b"<html>Bad gateway</html>"
    )
    replay = Replay(body, status=status, headers={"retry-after": "7"})
    with pytest.raises(UpstreamError) as info:
        await adapter(replay).complete(req())
    assert type(info.value) is expected
    assert info.value.upstream_status == status
    if expected in (UpstreamRateLimited, UpstreamServerError):
        assert info.value.retry_after == 7.0


async def test_not_found_error_from_recorded_payload() -> None:
    replay = Replay(fixture("anthropic_error.json"), status=404)
    with pytest.raises(UpstreamError) as info:
        await adapter(replay).complete(req())
    assert type(info.value) is UpstreamError
    assert info.value.message == (
        "anthropic returned HTTP 404: The requested resource could not be found."
    )


# -- streaming (recorded payloads) ------------------------------------------------


async def test_stream_text_from_recorded_events() -> None:
    replay = Replay(fixture("anthropic_stream_text.sse"))
    deltas = await collect(adapter(replay), req(stream=True))
    model = "claude-opus-4-1-20250805"
    assert deltas == [
        StreamDelta(content="Hello", model=model),
        StreamDelta(content="!", model=model),
        StreamDelta(
            finish_reason="stop", usage=Usage(prompt_tokens=25, completion_tokens=15), model=model
        ),
    ]
    assert replay.sent[0][2]["stream"] is True


async def test_stream_tool_use_from_recorded_events() -> None:
    replay = Replay(fixture("anthropic_stream_tool_use.sse"))
    deltas = await collect(adapter(replay), req(stream=True, tools=(WEATHER,)))
    model = "claude-opus-4-1-20250805"
    assert deltas == [
        StreamDelta(content="Okay", model=model),
        StreamDelta(content=", let's check the weather.", model=model),
        StreamDelta(
            tool_calls=[
                {
                    "index": 0,
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ],
            model=model,
        ),
        StreamDelta(
            tool_calls=[{"index": 0, "function": {"arguments": '{"location":'}}], model=model
        ),
        StreamDelta(
            tool_calls=[{"index": 0, "function": {"arguments": ' "San Francisco, CA"}'}}],
            model=model,
        ),
        StreamDelta(
            tool_calls=[
                {
                    "index": 1,
                    "id": "toolu_01JmnzP7Wq1X3cN9v4Cz3Jdk",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                }
            ],
            model=model,
        ),
        StreamDelta(
            tool_calls=[
                {"index": 1, "function": {"arguments": '{"timezone": "America/Los_Angeles"}'}}
            ],
            model=model,
        ),
        StreamDelta(
            finish_reason="tool_calls",
            usage=Usage(prompt_tokens=472 + 2048, completion_tokens=89, cached_tokens=2048),
            model=model,
        ),
    ]


async def test_stream_json_mode_streams_the_tool_input_as_content() -> None:
    replay = Replay(fixture("anthropic_stream_tool_use.sse"))
    request = req(stream=True, response_format={"type": "json_object"})
    deltas = await collect(adapter(replay), request)
    assert "".join(d.content or "" for d in deltas) == (
        '{"location": "San Francisco, CA"}{"timezone": "America/Los_Angeles"}'
    )
    assert all(d.tool_calls is None for d in deltas)
    assert deltas[-1].finish_reason == "stop"


async def test_stream_error_event_is_mapped_like_an_http_error() -> None:
    stream = adapter(Replay(fixture("anthropic_stream_error.sse"))).stream(req(stream=True))
    assert (await anext(stream)).content == "Hello"
    with pytest.raises(UpstreamServerError) as info:
        await anext(stream)
    assert info.value.upstream_status == 529
    assert "Overloaded" in info.value.message


async def test_stream_without_message_stop_after_its_stop_reason_is_complete() -> None:
    body = fixture("anthropic_stream_text.sse").split(b"event: message_stop")[0]
    deltas = await collect(adapter(Replay(body)), req(stream=True))
    assert [d.content for d in deltas if d.content] == ["Hello", "!"]
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]


async def test_stream_cut_before_its_stop_reason_is_a_bad_response() -> None:
    body = fixture("anthropic_stream_text.sse").split(b"event: message_delta")[0]
    deltas: list[StreamDelta] = []
    with pytest.raises(UpstreamBadResponse):
        await collect(adapter(Replay(body)), req(stream=True), deltas)
    assert [d.content for d in deltas] == ["Hello", "!"]


async def test_stream_http_error_before_the_first_event() -> None:
    body = orjson.dumps(
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    )
    replay = Replay(body, status=429, headers={"retry-after": "3"})
    with pytest.raises(UpstreamRateLimited) as info:
        await collect(adapter(replay), req(stream=True))
    assert info.value.retry_after == 3.0


# -- round trips against the fake Anthropic server ---------------------------------


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key="sk-ant-test", cache_read_tokens=4) as server:
        yield server


def live(fake: FakeAnthropic, client: AiohttpUpstream, **kwargs: Any) -> AnthropicAdapter:
    endpoint = Endpoint(
        deployment="claude",
        api_base=fake.url,
        upstream_model="claude-fake-4-5",
        api_key=kwargs.pop("api_key", "sk-ant-test"),
        **kwargs,
    )
    return AnthropicAdapter(endpoint, client)


async def test_round_trip_complete_and_stream(fake: FakeAnthropic) -> None:
    client = AiohttpUpstream()
    try:
        model = live(fake, client)
        request = req({"role": "system", "content": "Be brief."}, user("hello there"))
        result = await model.complete(request)
        deltas = await collect(model, request)
    finally:
        await client.close()
    assert result.content == "Echo: hello there"
    assert result.finish_reason == "stop"
    assert result.model == "claude-fake-4-5"
    assert result.usage is not None
    assert result.usage.cached_tokens == 4
    assert result.usage.prompt_tokens > 4
    assert "".join(d.content or "" for d in deltas) == "Echo: hello there"
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage == result.usage
    sent = fake.received[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["system"] == "Be brief."
    assert fake.received[1].body["stream"] is True


async def test_round_trip_tool_call_and_result(fake: FakeAnthropic) -> None:
    client = AiohttpUpstream()
    try:
        model = live(fake, client)
        first = await model.complete(req(user("Paris"), tools=(WEATHER,)))
        call = first.tool_calls[0]
        streamed = await collect(model, req(user("Paris"), tools=(WEATHER,), stream=True))
        followup = req(
            user("Paris"),
            {"role": "assistant", "content": None, "tool_calls": first.tool_calls},
            {"role": "tool", "tool_call_id": call["id"], "content": "18C"},
            tools=(WEATHER,),
        )
        second = await model.complete(followup)
    finally:
        await client.close()
    assert first.finish_reason == "tool_calls"
    assert call["function"] == {"name": "get_weather", "arguments": '{"query":"Paris"}'}
    arguments = "".join(
        tc.get("function", {}).get("arguments", "") for d in streamed for tc in d.tool_calls or ()
    )
    assert arguments == '{"query":"Paris"}'
    assert streamed[-1].finish_reason == "tool_calls"
    assert second.content == "Echo: Paris"
    assert second.finish_reason == "stop"


async def test_round_trip_json_schema(fake: FakeAnthropic) -> None:
    client = AiohttpUpstream()
    request = req(
        user("capital of France"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": SCHEMA},
        },
    )
    try:
        model = live(fake, client)
        result = await model.complete(request)
        deltas = await collect(model, request)
    finally:
        await client.close()
    assert orjson.loads(result.content or "") == {"query": "capital of France"}
    assert result.finish_reason == "stop"
    assert "".join(d.content or "" for d in deltas) == result.content
    assert deltas[-1].finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("fault", "expected", "retry_after"),
    [
        (Fault("status", status=429, retry_after=7), UpstreamRateLimited, 7.0),
        (Fault("status", status=529), UpstreamServerError, None),
        (Fault("status", status=500), UpstreamServerError, None),
    ],
)
async def test_round_trip_error_statuses(
    fake: FakeAnthropic,
    stream: bool,
    fault: Fault,
    expected: type[UpstreamError],
    retry_after: float | None,
) -> None:
    fake.fail_next(fault)
    client = AiohttpUpstream()
    try:
        model = live(fake, client)
        with pytest.raises(UpstreamError) as info:
            await call(model, req(stream=stream))
    finally:
        await client.close()
    assert type(info.value) is expected
    assert info.value.upstream_status == fault.status
    assert info.value.retry_after == retry_after


async def test_round_trip_wrong_key_is_an_auth_error(fake: FakeAnthropic) -> None:
    client = AiohttpUpstream()
    try:
        with pytest.raises(UpstreamAuthError) as info:
            await live(fake, client, api_key="sk-ant-wrong").complete(req())
    finally:
        await client.close()
    assert info.value.upstream_status == 401


async def test_round_trip_cut_stream_fails(fake: FakeAnthropic) -> None:
    fake.fail_next(Fault("cut", after_chunks=4))
    client = AiohttpUpstream()
    deltas: list[StreamDelta] = []
    try:
        model = live(fake, client)
        with pytest.raises(UpstreamConnectionError):
            await collect(model, req(user("one two three"), stream=True), deltas)
    finally:
        await client.close()
    assert [d.content for d in deltas] == ["Echo:"]  # start, block start, ping, first delta


@pytest.mark.parametrize("stream", [False, True])
async def test_round_trip_malformed(fake: FakeAnthropic, stream: bool) -> None:
    fake.fail_next(Fault("malformed"))
    client = AiohttpUpstream()
    try:
        model = live(fake, client)
        with pytest.raises(UpstreamBadResponse):
            await call(model, req(stream=stream))
    finally:
        await client.close()


async def test_round_trip_stall_times_out(fake: FakeAnthropic) -> None:
    fake.fail_next(Fault("stall", seconds=2.0))
    client = AiohttpUpstream()
    try:
        model = live(fake, client, timeouts=Timeouts(read=0.2))
        with pytest.raises(UpstreamTimeout):
            await model.complete(req())
    finally:
        await client.close()


async def test_fake_rejects_what_the_real_api_rejects(fake: FakeAnthropic) -> None:
    client = AiohttpUpstream()
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    url = fake.url + "/v1/messages"
    bodies = [
        {"model": "m", "messages": [user("Hi")]},
        {"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "Hi"}]},
        {"model": "m", "max_tokens": 5, "messages": [user("a"), user("b")]},
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                user("a"),
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                },
                user("b"),
            ],
        },
    ]
    try:
        answers = [await client.post(url, headers, orjson.dumps(b), Timeouts()) for b in bodies]
        no_version = await client.post(
            url, {"x-api-key": "sk-ant-test"}, orjson.dumps(bodies[0]), Timeouts()
        )
        via_adapter = live(fake, client)
        with pytest.raises(UpstreamInvalidRequest) as info:
            await via_adapter.complete(req({"role": "assistant", "content": "I speak first"}))
    finally:
        await client.close()
    messages = [orjson.loads(a.body)["error"]["message"] for a in answers]
    assert [a.status for a in answers] == [400, 400, 400, 400]
    assert messages[0] == "max_tokens: Field required"
    assert messages[1] == 'messages: first message must use the "user" role'
    assert messages[2] == 'messages: roles must alternate between "user" and "assistant"'
    assert messages[3].startswith("messages.2: tool_use ids were found without tool_result")
    assert no_version.status == 400
    assert orjson.loads(answers[0].body)["type"] == "error"
    assert "user" in info.value.message


async def test_fake_renders_the_real_event_sequence(fake: FakeAnthropic) -> None:
    client = AiohttpUpstream()
    body = {"model": "m", "max_tokens": 50, "stream": True, "messages": [user("hi")]}
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    try:
        async with client.post_stream(
            fake.url + "/v1/messages", headers, orjson.dumps(body), Timeouts()
        ) as r:
            lines = [line async for line in r.lines()]
    finally:
        await client.close()
    events = [
        line.removeprefix(b"event: ").decode() for line in lines if line.startswith(b"event: ")
    ]
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
