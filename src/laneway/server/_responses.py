"""OpenAI Responses (``POST /v1/responses``) in: the body translated into a chat
completions body and then validated by the chat parser, so that both endpoints accept
and refuse exactly the same things (limits, tools, JSON schemas, sizes).

``input`` (a string or a list of items: messages with ``input_text`` / ``input_image`` /
``output_text`` parts, ``function_call`` and ``function_call_output``), ``instructions``
(a system message, not carried over by ``previous_response_id``), function ``tools``,
``tool_choice``, ``text.format`` (``json_schema`` / ``json_object`` / ``text``),
``max_output_tokens``, ``reasoning.effort`` (OpenAI-format deployments only; others
refuse it), ``store`` and ``previous_response_id``. Reasoning items (and ``include``)
cannot be replayed through a chat-completions upstream: ``_responses_relay`` takes such
requests to OpenAI's Responses API before they get here; one that reaches this parser is
refused with a clear 400.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from laneway.errors import InvalidRequest
from laneway.server._jsonlimits import (
    check_depth,
    expect_bool,
    expect_int,
    expect_nonempty_str,
    expect_object,
    expect_str,
    load_object,
    only_keys,
    type_error,
)

__all__ = ["ResponsesInput", "parse_responses_body"]

_MAX_ITEMS = 10_000
_MAX_ID = 128
_TOP_KEYS = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "text", "max_output_tokens",
    "temperature", "top_p", "stream", "store", "previous_response_id", "metadata", "user",
    "parallel_tool_calls", "reasoning", "truncation", "include", "service_tier",
    "prompt_cache_key", "safety_identifier", "seed", "background",
})  # fmt: skip
_PASSED = ("temperature", "top_p", "user", "parallel_tool_calls", "seed", "service_tier",
           "prompt_cache_key", "safety_identifier")  # fmt: skip
_ROLES = frozenset({"user", "system", "developer", "assistant"})
_PART_KEYS = {
    "input_text": frozenset({"type", "text"}),
    "output_text": frozenset({"type", "text", "annotations", "logprobs"}),
    "input_image": frozenset({"type", "image_url", "detail", "file_id"}),
    "refusal": frozenset({"type", "refusal"}),
}


@dataclass(slots=True)
class ResponsesInput:
    """A Responses request before its previous conversation is loaded."""

    chat: dict[str, Any]  # a chat-completions body, without the previous conversation
    store: bool
    previous_response_id: str | None
    echo: dict[str, Any] = field(default_factory=dict)  # fields the response repeats


def parse_responses_body(body: bytes, *, max_depth: int, store_default: bool) -> ResponsesInput:
    doc = load_object(body, max_depth)
    if max_depth < 1024 and body.count(b"[") + body.count(b"{") > max_depth:
        check_depth(doc, max_depth)
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise InvalidRequest(f"unknown parameter '{unknown[0]}'", param=unknown[0])
    if doc.get("background"):
        raise InvalidRequest("background responses are not supported", param="background")
    if doc.get("truncation") not in (None, "disabled"):
        raise InvalidRequest("only 'truncation': 'disabled' is supported", param="truncation")
    include = doc.get("include")
    if include:
        raise InvalidRequest("'include' is not supported", param="include")
    chat: dict[str, Any] = {"model": doc.get("model")}
    messages: list[dict[str, Any]] = []
    instructions = doc.get("instructions")
    if instructions is not None:
        messages.append({"role": "system", "content": expect_str(instructions, "instructions")})
    messages.extend(_input(doc.get("input")))
    chat["messages"] = messages
    for name in _PASSED:
        if doc.get(name) is not None:
            chat[name] = doc[name]
    if doc.get("max_output_tokens") is not None:
        chat["max_tokens"] = expect_int(doc["max_output_tokens"], "max_output_tokens", 1, 2**31 - 1)
    if doc.get("stream") is not None:
        chat["stream"] = expect_bool(doc["stream"], "stream")
    tools = _tools(doc.get("tools"))
    if tools:
        chat["tools"] = tools
    if doc.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(doc["tool_choice"])
    fmt = _text_format(doc.get("text"))
    if fmt is not None:
        chat["response_format"] = fmt
    reasoning = doc.get("reasoning")
    if reasoning is not None:
        expect_object(reasoning, "reasoning")
        only_keys(reasoning, frozenset({"effort", "summary"}), "reasoning")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = expect_str(reasoning["effort"], "reasoning.effort")
    task = _metadata(doc.get("metadata")).get("laneway_task")
    if task is not None:  # taken out again by the handler, never forwarded
        chat["metadata"] = {"laneway_task": task}
    store = store_default if doc.get("store") is None else expect_bool(doc["store"], "store")
    previous = doc.get("previous_response_id")
    if previous is not None:
        previous = expect_nonempty_str(previous, "previous_response_id")
        if len(previous) > _MAX_ID:
            raise InvalidRequest("'previous_response_id' is too long", param="previous_response_id")
    echo = {
        "instructions": instructions,
        "metadata": _metadata(doc.get("metadata")),
        "tools": doc.get("tools") or [],
        "tool_choice": doc.get("tool_choice") or "auto",
        "text": doc.get("text") or {"format": {"type": "text"}},
        "temperature": doc.get("temperature"),
        "top_p": doc.get("top_p"),
        "max_output_tokens": doc.get("max_output_tokens"),
        "parallel_tool_calls": doc.get("parallel_tool_calls", True),
        "previous_response_id": previous,
        "store": store,
    }
    return ResponsesInput(chat, store, previous, echo)


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    expect_object(value, "metadata")
    if len(value) > 16 or not all(
        isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in value.items()
    ):
        raise InvalidRequest(
            "'metadata' holds at most 16 string values (keys ≤ 64, values ≤ 512 characters)",
            param="metadata",
        )
    return dict(value)


def _input(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise type_error("input", "a string or a non-empty array of items", value)
    if len(value) > _MAX_ITEMS:
        raise InvalidRequest(f"at most {_MAX_ITEMS} input items", param="input")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        expect_object(item, where)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            only_keys(
                item, frozenset({"type", "id", "call_id", "name", "arguments", "status"}), where
            )
            call = {
                "id": expect_nonempty_str(item.get("call_id"), f"{where}.call_id"),
                "type": "function",
                "function": {
                    "name": expect_nonempty_str(item.get("name"), f"{where}.name"),
                    "arguments": expect_str(item.get("arguments"), f"{where}.arguments"),
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # parallel calls of one turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            only_keys(item, frozenset({"type", "id", "call_id", "output", "status"}), where)
            output = item.get("output")
            if not isinstance(output, str):
                output = orjson.dumps(output).decode() if output is not None else ""
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": expect_nonempty_str(item.get("call_id"), f"{where}.call_id"),
                    "content": output,
                }
            )
        elif kind == "reasoning":
            raise InvalidRequest(
                f"'{where}': reasoning items pass through to OpenAI's Responses API only "
                "(an OpenAI deployment); leave them out to use any deployment",
                param=where,
            )
        else:
            raise InvalidRequest(
                f"'{where}.type' {kind!r} is not supported (message, function_call, "
                "function_call_output)",
                param=f"{where}.type",
            )
    return messages


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    only_keys(item, frozenset({"type", "role", "content", "id", "status"}), where)
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidRequest(
            f"'{where}.role' must be one of {sorted(_ROLES)}", param=f"{where}.role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise type_error(f"{where}.content", "a string or an array of parts", content)
    parts: list[dict[str, Any]] = []
    texts: list[str] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        expect_object(part, at)
        kind = part.get("type")
        if kind not in _PART_KEYS:
            raise InvalidRequest(
                f"'{at}.type' must be one of {sorted(_PART_KEYS)}", param=f"{at}.type"
            )
        only_keys(part, _PART_KEYS[kind], at)
        if kind in ("input_text", "output_text"):
            text = expect_str(part.get("text"), f"{at}.text")
            texts.append(text)
            parts.append({"type": "text", "text": text})
        elif kind == "refusal":
            texts.append(expect_str(part.get("refusal"), f"{at}.refusal"))
        else:
            if part.get("file_id") is not None:
                raise InvalidRequest(f"'{at}.file_id': files are not supported", param=at)
            image: dict[str, Any] = {
                "url": expect_nonempty_str(part.get("image_url"), f"{at}.image_url")
            }
            if part.get("detail") is not None:
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
    if role == "assistant":
        return {"role": "assistant", "content": "".join(texts)}
    return {"role": role, "content": parts}


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise type_error("tools", "an array", value)
    tools = []
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        expect_object(tool, where)
        if tool.get("type") != "function":
            raise InvalidRequest(
                f"'{where}.type' {tool.get('type')!r} is not supported: only function tools",
                param=f"{where}.type",
            )
        only_keys(tool, frozenset({"type", "name", "description", "parameters", "strict"}), where)
        function = {
            k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool
        }
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(value: Any) -> Any:
    if isinstance(value, str):
        return value
    expect_object(value, "tool_choice")
    if value.get("type") == "function":
        only_keys(value, frozenset({"type", "name"}), "tool_choice")
        name = expect_nonempty_str(value.get("name"), "tool_choice.name")
        return {"type": "function", "function": {"name": name}}
    raise InvalidRequest("'tool_choice' must be a string or a function choice", param="tool_choice")


def _text_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    expect_object(value, "text")
    only_keys(value, frozenset({"format", "verbosity"}), "text")
    fmt = value.get("format")
    if fmt is None:
        return None
    expect_object(fmt, "text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        only_keys(
            fmt, frozenset({"type", "name", "schema", "strict", "description"}), "text.format"
        )
        spec = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": spec}
    raise InvalidRequest(
        "'text.format.type' must be 'text', 'json_object' or 'json_schema'",
        param="text.format.type",
    )
