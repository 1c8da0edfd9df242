"""Parse and validate the body of ``POST /v1/chat/completions`` into a :class:`ChatRequest`.

Every bad input raises :class:`~laneway.errors.InvalidRequest` (or its subclass
:class:`~laneway.errors.UnsupportedParameter`) with a message that says what was
expected and ``param`` set to the offending field path (``messages[2].role``,
``tools[0].function.name``). Nothing is silently dropped: unknown keys are
rejected, and so are the client-controlled upstream fields (``api_base``,
``api_key`` …) that some gateways honour. An explicit ``null`` for an optional
parameter means "not given". Booleans are never accepted as numbers.

Normalisation: ``developer`` → ``system``; ``stop`` → tuple; ``max_completion_tokens``
→ ``max_tokens``; ``image_url: "https://…"`` → ``{"url": "https://…"}``;
``response_format: {"type": "text"}`` → ``None``; OpenAI-only parameters go to
``options``. Message dicts are the freshly parsed ones, normalised in place.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from types import MappingProxyType
from typing import Any

from laneway.errors import InvalidRequest, UnsupportedParameter
from laneway.governance import ClientSchema
from laneway.providers import ChatRequest, Message, Tool
from laneway.server._jsonlimits import (
    check_depth,
    expect_bool,
    expect_int,
    expect_name,
    expect_nonempty_str,
    expect_number,
    expect_number_map,
    expect_object,
    expect_str,
    expect_str_list,
    expect_str_map,
    load_object,
    only_keys,
    type_error,
)

__all__ = ["MAX_MESSAGES", "MAX_TOOLS", "parse_chat_request"]

MAX_MESSAGES = 10_000
MAX_TOOLS = 128
_MAX_MODEL_CHARS = 256
_MAX_STOP = 4
_FIXED_DEPTH = 6  # body > messages > message > content > part > image_url
_INT64 = 2**63
_MAX_TOKENS = 2**31 - 1

_MESSAGE_KEYS = frozenset(
    {"role", "name", "content", "tool_calls", "tool_call_id", "refusal", "audio"}
)
# Fields some gateways let a client set to pick the upstream: never honoured here.
_UPSTREAM_KEYS = frozenset({
    "api_base", "base_url", "api_key", "api_version", "organization", "headers",
    "extra_headers", "custom_llm_provider", "url", "endpoint", "proxy",
})  # fmt: skip
_UNSUPPORTED_KEYS = frozenset({"audio", "web_search_options"})
# OpenAI-only parameters: kept in ChatRequest.options; other adapters reject them.
_OPTIONS = frozenset({
    "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias",
    "metadata", "store", "reasoning_effort", "service_tier", "modalities", "prediction",
    "verbosity", "prompt_cache_key", "safety_identifier",
})  # fmt: skip
_DETAILS = frozenset({"auto", "low", "high"})
_TOOL_CHOICES = frozenset({"none", "auto", "required"})


def parse_chat_request(body: bytes, *, max_depth: int = 64) -> ChatRequest:
    """Parse and validate an OpenAI chat-completions request body."""
    doc = load_object(body, max_depth)
    # Cheap, exact bound: a body with at most max_depth opening brackets cannot nest
    # deeper. Otherwise only the free-form values (tool parameters, JSON schema,
    # prediction) can: everything else has a fixed shape of at most _FIXED_DEPTH levels.
    deep = max_depth < 1024 and body.count(b"[") + body.count(b"{") > max_depth
    if deep and max_depth < _FIXED_DEPTH:
        check_depth(doc, max_depth)
    checks = _CHECKS
    values: dict[str, Any] = {}
    for key, value in doc.items():
        check = checks.get(key)
        if check is None:
            if value is None and key in _NULL_TOLERATED:
                continue  # some SDKs send the deprecated fields as explicit nulls
            raise _unknown_parameter(key)
        if value is not None:
            values[key] = check(value, key)
    request = _build(values)
    if deep:
        _check_free_form_depth(request, max_depth)
    if request.tools or request.response_format is not None:
        _check_schemas(request)
    return request


def _check_schemas(request: ChatRequest) -> None:
    """Every client JSON schema is compiled (and so checked: local references only, valid
    against its metaschema, linear-time patterns) before any upstream call."""
    for i, tool in enumerate(request.tools):
        parameters = tool["function"].get("parameters")
        if parameters is not None:
            ClientSchema.check_schema(parameters, f"tools[{i}].function.parameters")
    schema = request.json_schema
    if schema is not None:
        ClientSchema.compile(schema["schema"], "response_format.json_schema.schema")


def _check_free_form_depth(request: ChatRequest, max_depth: int) -> None:
    for tool in request.tools:  # body > tools > tool > function > parameters
        parameters = tool["function"].get("parameters")
        if parameters is not None:
            check_depth(parameters, max_depth, start=5)
    schema = request.json_schema  # body > response_format > json_schema > schema
    if schema is not None:
        check_depth(schema["schema"], max_depth, start=4)
    prediction = request.options.get("prediction")  # body > prediction
    if prediction is not None:
        check_depth(prediction, max_depth, start=2)


def _build(values: dict[str, Any]) -> ChatRequest:
    model = values.get("model")
    if model is None:
        raise InvalidRequest("'model' is required", param="model")
    messages = values.get("messages")
    if messages is None:
        raise InvalidRequest("'messages' is required", param="messages")
    stream = values.get("stream", False)
    include_usage = values.get("stream_options", False)
    if "stream_options" in values and not stream:
        raise InvalidRequest(
            "'stream_options' is only allowed when 'stream' is true", param="stream_options"
        )
    max_tokens = values.get("max_tokens")
    completion = values.get("max_completion_tokens")
    if completion is not None:
        if max_tokens is not None and max_tokens != completion:
            raise InvalidRequest(
                f"'max_tokens' ({max_tokens}) and 'max_completion_tokens' ({completion}) "
                "disagree; send only one",
                param="max_completion_tokens",
            )
        max_tokens = completion
    if "top_logprobs" in values and values.get("logprobs") is not True:
        raise InvalidRequest("'top_logprobs' requires 'logprobs': true", param="top_logprobs")
    tools: tuple[Tool, ...] = values.get("tools", ())
    _check_tool_use(values, tools)
    options = {key: value for key, value in values.items() if key in _OPTIONS}
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens,
        temperature=values.get("temperature"),
        top_p=values.get("top_p"),
        stop=values.get("stop", ()),
        seed=values.get("seed"),
        user=values.get("user"),
        tools=tools,
        tool_choice=values.get("tool_choice"),
        parallel_tool_calls=values.get("parallel_tool_calls"),
        response_format=values.get("response_format"),
        options=options,
    )


_NULL_TOLERATED = frozenset({"functions", "function_call"})


def _unknown_parameter(key: str) -> InvalidRequest:
    if key in _UPSTREAM_KEYS:
        return InvalidRequest(
            f"unknown parameter '{key}': upstream URLs, keys and headers are set by the "
            "gateway's config only and cannot be chosen by a request",
            param=key,
        )
    if key in ("functions", "function_call"):
        return InvalidRequest(
            f"'{key}' is deprecated and not supported; use 'tools' and 'tool_choice'", param=key
        )
    if key in _UNSUPPORTED_KEYS:
        return UnsupportedParameter(f"'{key}' is not supported by this gateway", param=key)
    return InvalidRequest(f"unknown parameter '{key}'", param=key)


# -- scalar parameters --------------------------------------------------------------


def _model(value: Any, param: str) -> str:
    model = expect_nonempty_str(value, param)
    if len(model) > _MAX_MODEL_CHARS:
        raise InvalidRequest(f"'model' is longer than {_MAX_MODEL_CHARS} characters", param=param)
    return model


_MAX_USER_CHARS = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _user(value: Any, param: str) -> str:
    """An end-user id: a short single-line string (it is forwarded upstream and shows in
    logs and the audit, so NUL and line breaks are refused rather than passed on)."""
    user = expect_str(value, param)
    if len(user) > _MAX_USER_CHARS:
        raise InvalidRequest(f"'user' is longer than {_MAX_USER_CHARS} characters", param=param)
    if _CONTROL.search(user) is not None:
        raise InvalidRequest(
            "'user' must not contain control characters (NUL, tab, CR, LF…)", param=param
        )
    return user


def _stream_options(value: Any, param: str) -> bool:
    only_keys(expect_object(value, param), _STREAM_OPTION_KEYS, param)
    include = value.get("include_usage", False)
    return expect_bool(include, f"{param}.include_usage") if include is not None else False


def _max_tokens(value: Any, param: str) -> int:
    return expect_int(value, param, 1, _MAX_TOKENS)


def _n(value: Any, param: str) -> int:
    n = expect_int(value, param, 1, _INT64 - 1)
    if n != 1:
        raise UnsupportedParameter(
            "'n' > 1 is not supported: this gateway returns one choice per request; "
            "send several requests instead",
            param=param,
        )
    return n


def _stop(value: Any, param: str) -> tuple[str, ...]:
    if type(value) is str:
        return (expect_nonempty_str(value, param),)
    if type(value) is not list:
        raise type_error(param, "a string or an array of strings", value)
    if len(value) > _MAX_STOP:
        raise InvalidRequest(f"'stop' may hold at most {_MAX_STOP} sequences", param=param)
    return tuple(expect_nonempty_str(stop, f"{param}[{i}]") for i, stop in enumerate(value))


_STREAM_OPTION_KEYS = frozenset({"include_usage"})


# -- messages -----------------------------------------------------------------------


def _messages(value: Any, param: str) -> tuple[Message, ...]:
    if type(value) is not list:
        raise type_error(param, "an array of messages", value)
    if not value:
        raise InvalidRequest("'messages' must not be empty", param=param)
    if len(value) > MAX_MESSAGES:
        raise InvalidRequest(f"'messages' may hold at most {MAX_MESSAGES} items", param=param)
    for i, message in enumerate(value):
        _message(message, f"messages[{i}]")
    return tuple(value)


def _message(message: Any, where: str) -> None:
    if type(message) is not dict:
        raise type_error(where, "a message object", message)
    role = message.get("role")
    if type(role) is not str or role not in _ROLE_KEYS:
        raise _bad_role(role, f"{where}.role")
    allowed = _ROLE_KEYS[role]
    if not allowed.issuperset(message):
        raise _bad_message_key(message, allowed, role, where)
    if role == "developer":
        message["role"] = role = "system"
    name = message.get("name")
    if name is not None:
        expect_nonempty_str(name, f"{where}.name")
    if role == "assistant":
        _assistant(message, where)
        return
    if role == "tool":
        expect_nonempty_str(message.get("tool_call_id"), f"{where}.tool_call_id")
    content = message.get("content")
    if type(content) is not str:
        if content is None:
            raise InvalidRequest(
                f"'{where}.content' is required in {role} messages", param=f"{where}.content"
            )
        _content(content, f"{where}.content", images=role == "user")


def _bad_role(role: Any, param: str) -> InvalidRequest:
    if role is None:
        return InvalidRequest(f"'{param}' is required", param=param)
    if type(role) is not str:
        return type_error(param, "a string", role)
    if role == "function":
        return InvalidRequest(
            "the 'function' role is deprecated and not supported; use 'tools' with "
            "'tool' role messages",
            param=param,
        )
    return InvalidRequest(
        f"invalid '{param}' {role[:40]!r}: expected one of system, developer, user, "
        "assistant, tool",
        param=param,
    )


def _bad_message_key(
    message: dict[str, Any], allowed: frozenset[str], role: str, where: str
) -> InvalidRequest:
    key = min(k for k in message if k not in allowed)
    param = f"{where}.{key}"
    if key == "function_call":
        return InvalidRequest(
            "'function_call' is deprecated and not supported; use 'tool_calls'", param=param
        )
    if key in _MESSAGE_KEYS:
        return InvalidRequest(f"'{key}' is not allowed in {role} messages", param=param)
    return InvalidRequest(
        f"unknown key '{key}' in '{where}' (allowed in {role} messages: "
        f"{', '.join(sorted(allowed))})",
        param=param,
    )


def _assistant(message: dict[str, Any], where: str) -> None:
    calls = message.get("tool_calls")
    if calls is not None:
        _tool_calls(calls, f"{where}.tool_calls")
    content = message.get("content")
    if content is not None:
        _content(content, f"{where}.content", images=False)
    elif calls is None:
        raise InvalidRequest(
            f"'{where}.content' is required in assistant messages without 'tool_calls'",
            param=f"{where}.content",
        )
    refusal = message.get("refusal")
    if refusal is not None:
        expect_str(refusal, f"{where}.refusal")
    audio = message.get("audio")
    if audio is not None:
        only_keys(expect_object(audio, f"{where}.audio"), _AUDIO_KEYS, f"{where}.audio")
        expect_nonempty_str(audio.get("id"), f"{where}.audio.id")


def _content(content: Any, where: str, *, images: bool) -> None:
    if type(content) is str:
        return
    if type(content) is not list:
        raise type_error(where, "a string or an array of content parts", content)
    if not content:
        raise InvalidRequest(f"'{where}' must not be an empty array", param=where)
    for j, part in enumerate(content):
        _part(part, f"{where}[{j}]", images=images)


def _part(part: Any, where: str, *, images: bool) -> None:
    if type(part) is not dict:
        raise type_error(where, "a content part object", part)
    kind = part.get("type")
    if kind == "text":
        only_keys(part, _TEXT_KEYS, where)
        expect_str(part.get("text"), f"{where}.text")
    elif kind == "image_url":
        if not images:
            raise InvalidRequest("image parts are only allowed in user messages", param=where)
        only_keys(part, _IMAGE_KEYS, where)
        part["image_url"] = _image_url(part.get("image_url"), f"{where}.image_url")
    elif kind in ("input_audio", "file"):
        raise UnsupportedParameter(
            f"content parts of type '{kind}' are not supported by this gateway",
            param=f"{where}.type",
        )
    elif type(kind) is not str:
        raise type_error(f"{where}.type", "a string", kind)
    else:
        raise InvalidRequest(
            f"unknown content part type {kind[:40]!r}: expected 'text' or 'image_url'",
            param=f"{where}.type",
        )


def _image_url(value: Any, where: str) -> dict[str, Any]:
    image: dict[str, Any]
    if type(value) is str:
        image = {"url": value}
    elif type(value) is dict:
        image = value
        only_keys(image, _IMAGE_URL_KEYS, where)
        detail = image.get("detail")
        if detail is not None and (type(detail) is not str or detail not in _DETAILS):
            raise InvalidRequest(
                f"'{where}.detail' must be one of auto, low, high", param=f"{where}.detail"
            )
    else:
        raise type_error(where, "an object or a URL string", value)
    url = expect_nonempty_str(image.get("url"), f"{where}.url")
    if not url[:8].lower().startswith(_IMAGE_SCHEMES):
        # never file:// and the like: a self-hosted server may read it from its own disk
        raise InvalidRequest(
            f"'{where}.url' must be an http(s) URL or a data: URL", param=f"{where}.url"
        )
    return image


_IMAGE_SCHEMES = ("http://", "https://", "data:")


def _tool_calls(value: Any, where: str) -> None:
    if type(value) is not list:
        raise type_error(where, "an array of tool calls", value)
    if not value:
        raise InvalidRequest(f"'{where}' must not be an empty array", param=where)
    for k, call in enumerate(value):
        at = f"{where}[{k}]"
        only_keys(expect_object(call, at), _CALL_KEYS, at)
        expect_nonempty_str(call.get("id"), f"{at}.id")
        _function_type(call.get("type"), f"{at}.type")
        function = call.get("function")
        only_keys(expect_object(function, f"{at}.function"), _CALL_FUNCTION_KEYS, f"{at}.function")
        expect_nonempty_str(function.get("name"), f"{at}.function.name")
        expect_str(function.get("arguments"), f"{at}.function.arguments")


def _function_type(value: Any, param: str) -> None:
    if value != "function" or type(value) is not str:
        raise InvalidRequest(f"'{param}' must be 'function'", param=param)


# -- tools, tool_choice, response_format ---------------------------------------------


def _tools(value: Any, param: str) -> tuple[Tool, ...]:
    if type(value) is not list:
        raise type_error(param, "an array of tools", value)
    if len(value) > MAX_TOOLS:
        raise InvalidRequest(f"'tools' may hold at most {MAX_TOOLS} tools", param=param)
    seen: set[str] = set()
    for i, tool in enumerate(value):
        at = f"{param}[{i}]"
        only_keys(expect_object(tool, at), _TOOL_KEYS, at)
        _function_type(tool.get("type"), f"{at}.type")
        function = tool.get("function")
        only_keys(expect_object(function, f"{at}.function"), _FUNCTION_KEYS, f"{at}.function")
        name = expect_name(function.get("name"), f"{at}.function.name")
        if name in seen:
            raise InvalidRequest(
                f"duplicate tool name {name!r}: tool names must be unique",
                param=f"{at}.function.name",
            )
        seen.add(name)
        for key, check in _FUNCTION_FIELDS:
            if function.get(key) is not None:
                check(function[key], f"{at}.function.{key}")
    return tuple(value)


def _tool_choice(value: Any, param: str) -> str | dict[str, Any]:
    if type(value) is str:
        if value not in _TOOL_CHOICES:
            raise InvalidRequest(
                "'tool_choice' must be 'none', 'auto', 'required' or a function object",
                param=param,
            )
        return value
    choice = expect_object(value, param)
    only_keys(choice, _TOOL_KEYS, param)
    _function_type(choice.get("type"), f"{param}.type")
    function = expect_object(choice.get("function"), f"{param}.function")
    only_keys(function, _NAME_KEY, f"{param}.function")
    expect_nonempty_str(function.get("name"), f"{param}.function.name")
    return choice


def _check_tool_use(values: dict[str, Any], tools: tuple[Tool, ...]) -> None:
    for key in ("tool_choice", "parallel_tool_calls"):
        if key in values and not tools:
            raise InvalidRequest(f"'{key}' is only allowed when 'tools' are given", param=key)
    choice = values.get("tool_choice")
    if type(choice) is dict:
        name = choice["function"]["name"]
        if all(tool["function"]["name"] != name for tool in tools):
            raise InvalidRequest(
                f"'tool_choice' names {name[:80]!r}, which is not one of the declared tools",
                param="tool_choice.function.name",
            )


def _response_format(value: Any, param: str) -> dict[str, Any] | None:
    rf = expect_object(value, param)
    kind = rf.get("type")
    if kind == "text" or kind == "json_object":
        only_keys(rf, _TYPE_KEY, param)
        return None if kind == "text" else rf
    if kind != "json_schema":
        raise InvalidRequest(
            f"'{param}.type' must be 'text', 'json_object' or 'json_schema'",
            param=f"{param}.type",
        )
    only_keys(rf, _JSON_SCHEMA_FORMAT_KEYS, param)
    at = f"{param}.json_schema"
    spec = expect_object(rf.get("json_schema"), at)
    only_keys(spec, _JSON_SCHEMA_KEYS, at)
    expect_name(spec.get("name"), f"{at}.name")
    expect_object(spec.get("schema"), f"{at}.schema")
    for key, check in (("strict", expect_bool), ("description", expect_str)):
        if spec.get(key) is not None:
            check(spec[key], f"{at}.{key}")
    return rf


_BASE_KEYS = frozenset({"role", "name", "content"})
_ROLE_KEYS = MappingProxyType(
    {
        "system": _BASE_KEYS,
        "developer": _BASE_KEYS,
        "user": _BASE_KEYS,
        "assistant": _BASE_KEYS | {"tool_calls", "refusal", "audio"},
        "tool": _BASE_KEYS | {"tool_call_id"},
    }
)
_AUDIO_KEYS = frozenset({"id"})
_TEXT_KEYS = frozenset({"type", "text"})
_IMAGE_KEYS = frozenset({"type", "image_url"})
_IMAGE_URL_KEYS = frozenset({"url", "detail"})
_CALL_KEYS = frozenset({"id", "type", "function"})
_CALL_FUNCTION_KEYS = frozenset({"name", "arguments"})
_TOOL_KEYS = frozenset({"type", "function"})
_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})
_FUNCTION_FIELDS: tuple[tuple[str, Callable[[Any, str], Any]], ...] = (
    ("description", expect_str),
    ("parameters", expect_object),
    ("strict", expect_bool),
)
_NAME_KEY = frozenset({"name"})
_TYPE_KEY = frozenset({"type"})
_JSON_SCHEMA_FORMAT_KEYS = frozenset({"type", "json_schema"})
_JSON_SCHEMA_KEYS = frozenset({"name", "schema", "strict", "description"})

_CHECKS: MappingProxyType[str, Callable[[Any, str], Any]] = MappingProxyType(
    {
        "model": _model,
        "messages": _messages,
        "stream": expect_bool,
        "stream_options": _stream_options,
        "max_tokens": _max_tokens,
        "max_completion_tokens": _max_tokens,
        "temperature": partial(expect_number, low=0.0, high=2.0),
        "top_p": partial(expect_number, low=0.0, high=1.0),
        "n": _n,
        "stop": _stop,
        "seed": partial(expect_int, low=-_INT64, high=_INT64 - 1),
        "user": _user,
        "tools": _tools,
        "tool_choice": _tool_choice,
        "parallel_tool_calls": expect_bool,
        "response_format": _response_format,
        "presence_penalty": partial(expect_number, low=-2.0, high=2.0),
        "frequency_penalty": partial(expect_number, low=-2.0, high=2.0),
        "logprobs": expect_bool,
        "top_logprobs": partial(expect_int, low=0, high=20),
        "logit_bias": partial(expect_number_map, low=-100.0, high=100.0),
        "metadata": expect_str_map,
        "store": expect_bool,
        "reasoning_effort": expect_str,
        "service_tier": expect_str,
        "modalities": expect_str_list,
        "prediction": expect_object,
        "verbosity": expect_str,
        "prompt_cache_key": expect_str,
        "safety_identifier": expect_str,
    }
)
