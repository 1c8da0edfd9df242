"""Tests for the chat-completions request parser/validator."""

from __future__ import annotations

import copy
import random
import time
from typing import Any

import orjson
import pytest

from laneway.errors import InvalidRequest, UnsupportedParameter
from laneway.providers._types import ChatRequest
from laneway.server._validate import MAX_MESSAGES, MAX_TOOLS, parse_chat_request

DROP = object()
USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
}


def body(**fields: Any) -> bytes:
    """A valid one-message request with ``fields`` replaced (``DROP`` removes one)."""
    doc: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [USER]}
    for key, value in fields.items():
        if value is DROP:
            doc.pop(key, None)
        else:
            doc[key] = value
    return orjson.dumps(doc)


def msgs(*messages: Any) -> bytes:
    return body(messages=list(messages))


def part(kind: str, **fields: Any) -> bytes:
    return msgs({"role": "user", "content": [{"type": kind, **fields}]})


def tools(*items: Any, **fields: Any) -> bytes:
    return body(tools=list(items), **fields)


def fn_tool(**function: Any) -> dict[str, Any]:
    return {"type": "function", "function": function}


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


IR, UP = InvalidRequest, UnsupportedParameter
M0 = "messages[0]"
# (id, body, exception type, param, fragment of the message)
BAD: list[tuple[str, bytes, type[Exception], str | None, str]] = [
    # -- the body as JSON
    ("utf8", b'{"model": "m\xff", "messages": []}', IR, None, "not valid UTF-8"),
    ("malformed", b'{"model": "m", ', IR, None, "not valid JSON"),
    ("trailing", b'{"model": "m"} x', IR, None, "not valid JSON"),
    ("empty", b"", IR, None, "empty"),
    ("array", b"[1, 2]", IR, None, "must be a JSON object, got an array"),
    ("string", b'"hello"', IR, None, "must be a JSON object, got a string"),
    ("nan", b'{"model": "m", "temperature": NaN}', IR, None, "NaN and Infinity"),
    ("infinity", b'{"model": "m", "temperature": Infinity}', IR, None, "NaN and Infinity"),
    ("-infinity", b'{"model": "m", "temperature": -Infinity}', IR, None, "NaN and Infinity"),
    ("huge-number", b'{"model": "m", "temperature": 1e400}', IR, None, "finite"),
    ("bom", b'\xef\xbb\xbf{"model": "m"}', IR, None, "not valid JSON"),
    ("lone-surrogate", b'{"model": "\\ud800"}', IR, None, "not valid JSON"),
    ("deep-prediction", body(prediction={"content": nested(63)}), IR, None, "deeper than"),
    # -- model
    ("model-missing", body(model=DROP), IR, "model", "required"),
    ("model-null", body(model=None), IR, "model", "required"),
    ("model-int", body(model=5), IR, "model", "expected a string, got an integer"),
    ("model-bool", body(model=True), IR, "model", "got a boolean"),
    ("model-empty", body(model=""), IR, "model", "must not be empty"),
    ("model-long", body(model="m" * 257), IR, "model", "longer than 256"),
    # -- messages
    ("messages-missing", body(messages=DROP), IR, "messages", "required"),
    ("messages-object", body(messages={"role": "user"}), IR, "messages", "an array"),
    ("messages-empty", body(messages=[]), IR, "messages", "must not be empty"),
    ("messages-many", body(messages=[USER] * (MAX_MESSAGES + 1)), IR, "messages", "at most"),
    ("message-not-object", msgs("hi"), IR, M0, "a message object, got a string"),
    ("role-missing", msgs({"content": "hi"}), IR, f"{M0}.role", "required"),
    ("role-int", msgs({"role": 1, "content": "hi"}), IR, f"{M0}.role", "expected a string"),
    ("role-list", msgs({"role": ["user"], "content": "x"}), IR, f"{M0}.role", "a string"),
    ("role-unknown", msgs({"role": "bot", "content": "hi"}), IR, f"{M0}.role", "expected one"),
    (
        "role-function",
        msgs({"role": "function", "name": "f", "content": "1"}),
        IR,
        f"{M0}.role",
        "deprecated",
    ),
    ("message-key", msgs({**USER, "foo": 1}), IR, f"{M0}.foo", "unknown key 'foo'"),
    (
        "message-function-call",
        msgs({"role": "assistant", "content": "x", "function_call": {}}),
        IR,
        f"{M0}.function_call",
        "deprecated",
    ),
    (
        "user-tool-calls",
        msgs({**USER, "tool_calls": [CALL]}),
        IR,
        f"{M0}.tool_calls",
        "not allowed in user",
    ),
    (
        "assistant-tool-call-id",
        msgs({"role": "assistant", "content": "x", "tool_call_id": "c"}),
        IR,
        f"{M0}.tool_call_id",
        "not allowed in assistant messages",
    ),
    ("name-int", msgs({**USER, "name": 5}), IR, f"{M0}.name", "a string"),
    # -- content
    ("user-no-content", msgs({"role": "user"}), IR, f"{M0}.content", "required"),
    (
        "system-null",
        msgs({"role": "system", "content": None}),
        IR,
        f"{M0}.content",
        "required in system",
    ),
    ("content-int", msgs({"role": "user", "content": 5}), IR, f"{M0}.content", "got an integer"),
    ("content-empty-list", msgs({"role": "user", "content": []}), IR, f"{M0}.content", "empty"),
    (
        "part-not-object",
        msgs({"role": "user", "content": ["hi"]}),
        IR,
        f"{M0}.content[0]",
        "a content part object",
    ),
    ("part-type-unknown", part("video"), IR, f"{M0}.content[0].type", "unknown content part"),
    (
        "part-type-missing",
        msgs({"role": "user", "content": [{"text": "hi"}]}),
        IR,
        f"{M0}.content[0].type",
        "expected a string, got null",
    ),
    ("text-not-str", part("text", text=5), IR, f"{M0}.content[0].text", "a string"),
    ("text-missing", part("text"), IR, f"{M0}.content[0].text", "got null"),
    ("text-extra-key", part("text", text="a", x=1), IR, f"{M0}.content[0].x", "unknown key"),
    (
        "image-in-system",
        msgs({"role": "system", "content": [{"type": "image_url", "image_url": "https://x"}]}),
        IR,
        f"{M0}.content[0]",
        "only allowed in user messages",
    ),
    ("image-int", part("image_url", image_url=5), IR, f"{M0}.content[0].image_url", "URL"),
    ("image-no-url", part("image_url", image_url={}), IR, f"{M0}.content[0].image_url.url", "null"),
    (
        "image-url-int",
        part("image_url", image_url={"url": 5}),
        IR,
        f"{M0}.content[0].image_url.url",
        "a string",
    ),
    (
        "image-url-empty",
        part("image_url", image_url=""),
        IR,
        f"{M0}.content[0].image_url.url",
        "empty",
    ),
    (
        "image-detail",
        part("image_url", image_url={"url": "https://x", "detail": "ultra"}),
        IR,
        f"{M0}.content[0].image_url.detail",
        "auto, low, high",
    ),
    (
        "input-audio",
        part("input_audio", input_audio={}),
        UP,
        f"{M0}.content[0].type",
        "input_audio",
    ),
    ("file", part("file", file={"file_id": "f"}), UP, f"{M0}.content[0].type", "'file'"),
    # -- assistant and tool messages
    ("assistant-empty", msgs({"role": "assistant"}), IR, f"{M0}.content", "without 'tool_calls'"),
    (
        "tool-calls-object",
        msgs({"role": "assistant", "tool_calls": CALL}),
        IR,
        f"{M0}.tool_calls",
        "an array of tool calls",
    ),
    (
        "tool-calls-empty",
        msgs({"role": "assistant", "tool_calls": []}),
        IR,
        f"{M0}.tool_calls",
        "empty",
    ),
    (
        "call-no-id",
        msgs({"role": "assistant", "tool_calls": [{k: v for k, v in CALL.items() if k != "id"}]}),
        IR,
        f"{M0}.tool_calls[0].id",
        "got null",
    ),
    (
        "call-type",
        msgs({"role": "assistant", "tool_calls": [{**CALL, "type": "tool"}]}),
        IR,
        f"{M0}.tool_calls[0].type",
        "'function'",
    ),
    (
        "call-extra",
        msgs({"role": "assistant", "tool_calls": [{**CALL, "index": 0}]}),
        IR,
        f"{M0}.tool_calls[0].index",
        "unknown key",
    ),
    (
        "call-name",
        msgs({"role": "assistant", "tool_calls": [{**CALL, "function": {"arguments": "{}"}}]}),
        IR,
        f"{M0}.tool_calls[0].function.name",
        "got null",
    ),
    (
        "call-arguments",
        msgs(
            {
                "role": "assistant",
                "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}],
            }
        ),
        IR,
        f"{M0}.tool_calls[0].function.arguments",
        "expected a string, got an object",
    ),
    (
        "refusal-int",
        msgs({"role": "assistant", "content": "no", "refusal": 5}),
        IR,
        f"{M0}.refusal",
        "a string",
    ),
    (
        "audio-no-id",
        msgs({"role": "assistant", "content": "x", "audio": {}}),
        IR,
        f"{M0}.audio.id",
        "got null",
    ),
    (
        "tool-no-id",
        msgs({"role": "tool", "content": "x"}),
        IR,
        f"{M0}.tool_call_id",
        "got null",
    ),
    (
        "tool-id-int",
        msgs({"role": "tool", "tool_call_id": 5, "content": "x"}),
        IR,
        f"{M0}.tool_call_id",
        "a string",
    ),
    (
        "tool-no-content",
        msgs({"role": "tool", "tool_call_id": "c"}),
        IR,
        f"{M0}.content",
        "required",
    ),
    # -- scalars
    ("stream-str", body(stream="yes"), IR, "stream", "a boolean"),
    ("stream-int", body(stream=1), IR, "stream", "a boolean, got an integer"),
    (
        "stream-options-no-stream",
        body(stream_options={"include_usage": True}),
        IR,
        "stream_options",
        "only allowed",
    ),
    (
        "stream-options-false",
        body(stream=False, stream_options={}),
        IR,
        "stream_options",
        "only allowed",
    ),
    (
        "stream-options-list",
        body(stream=True, stream_options=[]),
        IR,
        "stream_options",
        "an object",
    ),
    (
        "include-usage-str",
        body(stream=True, stream_options={"include_usage": "yes"}),
        IR,
        "stream_options.include_usage",
        "a boolean",
    ),
    (
        "stream-options-key",
        body(stream=True, stream_options={"x": 1}),
        IR,
        "stream_options.x",
        "unknown",
    ),
    ("max-tokens-bool", body(max_tokens=True), IR, "max_tokens", "got a boolean"),
    ("max-tokens-zero", body(max_tokens=0), IR, "max_tokens", "between 1"),
    ("max-tokens-negative", body(max_tokens=-5), IR, "max_tokens", "between 1"),
    ("max-tokens-float", body(max_tokens=1.5), IR, "max_tokens", "an integer, got a number"),
    ("max-tokens-str", body(max_tokens="10"), IR, "max_tokens", "an integer"),
    (
        "max-tokens-u64",
        b'{"model":"m","max_tokens":18446744073709551615}',
        IR,
        "max_tokens",
        "between",
    ),
    ("max-completion-zero", body(max_completion_tokens=0), IR, "max_completion_tokens", "between"),
    (
        "max-completion-bool",
        body(max_completion_tokens=False),
        IR,
        "max_completion_tokens",
        "boolean",
    ),
    (
        "max-tokens-disagree",
        body(max_tokens=10, max_completion_tokens=20),
        IR,
        "max_completion_tokens",
        "disagree",
    ),
    ("temperature-bool", body(temperature=True), IR, "temperature", "a number, got a boolean"),
    ("temperature-high", body(temperature=2.5), IR, "temperature", "between 0 and 2"),
    ("temperature-negative", body(temperature=-0.1), IR, "temperature", "between 0 and 2"),
    ("temperature-str", body(temperature="0.5"), IR, "temperature", "a number"),
    ("top-p-high", body(top_p=1.01), IR, "top_p", "between 0 and 1"),
    ("top-p-bool", body(top_p=False), IR, "top_p", "boolean"),
    ("n-two", body(n=2), UP, "n", "one choice"),
    ("n-zero", body(n=0), IR, "n", "between 1"),
    ("n-bool", body(n=True), IR, "n", "boolean"),
    ("stop-int", body(stop=5), IR, "stop", "a string or an array of strings"),
    ("stop-five", body(stop=["a", "b", "c", "d", "e"]), IR, "stop", "at most 4"),
    ("stop-item-int", body(stop=["a", 1]), IR, "stop[1]", "a string"),
    ("stop-empty", body(stop=""), IR, "stop", "empty"),
    ("seed-float", body(seed=1.5), IR, "seed", "an integer"),
    ("seed-bool", body(seed=True), IR, "seed", "boolean"),
    ("user-int", body(user=5), IR, "user", "a string"),
    ("presence-high", body(presence_penalty=2.1), IR, "presence_penalty", "between -2 and 2"),
    ("frequency-low", body(frequency_penalty=-3), IR, "frequency_penalty", "between -2 and 2"),
    ("frequency-bool", body(frequency_penalty=True), IR, "frequency_penalty", "boolean"),
    ("logprobs-int", body(logprobs=1), IR, "logprobs", "a boolean"),
    (
        "top-logprobs-high",
        body(logprobs=True, top_logprobs=21),
        IR,
        "top_logprobs",
        "between 0 and 20",
    ),
    ("top-logprobs-bool", body(logprobs=True, top_logprobs=True), IR, "top_logprobs", "boolean"),
    ("top-logprobs-alone", body(top_logprobs=3), IR, "top_logprobs", "requires 'logprobs'"),
    ("logit-bias-list", body(logit_bias=[1]), IR, "logit_bias", "an object"),
    ("logit-bias-str", body(logit_bias={"50256": "x"}), IR, "logit_bias.50256", "a number"),
    ("logit-bias-bool", body(logit_bias={"1": True}), IR, "logit_bias.1", "boolean"),
    ("logit-bias-range", body(logit_bias={"1": 101}), IR, "logit_bias.1", "between -100 and 100"),
    # -- tools and tool_choice
    ("tools-object", body(tools=TOOL), IR, "tools", "an array of tools"),
    (
        "tools-many",
        tools(*[fn_tool(name=f"t{i}") for i in range(MAX_TOOLS + 1)]),
        IR,
        "tools",
        "at most 128",
    ),
    ("tool-not-object", tools("f"), IR, "tools[0]", "an object"),
    ("tool-type", tools({**TOOL, "type": "code"}), IR, "tools[0].type", "'function'"),
    ("tool-extra", tools({**TOOL, "x": 1}), IR, "tools[0].x", "unknown key"),
    ("tool-no-function", tools({"type": "function"}), IR, "tools[0].function", "an object"),
    ("tool-no-name", tools(fn_tool(description="d")), IR, "tools[0].function.name", "got null"),
    (
        "tool-name-space",
        tools(fn_tool(name="get weather")),
        IR,
        "tools[0].function.name",
        "must match",
    ),
    ("tool-name-long", tools(fn_tool(name="a" * 65)), IR, "tools[0].function.name", "must match"),
    (
        "tool-name-unicode",
        tools(fn_tool(name="wétter")),
        IR,
        "tools[0].function.name",
        "must match",
    ),
    ("tool-name-empty", tools(fn_tool(name="")), IR, "tools[0].function.name", "empty"),
    ("tool-name-dup", tools(TOOL, TOOL), IR, "tools[1].function.name", "duplicate"),
    (
        "tool-description",
        tools(fn_tool(name="f", description=5)),
        IR,
        "tools[0].function.description",
        "string",
    ),
    (
        "tool-parameters",
        tools(fn_tool(name="f", parameters="{}")),
        IR,
        "tools[0].function.parameters",
        "object",
    ),
    (
        "tool-strict",
        tools(fn_tool(name="f", strict="yes")),
        IR,
        "tools[0].function.strict",
        "boolean",
    ),
    ("tool-function-extra", tools(fn_tool(name="f", x=1)), IR, "tools[0].function.x", "unknown"),
    ("tool-choice-word", tools(TOOL, tool_choice="always"), IR, "tool_choice", "'none', 'auto'"),
    ("tool-choice-int", tools(TOOL, tool_choice=1), IR, "tool_choice", "an object"),
    (
        "tool-choice-no-tools",
        body(tool_choice="auto"),
        IR,
        "tool_choice",
        "only allowed when 'tools'",
    ),
    (
        "tool-choice-undeclared",
        tools(TOOL, tool_choice={"type": "function", "function": {"name": "other"}}),
        IR,
        "tool_choice.function.name",
        "not one of the declared tools",
    ),
    (
        "tool-choice-no-function",
        tools(TOOL, tool_choice={"type": "function"}),
        IR,
        "tool_choice.function",
        "an object",
    ),
    ("parallel-str", tools(TOOL, parallel_tool_calls="yes"), IR, "parallel_tool_calls", "boolean"),
    (
        "parallel-no-tools",
        body(parallel_tool_calls=True),
        IR,
        "parallel_tool_calls",
        "only allowed",
    ),
    # -- response_format
    ("rf-str", body(response_format="json"), IR, "response_format", "an object"),
    ("rf-type", body(response_format={"type": "xml"}), IR, "response_format.type", "'json_schema'"),
    (
        "rf-text-extra",
        body(response_format={"type": "text", "x": 1}),
        IR,
        "response_format.x",
        "unknown",
    ),
    (
        "rf-schema-missing",
        body(response_format={"type": "json_schema"}),
        IR,
        "response_format.json_schema",
        "an object",
    ),
    (
        "rf-schema-name",
        body(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        IR,
        "response_format.json_schema.name",
        "got null",
    ),
    (
        "rf-schema-schema",
        body(response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": []}}),
        IR,
        "response_format.json_schema.schema",
        "an object, got an array",
    ),
    (
        "rf-schema-strict",
        body(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": {}, "strict": 1},
            }
        ),
        IR,
        "response_format.json_schema.strict",
        "boolean",
    ),
    # -- OpenAI-only options
    ("metadata-value", body(metadata={"k": 1}), IR, "metadata.k", "a string"),
    ("metadata-list", body(metadata=["k"]), IR, "metadata", "an object"),
    ("store-str", body(store="yes"), IR, "store", "boolean"),
    ("reasoning-int", body(reasoning_effort=1), IR, "reasoning_effort", "a string"),
    ("service-tier-int", body(service_tier=1), IR, "service_tier", "a string"),
    ("modalities-str", body(modalities="text"), IR, "modalities", "an array of strings"),
    ("modalities-item", body(modalities=["text", 1]), IR, "modalities[1]", "a string"),
    ("prediction-str", body(prediction="x"), IR, "prediction", "an object"),
    # -- unknown and deprecated top-level keys
    ("unknown-key", body(foo=1), IR, "foo", "unknown parameter 'foo'"),
    ("unknown-null", body(foo=None), IR, "foo", "unknown parameter 'foo'"),
    ("functions", body(functions=[]), IR, "functions", "deprecated"),
    ("function-call", body(function_call="auto"), IR, "function_call", "deprecated"),
    ("audio", body(audio={"voice": "x"}), UP, "audio", "not supported"),
]

UPSTREAM_KEYS = [
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "organization",
    "headers",
    "extra_headers",
    "custom_llm_provider",
    "url",
    "endpoint",
    "proxy",
]


@pytest.mark.parametrize(
    ("raw", "exc_type", "param", "fragment"),
    [pytest.param(raw, exc, param, frag, id=name) for name, raw, exc, param, frag in BAD],
)
def test_bad_request_is_rejected(
    raw: bytes, exc_type: type[Exception], param: str | None, fragment: str
) -> None:
    with pytest.raises(exc_type) as info:
        parse_chat_request(raw)
    error = info.value
    assert isinstance(error, InvalidRequest)
    assert error.param == param
    assert fragment in error.message
    assert error.status == 400
    if exc_type is InvalidRequest:
        assert not isinstance(error, UnsupportedParameter)


def test_bad_cases_have_unique_ids() -> None:
    names = [name for name, *_ in BAD]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("key", UPSTREAM_KEYS)
@pytest.mark.parametrize("value", ["https://evil.example/v1", None, {"x": "y"}])
def test_client_controlled_upstream_fields_are_rejected(key: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(body(**{key: value}))
    assert info.value.param == key
    assert f"unknown parameter '{key}'" in info.value.message
    assert "gateway's config only" in info.value.message


def test_minimal_request_defaults() -> None:
    request = parse_chat_request(body())
    assert request == ChatRequest(
        model="gpt-4o-mini", messages=({"role": "user", "content": "hi"},)
    )
    assert request.options == {}


def test_developer_role_becomes_system() -> None:
    request = parse_chat_request(
        msgs({"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"})
    )
    assert [m["role"] for m in request.messages] == ["system", "user"]


def test_stop_string_becomes_tuple() -> None:
    assert parse_chat_request(body(stop="END")).stop == ("END",)
    assert parse_chat_request(body(stop=["a", "b"])).stop == ("a", "b")
    assert parse_chat_request(body(stop=[])).stop == ()


def test_max_completion_tokens_merges_into_max_tokens() -> None:
    assert parse_chat_request(body(max_completion_tokens=77)).max_tokens == 77
    assert parse_chat_request(body(max_tokens=77, max_completion_tokens=77)).max_tokens == 77
    assert parse_chat_request(body(max_tokens=5)).max_tokens == 5


def test_image_url_string_is_normalised() -> None:
    request = parse_chat_request(
        msgs(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": "data:image/png;base64,AAAA"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                ],
            }
        )
    )
    content = request.messages[0]["content"]
    assert isinstance(content, list)
    assert content[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert content[2]["image_url"] == {"url": "https://x/y.png", "detail": "low"}
    assert request.has_images


def test_response_format_normalisation() -> None:
    assert parse_chat_request(body(response_format={"type": "text"})).response_format is None
    json_object = parse_chat_request(body(response_format={"type": "json_object"}))
    assert json_object.response_format == {"type": "json_object"}
    assert json_object.json_schema is None
    spec = {"name": "answer", "schema": {"type": "object"}, "strict": True, "description": "d"}
    request = parse_chat_request(body(response_format={"type": "json_schema", "json_schema": spec}))
    assert request.json_schema == spec


def test_openai_only_parameters_go_to_options() -> None:
    options = {
        "presence_penalty": 0.5,
        "frequency_penalty": -1,
        "logprobs": True,
        "top_logprobs": 5,
        "logit_bias": {"50256": -100},
        "metadata": {"team": "search"},
        "store": False,
        "reasoning_effort": "low",
        "service_tier": "flex",
        "modalities": ["text"],
        "prediction": {"type": "content", "content": "draft"},
    }
    request = parse_chat_request(body(**options))
    assert request.options == options
    assert request.options["frequency_penalty"] == -1.0
    assert request.temperature is None


def test_all_core_fields() -> None:
    request = parse_chat_request(
        tools(
            TOOL,
            fn_tool(name="lookup-2", description="find", strict=True, parameters={}),
            stream=True,
            stream_options={"include_usage": True},
            temperature=1,
            top_p=0.5,
            seed=-3,
            user="u-1",
            n=1,
            tool_choice={"type": "function", "function": {"name": "lookup-2"}},
            parallel_tool_calls=False,
        )
    )
    assert request.stream is True
    assert request.include_usage is True
    assert request.temperature == 1.0
    assert isinstance(request.temperature, float)
    assert (request.top_p, request.seed, request.user) == (0.5, -3, "u-1")
    assert [t["function"]["name"] for t in request.tools] == ["get_weather", "lookup-2"]
    assert request.tool_choice == {"type": "function", "function": {"name": "lookup-2"}}
    assert request.parallel_tool_calls is False
    assert request.options == {}


def test_tool_conversation_round_trip() -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "use tools"}], "name": "sys"},
        {"role": "user", "content": "weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
        {"role": "assistant", "content": "3 degrees", "refusal": None, "audio": {"id": "a1"}},
    ]
    request = parse_chat_request(body(messages=copy.deepcopy(messages), tools=[TOOL]))
    assert list(request.messages) == messages


def test_null_means_not_given() -> None:
    request = parse_chat_request(
        body(temperature=None, stop=None, stream_options=None, tools=None, tool_choice=None)
    )
    assert request.temperature is None
    assert request.stop == ()
    assert request.tools == ()


def test_duplicate_keys_last_wins() -> None:
    raw = b'{"model": "a", "model": "b", "messages": [{"role": "user", "content": "hi"}]}'
    assert parse_chat_request(raw).model == "b"


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = "[" * 5000 + "{" * 5000
    request = parse_chat_request(msgs({"role": "user", "content": text}))
    assert request.messages[0]["content"] == text


def _deep_tool(levels: int) -> bytes:
    # body > tools > tool > function > parameters > "x" list > … : 5 + levels deep
    return tools(fn_tool(name="f", parameters={"x": nested(levels)}))


def test_depth_limit_boundary_in_tool_parameters() -> None:
    assert parse_chat_request(_deep_tool(59)).tools  # 64 levels: allowed
    with pytest.raises(InvalidRequest, match="deeper than the limit of 64"):
        parse_chat_request(_deep_tool(60))
    assert parse_chat_request(_deep_tool(60), max_depth=65).tools


def test_depth_limit_in_json_schema() -> None:
    spec = {"name": "a", "schema": {"x": nested(61)}}  # schema at level 4, lists 5..65
    raw = body(response_format={"type": "json_schema", "json_schema": spec})
    with pytest.raises(InvalidRequest, match="deeper than"):
        parse_chat_request(raw)
    assert parse_chat_request(raw, max_depth=65).json_schema is not None


def test_small_max_depth_checks_the_whole_body() -> None:
    raw = msgs({"role": "user", "content": [{"type": "text", "text": "hi"}]})  # 5 levels
    assert parse_chat_request(raw, max_depth=5).messages
    with pytest.raises(InvalidRequest, match="limit of 4 levels"):
        parse_chat_request(raw, max_depth=4)


@pytest.mark.parametrize("where", ["top", "prediction", "content"])
def test_nesting_bomb_is_rejected_fast(where: str) -> None:
    levels = 100_000
    bomb = b"[" * levels + b"]" * levels
    raw = {
        "top": bomb,
        "prediction": b'{"model": "m", "messages": [], "prediction": ' + bomb + b"}",
        "content": b'{"model": "m", "messages": [{"role": "user", "content": ' + bomb + b"}]}",
    }[where]
    started = time.process_time()  # CPU time: the work, not the other processes' turns
    with pytest.raises(InvalidRequest, match="deeper than the limit of 64") as info:
        parse_chat_request(raw)
    assert time.process_time() - started < 0.5
    assert info.value.param is None


def test_four_mib_body_parses() -> None:
    text = "lorem ipsum dolor sit amet [x] {y} " * (4 * 1024 * 1024 // 35)
    raw = msgs({"role": "system", "content": "s"}, {"role": "user", "content": text})
    assert len(raw) >= 4 * 1024 * 1024
    started = time.process_time()  # CPU time: the work, not the other processes' turns
    request = parse_chat_request(raw)
    assert time.process_time() - started < 1.0
    assert request.messages[1]["content"] == text


def test_many_messages_at_the_limit() -> None:
    request = parse_chat_request(body(messages=[USER] * MAX_MESSAGES))
    assert len(request.messages) == MAX_MESSAGES


# -- fuzzing: random mutations of a valid body ----------------------------------------

RICH: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "developer", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "high"}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "3C"},
    ],
    "tools": [
        fn_tool(
            name="get_weather",
            description="d",
            parameters={"type": "object", "properties": {"city": {"type": "string"}}},
        )
    ],
    "tool_choice": "auto",
    "stream": True,
    "stream_options": {"include_usage": True},
    "max_tokens": 100,
    "temperature": 0.7,
    "stop": ["\n\n"],
    "logprobs": True,
    "top_logprobs": 2,
    "logit_bias": {"1": 5},
    "metadata": {"k": "v"},
    "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}},
}
VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 2, 21, 300, 2**63, 0.5, -2.5, 1e300, "", "x", "auto",
    "function", "developer", "tool", "text", "image_url", "input_audio", "json_schema",
    [], [1], ["a"], {}, {"type": "text"}, {"type": "function"}, {"url": "u"}, nested(70),
]  # fmt: skip
KEYS = [*RICH, "n", "seed", "user", "top_p", "api_key", "foo", "role", "content", "type", "name"]


def _nodes(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) slot in the document."""
    slots: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            slots.append((node, key))
            if isinstance(child, dict | list):
                stack.append(child)
    return slots


def _mutate_tree(rng: random.Random) -> bytes:
    doc = copy.deepcopy(RICH)
    for _ in range(rng.randint(1, 3)):
        container, key = rng.choice(_nodes(doc))
        action = rng.random()
        if action < 0.6:
            container[key] = copy.deepcopy(rng.choice(VALUES))
        elif action < 0.8:
            del container[key]
        elif isinstance(container, dict):
            container[rng.choice(KEYS)] = copy.deepcopy(rng.choice(VALUES))
        else:
            container.append(copy.deepcopy(rng.choice(VALUES)))
    return orjson.dumps(doc)


def _mutate_bytes(rng: random.Random) -> bytes:
    raw = bytearray(orjson.dumps(RICH))
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(raw))
        action = rng.random()
        if action < 0.4:
            raw[at] = rng.randrange(256)
        elif action < 0.7:
            raw.insert(at, rng.choice(b'[]{}",:0-.eE\\ntfu\xff'))
        elif action < 0.9:
            del raw[at]
        else:
            del raw[at:]
            if not raw:
                break
    return bytes(raw)


def test_fuzz_only_chat_request_or_invalid_request() -> None:
    rng = random.Random(0)
    errors: list[InvalidRequest] = []
    ok = 0
    for i in range(4000):
        raw = _mutate_tree(rng) if i % 2 == 0 else _mutate_bytes(rng)
        try:
            request = parse_chat_request(raw)
        except InvalidRequest as exc:
            errors.append(exc)
            continue
        assert isinstance(request, ChatRequest)
        assert request.messages
        assert all(m["role"] in {"system", "user", "assistant", "tool"} for m in request.messages)
        assert isinstance(request.stop, tuple)
        ok += 1
    assert all(error.message and error.status == 400 for error in errors)
    assert all(error.param is None or isinstance(error.param, str) for error in errors)
    # the mutations are neither all harmless nor all fatal
    print(f"fuzz: {ok} accepted, {len(errors)} rejected")
    assert ok > 150
    assert len(errors) > 2000


def test_deprecated_function_fields_sent_as_null_are_ignored() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "functions": None,
        "function_call": None,
    }
    request = parse_chat_request(orjson.dumps(body))
    assert request.tools == ()
    body["functions"] = [{"name": "f"}]
    with pytest.raises(InvalidRequest, match="deprecated"):
        parse_chat_request(orjson.dumps(body))
