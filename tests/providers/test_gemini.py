"""The Gemini adapter: translation against recorded real-format payloads, round trips
against a running FakeGemini, and the parameters it must refuse before any network call."""

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
from laneway.providers._gemini import GeminiAdapter
from laneway.providers._http import AiohttpUpstream, Timeouts, UpstreamResponse
from laneway.providers._status import Endpoint
from laneway.providers._types import ChatRequest, ChatResult, Message, StreamDelta, Usage
from laneway.testing._fake_gemini import FakeGemini
from laneway.testing._server import Fault, count_tokens

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "AIza-test-key"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sse(chunks: list[Any]) -> list[bytes]:
    """Render chunks as Google's SSE lines (``data: {...}`` and CRLF blank lines)."""
    lines: list[bytes] = []
    for chunk in chunks:
        lines += [b"data: " + orjson.dumps(chunk), b""]
    return lines


@dataclass
class _RecordedStream:
    status: int
    headers: Mapping[str, str]
    body: bytes
    line_list: list[bytes]

    async def read_body(self) -> bytes:
        return self.body

    async def lines(self) -> AsyncIterator[bytes]:
        for line in self.line_list:
            yield line


@dataclass
class Recorded:
    """An UpstreamClient that answers with a recorded payload and keeps what it was sent."""

    status: int = 200
    body: bytes = b""
    lines: list[bytes] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeouts: Timeouts
    ) -> UpstreamResponse:
        self.calls.append((url, dict(headers), orjson.loads(body)))
        return UpstreamResponse(self.status, self.headers, self.body)

    @asynccontextmanager
    async def post_stream(
        self, url: str, headers: Mapping[str, str], body: bytes, timeouts: Timeouts
    ) -> AsyncIterator[_RecordedStream]:
        self.calls.append((url, dict(headers), orjson.loads(body)))
        yield _RecordedStream(self.status, self.headers, self.body, self.lines)

    async def close(self) -> None:
        return None

    @property
    def sent(self) -> Any:
        return self.calls[-1][2]


def endpoint(api_base: str = "https://generativelanguage.googleapis.com", **kw: Any) -> Endpoint:
    return Endpoint("gemini-flash", api_base, "gemini-2.5-flash", api_key=KEY, **kw)


def req(*messages: Message, **kw: Any) -> ChatRequest:
    return ChatRequest(model="g", messages=messages or ({"role": "user", "content": "Hi"},), **kw)


async def collect(
    adapter: GeminiAdapter, request: ChatRequest, into: list[StreamDelta] | None = None
) -> list[StreamDelta]:
    """The deltas of a stream; ``into`` keeps those seen before an error."""
    seen = [] if into is None else into
    async for delta in adapter.stream(request):
        seen.append(delta)
    return seen


# -- request translation ----------------------------------------------------------


async def test_full_request_translation_url_and_headers() -> None:
    upstream = Recorded(body=fixture("gemini_text_response.json"))
    adapter = GeminiAdapter(endpoint(), upstream)
    request = req(
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris? Also see these."},
        {"role": "user", "content": [
            {"type": "text", "text": "Photo:"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://x.test/a/b.JPG?s=1"}},
        ]},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "c2", "type": "function",
             "function": {"name": "get_time", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp_c": 21}'},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
        {"role": "user", "content": "Thanks"},
        max_tokens=64, temperature=0.3, top_p=0.9, stop=("END",), seed=7,
        tools=(WEATHER_TOOL,),
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=True,
        options={"presence_penalty": 0.5, "frequency_penalty": 0.25},
    )  # fmt: skip
    await adapter.complete(request)
    url, headers, body = upstream.calls[0]
    assert url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert headers["x-goog-api-key"] == KEY
    assert KEY not in url
    assert body == {
        "contents": [
            {"role": "user", "parts": [
                {"text": "Weather in Paris? Also see these."},
                {"text": "Photo:"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/a/b.JPG?s=1"}},
            ]},
            {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
                {"text": "Thanks"},
            ]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief.\n\nUse metric."}]},
        "generationConfig": {
            "temperature": 0.3, "topP": 0.9, "maxOutputTokens": 64, "stopSequences": ["END"],
            "seed": 7, "presencePenalty": 0.5, "frequencyPenalty": 0.25,
        },
        "tools": [{"functionDeclarations": [{
            "name": "get_weather",
            "description": "Weather for a city",
            "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"],
        }]}],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    ("api_base", "url"),
    [
        ("https://g.test/", "https://g.test/v1beta/models/gemini-2.5-flash:generateContent"),
        ("https://g.test/v1beta", "https://g.test/v1beta/models/gemini-2.5-flash:generateContent"),
        ("https://g.test/v1/", "https://g.test/v1/models/gemini-2.5-flash:generateContent"),
    ],
)
async def test_api_base_with_or_without_version(api_base: str, url: str) -> None:
    upstream = Recorded(body=fixture("gemini_text_response.json"))
    await GeminiAdapter(endpoint(api_base), upstream).complete(req())
    assert upstream.calls[0][0] == url


async def test_minimal_body_has_no_empty_sections() -> None:
    upstream = Recorded(body=fixture("gemini_text_response.json"))
    await GeminiAdapter(endpoint(), upstream).complete(req())
    assert upstream.sent == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


@pytest.mark.parametrize(
    ("choice", "mode"), [("auto", "AUTO"), ("required", "ANY"), ("none", "NONE")]
)
async def test_tool_choice_modes(choice: str, mode: str) -> None:
    upstream = Recorded(body=fixture("gemini_text_response.json"))
    await GeminiAdapter(endpoint(), upstream).complete(
        req(tools=(WEATHER_TOOL,), tool_choice=choice)
    )
    assert upstream.sent["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


async def test_json_modes() -> None:
    upstream = Recorded(body=fixture("gemini_text_response.json"))
    adapter = GeminiAdapter(endpoint(), upstream)
    await adapter.complete(req(response_format={"type": "json_object"}))
    assert upstream.sent["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    await adapter.complete(
        req(response_format={"type": "json_schema", "json_schema": {"name": "A", "schema": schema}})
    )
    assert upstream.sent["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    await adapter.complete(req(response_format={"type": "text"}))
    assert "generationConfig" not in upstream.sent


def _call(call_id: str, name: str = "f", arguments: str = "{}") -> Message:
    return {
        "role": "assistant",
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }


@pytest.mark.parametrize(
    ("request_", "error", "param"),
    [
        (req(user="u-1"), UnsupportedParameter, "user"),
        (req(parallel_tool_calls=False), UnsupportedParameter, "parallel_tool_calls"),
        (req(options={"logprobs": True}), UnsupportedParameter, "logprobs"),
        (req(options={"n": 2}), UnsupportedParameter, "n"),
        (req(options={"logit_bias": {"1": 5}}), UnsupportedParameter, "logit_bias"),
        (req(stop=("a", "b", "c", "d", "e", "f")), UnsupportedParameter, "stop"),
        (req(response_format={"type": "grammar"}), UnsupportedParameter, "response_format"),
        (req(response_format={"type": "json_schema"}), InvalidRequest, "response_format"),
        (req(tool_choice="sometimes"), UnsupportedParameter, "tool_choice"),
        (
            req({"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://x.test/pic"}}]}),
            UnsupportedParameter, "messages",
        ),
        (
            req({"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://x.test/a.tiff"}}]}),
            UnsupportedParameter, "messages",
        ),
        (
            req({"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}),
            InvalidRequest, "messages",
        ),
        (req(_call("c1", arguments="{not json")), InvalidRequest, "messages"),
        (req(_call("c1", arguments="[1]")), InvalidRequest, "messages"),
        (
            req(_call("c1"), {"role": "tool", "tool_call_id": "zz", "content": "x"}),
            InvalidRequest, "messages",
        ),
        (req({"role": "function", "content": "x"}), InvalidRequest, "messages"),
    ],
)  # fmt: skip
async def test_check_rejects_before_any_network_call(
    request_: ChatRequest, error: type[Exception], param: str
) -> None:
    upstream = Recorded(body=fixture("gemini_text_response.json"))
    adapter = GeminiAdapter(endpoint(), upstream)
    with pytest.raises(error) as info:
        adapter.check(request_)
    assert type(info.value) is error
    assert getattr(info.value, "param", None) == param
    with pytest.raises(error):
        await adapter.complete(request_)
    with pytest.raises(error):
        await collect(adapter, request_)
    assert upstream.calls == []


def test_check_accepts_what_it_honours() -> None:
    adapter = GeminiAdapter(endpoint(), Recorded())
    adapter.check(
        req(
            parallel_tool_calls=True,
            stop=("1", "2", "3", "4", "5"),
            options={"presence_penalty": 0.1, "n": 1, "logprobs": False, "top_logprobs": None},
            tools=(WEATHER_TOOL,),
            tool_choice="required",
        )
    )


async def test_tool_call_id_reuse_maps_to_latest_call() -> None:
    upstream = Recorded(body=fixture("gemini_text_response.json"))
    await GeminiAdapter(endpoint(), upstream).complete(
        req(
            {"role": "user", "content": "go"},
            _call("call_0", name="first"),
            {"role": "tool", "tool_call_id": "call_0", "content": "[1, 2]"},
            _call("call_0", name="second"),
            {"role": "tool", "tool_call_id": "call_0", "content": "ok"},
        )
    )
    responses = [
        p["functionResponse"]
        for c in upstream.sent["contents"]
        for p in c["parts"]
        if "functionResponse" in p
    ]
    assert responses == [
        {"name": "first", "response": {"content": "[1, 2]"}},
        {"name": "second", "response": {"content": "ok"}},
    ]


# -- response translation (recorded payloads) --------------------------------------


async def test_text_answer_skips_thoughts_and_counts_thinking_tokens() -> None:
    upstream = Recorded(body=fixture("gemini_text_response.json"))
    result = await GeminiAdapter(endpoint(), upstream).complete(req())
    assert result == ChatResult(
        content="AI learns patterns from data and uses them to make predictions about new inputs.",
        finish_reason="stop",
        model="gemini-2.5-flash",
        usage=Usage(prompt_tokens=8, completion_tokens=16 + 979, cached_tokens=4),
        tool_calls=[],
    )


async def test_function_call_answer() -> None:
    upstream = Recorded(body=fixture("gemini_function_call_response.json"))
    result = await GeminiAdapter(endpoint(), upstream).complete(req(tools=(WEATHER_TOOL,)))
    assert result == ChatResult(
        content=None,
        finish_reason="tool_calls",
        model="gemini-2.5-flash",
        usage=Usage(prompt_tokens=110, completion_tokens=40),
        tool_calls=[
            {
                "id": "call_0",
                "type": "function",
                "function": {
                    "name": "schedule_meeting",
                    "arguments": '{"attendees":["Bob","Alice"],"date":"2025-03-27",'
                    '"time":"10:00","topic":"Q3 planning"}',
                },
            },
            {
                "id": "call_1",
                "type": "function",
                "function": {
                    "name": "get_current_temperature",
                    "arguments": '{"location":"London"}',
                },
            },
        ],
    )


async def test_streamed_answer() -> None:
    chunks = orjson.loads(fixture("gemini_stream_chunks.json"))
    upstream = Recorded(lines=sse(chunks))
    adapter = GeminiAdapter(endpoint(), upstream)
    deltas = await collect(adapter, req())
    assert upstream.calls[0][0].endswith(
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    model = "gemini-2.0-flash"
    assert deltas == [
        StreamDelta(content="The", model=model),
        StreamDelta(content=" old lighthouse keeper, Silas, had", model=model),
        StreamDelta(content=" never seen the sea so still.", finish_reason="stop", model=model),
        StreamDelta(usage=Usage(prompt_tokens=9, completion_tokens=15), model=model),
    ]


async def test_streamed_function_calls_are_whole_tool_call_deltas() -> None:
    answer = orjson.loads(fixture("gemini_function_call_response.json"))
    upstream = Recorded(lines=sse([answer]))
    deltas = await collect(GeminiAdapter(endpoint(), upstream), req(tools=(WEATHER_TOOL,)))
    assert len(deltas) == 2
    assert deltas[0].finish_reason == "tool_calls"
    assert deltas[0].content is None
    assert deltas[0].tool_calls == [
        {
            "index": 0,
            "id": "call_0",
            "type": "function",
            "function": {
                "name": "schedule_meeting",
                "arguments": '{"attendees":["Bob","Alice"],"date":"2025-03-27",'
                '"time":"10:00","topic":"Q3 planning"}',
            },
        },
        {
            "index": 1,
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_current_temperature", "arguments": '{"location":"London"}'},
        },
    ]
    assert deltas[1].usage == Usage(prompt_tokens=110, completion_tokens=40)


async def test_blocked_prompt_is_content_filtered() -> None:
    upstream = Recorded(body=fixture("gemini_blocked_prompt.json"))
    adapter = GeminiAdapter(endpoint(), upstream)
    with pytest.raises(ContentFiltered):
        await adapter.complete(req())
    upstream.lines = sse([orjson.loads(fixture("gemini_blocked_prompt.json"))])
    with pytest.raises(ContentFiltered):
        await collect(adapter, req())


def _answer(finish: str, parts: list[Any] | None) -> bytes:
    candidate: dict[str, Any] = {"finishReason": finish, "index": 0}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    return orjson.dumps({"candidates": [candidate], "modelVersion": "m"})


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
    ],
)
async def test_finish_reasons(finish: str, expected: str) -> None:
    upstream = Recorded(body=_answer(finish, [{"text": "partial"}]))
    result = await GeminiAdapter(endpoint(), upstream).complete(req())
    assert (result.content, result.finish_reason, result.usage) == ("partial", expected, None)


async def test_answer_blocked_without_content_is_content_filtered() -> None:
    upstream = Recorded(body=_answer("SAFETY", None))
    with pytest.raises(ContentFiltered):
        await GeminiAdapter(endpoint(), upstream).complete(req())


async def test_max_tokens_spent_thinking_gives_empty_length_answer() -> None:
    upstream = Recorded(body=_answer("MAX_TOKENS", None))
    result = await GeminiAdapter(endpoint(), upstream).complete(req())
    assert (result.content, result.finish_reason, result.model) == (None, "length", "m")


@pytest.mark.parametrize(
    "body", [b'{"candidates": [', b"[]", b'{"candidates": []}', b'{"candidates": ["x"]}']
)
async def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(UpstreamBadResponse):
        await GeminiAdapter(endpoint(), Recorded(body=body)).complete(req())


async def test_stream_without_finish_reason_is_an_error() -> None:
    chunks = orjson.loads(fixture("gemini_stream_chunks.json"))[:2]
    adapter = GeminiAdapter(endpoint(), Recorded(lines=sse(chunks)))
    seen: list[StreamDelta] = []
    with pytest.raises(UpstreamBadResponse):
        await collect(adapter, req(), seen)
    assert [d.content for d in seen] == ["The", " old lighthouse keeper, Silas, had"]


async def test_error_chunk_inside_a_stream_is_mapped() -> None:
    chunks = orjson.loads(fixture("gemini_stream_chunks.json"))[:1]
    error = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
    adapter = GeminiAdapter(endpoint(), Recorded(lines=sse([*chunks, error])))
    with pytest.raises(UpstreamServerError):
        await collect(adapter, req())


async def test_recorded_429_honours_retry_info_and_header() -> None:
    upstream = Recorded(status=429, body=fixture("gemini_error_429.json"))
    adapter = GeminiAdapter(endpoint(), upstream)
    with pytest.raises(UpstreamRateLimited) as info:
        await adapter.complete(req())
    assert (info.value.retry_after, info.value.upstream_status) == (37.0, 429)
    upstream.headers = {"retry-after": "5"}
    with pytest.raises(UpstreamRateLimited) as info:
        await collect(adapter, req())
    assert info.value.retry_after == 5.0


async def test_recorded_invalid_api_key_is_an_auth_error() -> None:
    upstream = Recorded(status=400, body=fixture("gemini_error_api_key.json"))
    with pytest.raises(UpstreamAuthError) as info:
        await GeminiAdapter(endpoint(), upstream).complete(req())
    assert info.value.upstream_status == 400


@pytest.mark.parametrize(
    ("status", "google", "error"),
    [
        (400, "INVALID_ARGUMENT", UpstreamInvalidRequest),
        (400, "FAILED_PRECONDITION", UpstreamAuthError),
        (403, "PERMISSION_DENIED", UpstreamAuthError),
        (401, "UNAUTHENTICATED", UpstreamAuthError),
        (404, "NOT_FOUND", UpstreamError),
        (429, "RESOURCE_EXHAUSTED", UpstreamRateLimited),
        (500, "INTERNAL", UpstreamServerError),
        (503, "UNAVAILABLE", UpstreamServerError),
        (504, "DEADLINE_EXCEEDED", UpstreamTimeout),
        (502, None, UpstreamServerError),
    ],
)
async def test_error_statuses(status: int, google: str | None, error: type[Exception]) -> None:
    body = orjson.dumps({"error": {"code": status, "message": "m", "status": google}})
    if google is None:
        body = b"<html>Bad Gateway</html>"
    with pytest.raises(error) as info:
        await GeminiAdapter(endpoint(), Recorded(status=status, body=body)).complete(req())
    assert type(info.value) is error


# -- round trips against a running FakeGemini ---------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=KEY) as server:
        yield server


@pytest.fixture
def server(fake: FakeGemini) -> FakeGemini:
    fake.reset()
    return fake


@pytest.fixture
async def client() -> AsyncIterator[AiohttpUpstream]:
    upstream = AiohttpUpstream()
    yield upstream
    await upstream.close()


def live(server: FakeGemini, client: AiohttpUpstream, **kw: Any) -> GeminiAdapter:
    return GeminiAdapter(endpoint(server.url, **kw), client)


async def test_fake_complete_text(server: FakeGemini, client: AiohttpUpstream) -> None:
    result = await live(server, client).complete(req({"role": "user", "content": "hello there"}))
    assert result.content == "Echo: hello there"
    assert (result.finish_reason, result.model) == ("stop", "gemini-2.5-flash")
    prompt = count_tokens(orjson.dumps(server.received[0].body["contents"]).decode())
    assert result.usage == Usage(prompt_tokens=prompt, completion_tokens=5)
    sent = server.received[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.query == {}


async def test_fake_stream_text(server: FakeGemini, client: AiohttpUpstream) -> None:
    deltas = await collect(live(server, client), req({"role": "user", "content": "a b c d"}))
    prompt = count_tokens(orjson.dumps(server.received[0].body["contents"]).decode())
    assert "".join(d.content or "" for d in deltas) == "Echo: a b c d"
    assert len([d for d in deltas if d.content]) == 5
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    assert deltas[-1] == StreamDelta(
        usage=Usage(prompt_tokens=prompt, completion_tokens=4), model="gemini-2.5-flash"
    )
    assert server.received[0].query == {"alt": "sse"}


async def test_fake_tool_round_trip(server: FakeGemini, client: AiohttpUpstream) -> None:
    adapter = live(server, client)
    first = await adapter.complete(req({"role": "user", "content": "Paris"}, tools=(WEATHER_TOOL,)))
    assert first.finish_reason == "tool_calls"
    assert first.tool_calls == [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"query":"Paris"}'},
        }
    ]
    second = await adapter.complete(
        req(
            {"role": "user", "content": "Paris"},
            {"role": "assistant", "content": None, "tool_calls": first.tool_calls},
            {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 21}'},
            tools=(WEATHER_TOOL,),
        )
    )
    assert (second.content, second.finish_reason) == ("Echo: Paris", "stop")
    assert server.received[1].body["contents"][-1] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}],
    }


async def test_fake_stream_tools(server: FakeGemini, client: AiohttpUpstream) -> None:
    deltas = await collect(
        live(server, client), req({"role": "user", "content": "Oslo"}, tools=(WEATHER_TOOL,))
    )
    calls = [c for d in deltas for c in d.tool_calls or []]
    assert calls == [
        {
            "index": 0,
            "id": "call_0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"query":"Oslo"}'},
        }
    ]
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["tool_calls"]


async def test_fake_json_and_length(server: FakeGemini, client: AiohttpUpstream) -> None:
    adapter = live(server, client)
    result = await adapter.complete(req(response_format={"type": "json_object"}))
    assert orjson.loads(result.content or "") == {"answer": "Hi"}
    short = await adapter.complete(req({"role": "user", "content": "x " * 40}, max_tokens=2))
    assert (short.content, short.finish_reason) == ("Echo: x ", "length")


async def test_fake_429_with_retry_after(server: FakeGemini, client: AiohttpUpstream) -> None:
    server.fail_next(Fault("status", status=429, retry_after=2))
    with pytest.raises(UpstreamRateLimited) as info:
        await live(server, client).complete(req())
    assert (info.value.retry_after, info.value.upstream_status) == (2.0, 429)


async def test_fake_503(server: FakeGemini, client: AiohttpUpstream) -> None:
    server.fail_next(Fault("status", status=503))
    with pytest.raises(UpstreamServerError) as info:
        await collect(live(server, client), req())
    assert info.value.upstream_status == 503


@pytest.mark.parametrize("api_key", [None, "wrong", KEY])
async def test_fake_auth_errors(
    server: FakeGemini, client: AiohttpUpstream, api_key: str | None
) -> None:
    if api_key == KEY:
        server.fail_next(Fault("status", status=401))
    adapter = GeminiAdapter(Endpoint("d", server.url, "gemini-2.5-flash", api_key=api_key), client)
    with pytest.raises(UpstreamAuthError):
        await adapter.complete(req())


async def test_fake_cut_stream_is_an_error(server: FakeGemini, client: AiohttpUpstream) -> None:
    server.fail_next(Fault("cut", after_chunks=2))
    seen: list[StreamDelta] = []
    request = req({"role": "user", "content": "a b c"})
    with pytest.raises((UpstreamConnectionError, UpstreamBadResponse)):
        await collect(live(server, client), request, seen)
    assert [d.content for d in seen] == ["Echo:", " a"]


@pytest.mark.parametrize("stream", [False, True])
async def test_fake_malformed(server: FakeGemini, client: AiohttpUpstream, stream: bool) -> None:
    server.fail_next(Fault("malformed"))
    adapter = live(server, client)
    request = req({"role": "user", "content": "a b c"})
    call = collect(adapter, request) if stream else adapter.complete(request)
    with pytest.raises(UpstreamBadResponse):
        await call


async def test_fake_stall_times_out(server: FakeGemini, client: AiohttpUpstream) -> None:
    server.fail_next(Fault("stall", seconds=1.0), Fault("stall", seconds=1.0))
    adapter = live(server, client, timeouts=Timeouts(connect=1.0, read=0.2, idle=0.2))
    with pytest.raises(UpstreamTimeout):
        await adapter.complete(req())
    with pytest.raises(UpstreamTimeout):
        await collect(adapter, req())


async def test_fake_slow_stream_still_completes(
    server: FakeGemini, client: AiohttpUpstream
) -> None:
    server.fail_next(Fault("slow", seconds=0.01))
    deltas = await collect(live(server, client), req({"role": "user", "content": "one two"}))
    assert "".join(d.content or "" for d in deltas) == "Echo: one two"


async def test_fake_without_alt_sse_sends_a_json_array(
    server: FakeGemini, client: AiohttpUpstream
) -> None:
    url = f"{server.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    body = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "a b"}]}]})
    response = await client.post(url, {"x-goog-api-key": KEY}, body, Timeouts())
    chunks = orjson.loads(response.body)
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks] == [
        "Echo:",
        " a",
        " b",
    ]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
