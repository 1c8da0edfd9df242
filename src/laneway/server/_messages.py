"""Anthropic Messages (``POST /v1/messages``) parsed into the neutral request.

Everything a Messages body can say is checked (unknown fields are refused, like the chat
endpoint) and translated: ``system`` (a string or text blocks) becomes a system message;
``text`` / ``image`` (base64 or URL) blocks become content parts; an assistant's
``tool_use`` blocks become tool calls and a user's ``tool_result`` blocks become tool
messages (placed first, as OpenAI wants them right after the call); ``tools`` /
``tool_choice`` / ``stop_sequences`` / ``metadata.user_id`` map to their chat equivalents;
``top_k`` and ``thinking`` are carried in ``options`` under Anthropic's names, so that the
Anthropic adapter passes them on and every other adapter refuses them (400, never
dropped). ``cache_control`` (``{"type": "ephemeral", "ttl"?: "5m" | "1h"}``) on system
blocks, content blocks and tools is kept beside the messages, in
``ChatRequest.cache_control`` by position: the Anthropic adapter puts each back where the
client put it; every other adapter drops it (it is a hint, not a requirement).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import orjson

from laneway.errors import InvalidRequest
from laneway.governance import ClientSchema
from laneway.providers import ChatRequest, ContentPart, Message, Tool, ToolCall
from laneway.server._jsonlimits import (
    check_depth,
    expect_bool,
    expect_int,
    expect_name,
    expect_nonempty_str,
    expect_number,
    expect_object,
    expect_str,
    load_object,
    only_keys,
    type_error,
)

__all__ = ["MAX_MESSAGES", "parse_messages_request"]

_Marks = dict[tuple[str | int, ...], dict[str, Any]]  # ChatRequest.cache_control

MAX_MESSAGES = 10_000
_MAX_TOOLS = 128
_MAX_STOP = 16
_MAX_TOKENS = 2**31 - 1
_TOP_KEYS = frozenset({
    "model", "messages", "max_tokens", "system", "stream", "temperature", "top_p", "top_k",
    "stop_sequences", "tools", "tool_choice", "metadata", "thinking", "service_tier",
})  # fmt: skip
_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema", "cache_control"})
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_BLOCK_KEYS = {
    "text": frozenset({"type", "text", "cache_control", "citations"}),
    "image": frozenset({"type", "source", "cache_control"}),
    "tool_use": frozenset({"type", "id", "name", "input", "cache_control"}),
    "tool_result": frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"}),
    "thinking": frozenset({"type", "thinking", "signature"}),
    "redacted_thinking": frozenset({"type", "data"}),
}


def parse_messages_request(
    body: bytes, *, max_depth: int = 64, count_only: bool = False
) -> ChatRequest:
    """Parse and validate an Anthropic Messages request body (``count_only``: the body
    of ``/v1/messages/count_tokens``, which has no ``max_tokens``)."""
    doc = load_object(body, max_depth)
    if max_depth < 1024 and body.count(b"[") + body.count(b"{") > max_depth:
        check_depth(doc, max_depth)
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise InvalidRequest(f"unknown parameter '{unknown[0]}'", param=unknown[0])
    model = expect_nonempty_str(doc.get("model"), "model")
    if len(model) > 256:
        raise InvalidRequest("'model' is longer than 256 characters", param="model")
    if doc.get("max_tokens") is None and not count_only:
        raise InvalidRequest("'max_tokens' is required", param="max_tokens")
    max_tokens = _optional(doc, "max_tokens", _positive_int)
    messages: list[Message] = []
    marks: _Marks = {}
    system = doc.get("system")
    if system is not None:
        messages.append({"role": "system", "content": _system(system, marks)})
    raw = doc.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    if len(raw) > MAX_MESSAGES:
        raise InvalidRequest(f"at most {MAX_MESSAGES} messages", param="messages")
    for i, message in enumerate(raw):
        messages.extend(_message(message, f"messages[{i}]", len(messages), marks))
    options: dict[str, Any] = {}
    if doc.get("top_k") is not None:
        options["top_k"] = expect_int(doc["top_k"], "top_k", 0, 1_000_000)
    if doc.get("thinking") is not None:
        options["thinking"] = _thinking(doc["thinking"])
    if doc.get("service_tier") is not None:
        options["service_tier"] = expect_str(doc["service_tier"], "service_tier")
    task = _task(doc.get("metadata"))
    if task is not None:  # taken out again by the handler, never forwarded
        options["metadata"] = {"laneway_task": task}
    tools = _tools(doc.get("tools"), marks)
    tool_choice, parallel = _tool_choice(doc.get("tool_choice"), tools)
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        stream=_optional(doc, "stream", expect_bool) or False,
        include_usage=True,
        max_tokens=max_tokens,
        temperature=_optional(doc, "temperature", _unit_interval),
        top_p=_optional(doc, "top_p", _unit_interval),
        stop=_stop(doc.get("stop_sequences")),
        user=_user(doc.get("metadata")),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        options=options,
        cache_control=marks,
        object_arguments=True,  # tool_use.input is an object: no other text can be sent
    )


def _optional(doc: dict[str, Any], key: str, check: Callable[[Any, str], Any]) -> Any:
    value = doc.get(key)
    return None if value is None else check(value, key)


def _positive_int(value: Any, param: str) -> int:
    return expect_int(value, param, 1, _MAX_TOKENS)


def _unit_interval(value: Any, param: str) -> float:
    return expect_number(value, param, low=0.0, high=1.0)


def _system(value: Any, marks: _Marks) -> str | list[ContentPart]:
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise type_error("system", "a string or an array of text blocks", value)
    parts: list[ContentPart] = []
    for i, block in enumerate(value):
        where = f"system[{i}]"
        expect_object(block, where)
        if block.get("type") != "text":
            raise InvalidRequest(f"'{where}.type' must be 'text'", param=f"{where}.type")
        parts.append(_text_part(block, where))
        _mark(block, where, marks, ("part", 0, i))
    return parts


def _mark(block: dict[str, Any], where: str, marks: _Marks, at: tuple[str | int, ...]) -> None:
    """Keep ``block``'s ``cache_control`` (validated as Anthropic's) under ``at``."""
    value = block.get("cache_control")
    if value is None:
        return
    where = f"{where}.cache_control"
    expect_object(value, where)
    only_keys(value, frozenset({"type", "ttl"}), where)
    if value.get("type") != "ephemeral":
        raise InvalidRequest(f"'{where}.type' must be 'ephemeral'", param=f"{where}.type")
    control: dict[str, Any] = {"type": "ephemeral"}
    if value.get("ttl") is not None:
        if value["ttl"] not in ("5m", "1h"):
            raise InvalidRequest(f"'{where}.ttl' must be '5m' or '1h'", param=f"{where}.ttl")
        control["ttl"] = value["ttl"]
    marks[at] = control


def _text_part(block: dict[str, Any], where: str) -> ContentPart:
    only_keys(block, _BLOCK_KEYS["text"], where)
    return {"type": "text", "text": expect_str(block.get("text"), f"{where}.text")}


def _image_part(block: dict[str, Any], where: str) -> ContentPart:
    only_keys(block, _BLOCK_KEYS["image"], where)
    source = expect_object(block.get("source"), f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        only_keys(source, frozenset({"type", "media_type", "data"}), f"{where}.source")
        media = source.get("media_type")
        if media not in _IMAGE_TYPES:
            raise InvalidRequest(
                f"'{where}.source.media_type' must be one of {sorted(_IMAGE_TYPES)}",
                param=f"{where}.source.media_type",
            )
        data = expect_nonempty_str(source.get("data"), f"{where}.source.data")
        url = f"data:{media};base64,{data}"
    elif kind == "url":
        only_keys(source, frozenset({"type", "url"}), f"{where}.source")
        url = expect_nonempty_str(source.get("url"), f"{where}.source.url")
        if not url.startswith(("https://", "http://")):
            raise InvalidRequest(
                f"'{where}.source.url' must be an http(s) URL", param=f"{where}.source.url"
            )
    else:
        raise InvalidRequest(
            f"'{where}.source.type' must be 'base64' or 'url'", param=f"{where}.source.type"
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _block_type(block: Any, where: str) -> str:
    expect_object(block, where)
    kind = block.get("type")
    if kind not in _BLOCK_KEYS:
        raise InvalidRequest(
            f"'{where}.type' must be one of {sorted(_BLOCK_KEYS)}", param=f"{where}.type"
        )
    return str(kind)


def _message(value: Any, where: str, index: int, marks: _Marks) -> list[Message]:
    """One Messages turn as neutral messages, the first of which will be ``index``."""
    expect_object(value, where)
    only_keys(value, frozenset({"role", "content"}), where)
    role = value.get("role")
    if role not in ("user", "assistant"):
        raise InvalidRequest(f"'{where}.role' must be 'user' or 'assistant'", param=f"{where}.role")
    content = value.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise type_error(f"{where}.content", "a string or an array of content blocks", content)
    if role == "assistant":
        return [_assistant(content, where, index, marks)]
    return _user_turn(content, where, index, marks)


def _assistant(blocks: list[Any], where: str, index: int, marks: _Marks) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for i, block in enumerate(blocks):
        at = f"{where}.content[{i}]"
        kind = _block_type(block, at)
        if kind == "text":
            texts.append(_text_part(block, at)["text"])
            _mark(block, at, marks, ("message", index))  # the texts become one block
        elif kind == "tool_use":
            only_keys(block, _BLOCK_KEYS["tool_use"], at)
            _mark(block, at, marks, ("call", index, len(calls)))
            arguments = expect_object(block.get("input"), f"{at}.input")
            calls.append(
                {
                    "id": expect_nonempty_str(block.get("id"), f"{at}.id"),
                    "type": "function",
                    "function": {
                        "name": expect_nonempty_str(block.get("name"), f"{at}.name"),
                        "arguments": orjson.dumps(arguments).decode(),
                    },
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue  # earlier reasoning: not sent back to any model (it may not accept it)
        else:
            raise InvalidRequest(
                f"'{at}.type' {kind!r} is not allowed in an assistant message", param=f"{at}.type"
            )
    message: Message = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _user_turn(blocks: list[Any], where: str, index: int, marks: _Marks) -> list[Message]:
    """Tool results first (each its own ``tool`` message), then the rest of the turn."""
    results: list[Message] = []
    parts: list[ContentPart] = []
    part_marks: _Marks = {}  # by part index: the user message's index is known at the end
    for i, block in enumerate(blocks):
        at = f"{where}.content[{i}]"
        kind = _block_type(block, at)
        if kind == "text":
            _mark(block, at, part_marks, (len(parts),))
            parts.append(_text_part(block, at))
        elif kind == "image":
            _mark(block, at, part_marks, (len(parts),))
            parts.append(_image_part(block, at))
        elif kind == "tool_result":
            results.append(_tool_result(block, at, index + len(results), marks))
        else:
            raise InvalidRequest(
                f"'{at}.type' {kind!r} is not allowed in a user message", param=f"{at}.type"
            )
    turn = list(results)
    if parts:
        for (p,), control in part_marks.items():
            marks["part", index + len(results), p] = control
        turn.append({"role": "user", "content": parts})
    if not turn:
        raise InvalidRequest(f"'{where}.content' must not be empty", param=f"{where}.content")
    return turn


def _tool_result(block: dict[str, Any], where: str, index: int, marks: _Marks) -> Message:
    only_keys(block, _BLOCK_KEYS["tool_result"], where)
    _mark(block, where, marks, ("message", index))
    call_id = expect_nonempty_str(block.get("tool_use_id"), f"{where}.tool_use_id")
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        pieces = []
        for i, part in enumerate(content):
            at = f"{where}.content[{i}]"
            if _block_type(part, at) != "text":
                raise InvalidRequest(f"'{at}': tool results may hold text only", param=at)
            pieces.append(_text_part(part, at)["text"])
            _mark(part, at, marks, ("message", index))  # the texts become one block
        text = "\n".join(pieces)
    else:
        raise type_error(f"{where}.content", "a string or text blocks", content)
    if block.get("is_error") is not None and expect_bool(block["is_error"], f"{where}.is_error"):
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _tools(value: Any, marks: _Marks) -> tuple[Tool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise type_error("tools", "an array", value)
    if len(value) > _MAX_TOOLS:
        raise InvalidRequest(f"at most {_MAX_TOOLS} tools", param="tools")
    tools: list[Tool] = []
    names: set[str] = set()
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        expect_object(tool, where)
        if tool.get("type") not in (None, "custom"):
            raise InvalidRequest(
                f"'{where}.type' {tool.get('type')!r}: only client tools (name, description, "
                "input_schema) are supported",
                param=f"{where}.type",
            )
        only_keys(tool, _TOOL_KEYS, where)
        _mark(tool, where, marks, ("tools", i))
        name = expect_name(tool.get("name"), f"{where}.name")
        if name in names:
            raise InvalidRequest(
                f"'{where}.name': duplicate tool name {name!r}: tool names must be unique",
                param=f"{where}.name",
            )
        names.add(name)
        schema = expect_object(tool.get("input_schema"), f"{where}.input_schema")
        # checked like chat's tool parameters: valid, local references only, linear-time
        # patterns, before any upstream call
        ClientSchema.check_schema(schema, f"{where}.input_schema")
        function: dict[str, Any] = {"name": name, "parameters": schema}
        if tool.get("description") is not None:
            function["description"] = expect_str(tool["description"], f"{where}.description")
        tools.append(cast(Tool, {"type": "function", "function": function}))
    return tuple(tools)


def _tool_choice(
    value: Any, tools: tuple[Tool, ...]
) -> tuple[str | dict[str, Any] | None, bool | None]:
    if value is None:
        return None, None
    expect_object(value, "tool_choice")
    only_keys(value, frozenset({"type", "name", "disable_parallel_tool_use"}), "tool_choice")
    parallel = None
    if value.get("disable_parallel_tool_use") is not None:
        parallel = not expect_bool(
            value["disable_parallel_tool_use"], "tool_choice.disable_parallel_tool_use"
        )
    kind = value.get("type")
    if kind == "auto":
        return "auto", parallel
    if kind == "none":
        return "none", parallel
    if kind in ("any", "tool") and not tools:
        raise InvalidRequest(
            f"'tool_choice' of type {kind!r} needs 'tools' to choose from", param="tool_choice"
        )
    if kind == "any":
        return "required", parallel
    if kind == "tool":
        name = expect_nonempty_str(value.get("name"), "tool_choice.name")
        if all(tool["function"]["name"] != name for tool in tools):
            raise InvalidRequest(
                f"'tool_choice.name' names {name[:80]!r}, which is not one of the declared tools",
                param="tool_choice.name",
            )
        return {"type": "function", "function": {"name": name}}, parallel
    raise InvalidRequest(
        "'tool_choice.type' must be one of auto, any, tool, none", param="tool_choice.type"
    )


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise type_error("stop_sequences", "an array of non-empty strings", value)
    if len(value) > _MAX_STOP:
        raise InvalidRequest(f"at most {_MAX_STOP} stop sequences", param="stop_sequences")
    return tuple(value)


def _user(value: Any) -> str | None:
    if value is None:
        return None
    expect_object(value, "metadata")
    only_keys(value, frozenset({"user_id", "laneway_task"}), "metadata")
    user = value.get("user_id")
    if user is None:
        return None
    user = expect_str(user, "metadata.user_id")
    if len(user) > 256 or any(ord(c) < 32 or ord(c) == 127 for c in user):
        raise InvalidRequest(
            "'metadata.user_id' must be at most 256 characters without control characters",
            param="metadata.user_id",
        )
    return user


def _task(value: Any) -> str | None:
    if not isinstance(value, dict) or value.get("laneway_task") is None:
        return None
    return expect_str(value["laneway_task"], "metadata.laneway_task")


def _thinking(value: Any) -> dict[str, Any]:
    expect_object(value, "thinking")
    only_keys(value, frozenset({"type", "budget_tokens"}), "thinking")
    kind = value.get("type")
    if kind == "disabled":
        return {"type": "disabled"}
    if kind != "enabled":
        raise InvalidRequest(
            "'thinking.type' must be 'enabled' or 'disabled'", param="thinking.type"
        )
    budget = expect_int(value.get("budget_tokens"), "thinking.budget_tokens", 1024, _MAX_TOKENS)
    return {"type": "enabled", "budget_tokens": budget}
