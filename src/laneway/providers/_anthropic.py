"""Adapter for Anthropic's Messages wire format (``POST {api_base}/v1/messages``).

Translates the canonical OpenAI chat request faithfully or refuses it:

* system (and developer) messages → top-level ``system``; ``tool`` messages → a
  ``user`` turn of ``tool_result`` blocks; consecutive same-role turns are merged
  (Anthropic requires user/assistant alternation);
* ``response_format`` (``json_schema`` / ``json_object``) → one forced tool whose
  input comes back as the message content (text blocks around it are dropped),
  with ``finish_reason`` ``"stop"``;
* parameters Anthropic cannot honour (``seed``, OpenAI-only options, temperature
  above 1) → :class:`~laneway.errors.UnsupportedParameter` from :meth:`check`.

``cache_control`` breakpoints (``ChatRequest.cache_control``, from ``/v1/messages``) go
back on the system block, content block, tool call, tool result or tool definition the
client put them on; with one, ``system`` is sent as text blocks rather than a string.

Quirks: ``default_max_tokens`` (Anthropic requires ``max_tokens``; default 4096).
Errors are mapped by Anthropic's ``error.type`` and the HTTP status, never by text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from laneway.errors import (
    ContentFiltered,
    InvalidRequest,
    UnsupportedParameter,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamInvalidRequest,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from laneway.providers._http import UpstreamClient
from laneway.providers._sse import iter_sse
from laneway.providers._status import Endpoint, describe_body, error_for_status, parse_retry_after
from laneway.providers._types import (
    CacheMarks,
    ChatRequest,
    ChatResult,
    ContentPart,
    Message,
    StreamDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    token_count,
)

__all__ = ["ANTHROPIC_VERSION", "AnthropicAdapter", "parse_anthropic_usage"]

ANTHROPIC_VERSION = "2023-06-01"
_JSON_TOOL = "json_output"

_STOP_REASONS = MappingProxyType(
    {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
    }
)

# Anthropic's documented error types: (the HTTP status it comes with, our exception).
_ERRORS: Mapping[str, tuple[int, type[UpstreamError]]] = MappingProxyType(
    {
        "invalid_request_error": (400, UpstreamInvalidRequest),
        "authentication_error": (401, UpstreamAuthError),
        "billing_error": (402, UpstreamAuthError),
        "permission_error": (403, UpstreamAuthError),
        "not_found_error": (404, UpstreamError),
        "request_too_large": (413, UpstreamInvalidRequest),
        "rate_limit_error": (429, UpstreamRateLimited),
        "api_error": (500, UpstreamServerError),
        "timeout_error": (504, UpstreamTimeout),
        "overloaded_error": (529, UpstreamServerError),
    }
)

# Anthropic parameters a /v1/messages client may send, passed on as they are.
_NATIVE_OPTIONS = ("thinking", "top_k", "service_tier")

# OpenAI options whose value here means "the default behaviour", which Anthropic has.
_NOOP_OPTIONS: Mapping[str, object] = MappingProxyType(
    {"n": 1, "logprobs": False, "presence_penalty": 0, "frequency_penalty": 0}
)


_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


def parse_anthropic_usage(raw: Any, *, writes_1h: bool = False) -> Usage | None:
    """Anthropic ``usage`` → :class:`Usage`; the prompt counts cached and cache-write tokens.

    The 1-hour share of the cache writes is ``cache_creation.ephemeral_1h_input_tokens``
    when the upstream splits them by TTL; otherwise all of them when ``writes_1h`` (every
    ``cache_control`` mark of the request asked for ``ttl: 1h``), else none (5 minutes).
    A count that is not a number raises :class:`~laneway.errors.UpstreamBadResponse`; a
    negative count makes the whole usage unknown (``None``), never a negative bill.
    """
    if not isinstance(raw, dict):
        return None
    fresh, output, cache_read, cache_write = (
        token_count(raw.get(key), "anthropic") for key in _USAGE_KEYS
    )
    creation = raw.get("cache_creation")
    if isinstance(creation, dict):
        hour = token_count(creation.get("ephemeral_1h_input_tokens"), "anthropic")
    else:
        hour = cache_write if writes_1h else 0
    if min(fresh, output, cache_read, cache_write, hour) < 0:
        return None
    return Usage(
        prompt_tokens=fresh + cache_read + cache_write,
        completion_tokens=output,
        cached_tokens=cache_read,
        cache_creation_tokens=cache_write,
        cache_creation_1h_tokens=min(hour, cache_write),
    )


def _writes_1h(request: ChatRequest) -> bool:
    """Every ``cache_control`` mark of ``request`` asks for the 1-hour TTL."""
    marks = request.cache_control
    return bool(marks) and all(m.get("ttl") == "1h" for m in marks.values())


class AnthropicAdapter:
    """:class:`~laneway.providers.ChatModel` speaking ``POST {api_base}/v1/messages``."""

    provider = "anthropic"

    def __init__(self, endpoint: Endpoint, client: UpstreamClient) -> None:
        self.endpoint = endpoint
        self._client = client
        self._url = endpoint.api_base.rstrip("/") + "/v1/messages"
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": ANTHROPIC_VERSION,
        }
        if endpoint.api_key:
            headers["x-api-key"] = endpoint.api_key
        headers.update(endpoint.extra_headers or {})
        self._headers = headers

    def check(self, request: ChatRequest) -> None:
        if request.seed is not None:
            raise self._unsupported("seed", "does not support 'seed'")
        for name, value in request.options.items():
            if value is None or (name in _NOOP_OPTIONS and value == _NOOP_OPTIONS[name]):
                continue
            if name in _NATIVE_OPTIONS:
                continue
            raise self._unsupported(name, f"does not support {name!r}")
        if request.temperature is not None and request.temperature > 1:
            raise self._unsupported("temperature", "accepts a temperature between 0 and 1 only")
        if _json_mode(request) and request.tools:
            raise self._unsupported("response_format", "cannot combine response_format with tools")

    def _unsupported(self, param: str, what: str) -> UnsupportedParameter:
        return UnsupportedParameter(
            f"deployment {self.endpoint.deployment!r} (anthropic) {what}", param=param
        )

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The Anthropic request body for ``request`` (raises ``InvalidRequest``)."""
        system, messages = _translate_messages(request.messages, request.cache_control)
        max_tokens = request.max_tokens
        if max_tokens is None:
            max_tokens = int(self.endpoint.quirk("default_max_tokens", 4096))
        body: dict[str, Any] = {
            "model": self.endpoint.upstream_model,
            "max_tokens": max_tokens,
            "messages": messages,
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.user is not None:
            body["metadata"] = {"user_id": request.user}
        body.update(_tools_part(request))
        for name in _NATIVE_OPTIONS:  # Anthropic's own parameters, from /v1/messages
            if request.options.get(name) is not None:
                body[name] = request.options[name]
        if stream:
            body["stream"] = True
        return body

    def _body(self, request: ChatRequest, *, stream: bool) -> bytes:
        return orjson.dumps(self.build_body(request, stream=stream))

    def _error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        err_type: Any = None
        message = ""
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            message = describe_body(headers, raw)
        else:
            err = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(err, dict):
                err_type = err.get("type")
                message = str(err.get("message") or "")[:500]
        return _map_error(err_type, status, headers, message, self.provider)

    async def complete(self, request: ChatRequest) -> ChatResult:
        body = self._body(request, stream=False)
        response = await self._client.post(self._url, self._headers, body, self.endpoint.timeouts)
        if response.status >= 400:
            raise self._error(response.status, response.headers, response.body)
        try:
            payload = orjson.loads(response.body)
            blocks = payload["content"]
            if not isinstance(blocks, list):
                raise TypeError("content is not a list")
            result = _result(
                payload,
                blocks,
                _json_mode(request),
                self.endpoint.upstream_model,
                writes_1h=_writes_1h(request),
            )
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise UpstreamBadResponse(
                f"{self.provider} sent a malformed message body", upstream_status=200
            ) from exc
        if result.finish_reason == "content_filter" and not result.content:
            raise ContentFiltered("anthropic refused to answer (stop_reason 'refusal')")
        return result

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        body = self._body(request, stream=True)
        state = _StreamState(
            json_mode=_json_mode(request),
            model=self.endpoint.upstream_model,
            writes_1h=_writes_1h(request),
        )
        async with self._client.post_stream(
            self._url, self._headers, body, self.endpoint.timeouts
        ) as response:
            if response.status >= 400:
                raise self._error(response.status, response.headers, await response.read_body())
            async for event in iter_sse(response.lines()):
                delta = self._parse_event(event.data, state)
                if delta is not None:
                    yield delta
                if state.stopped:
                    break
            if not state.stopped:
                # Ended cleanly after message_delta named a stop_reason, but without
                # message_stop: the answer is complete, so it ends as a success.
                if state.stop_reason is None:
                    raise UpstreamBadResponse(
                        f"{self.provider} stream ended without a stop_reason or message_stop"
                    )
                yield state.finish()

    def _parse_event(self, data: bytes, state: _StreamState) -> StreamDelta | None:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(f"{self.provider} sent a malformed stream event") from exc
        if not isinstance(event, dict):
            raise UpstreamBadResponse(f"{self.provider} sent a malformed stream event")
        if event.get("type") == "error":
            err = event.get("error")
            err = err if isinstance(err, dict) else {}
            known = _ERRORS.get(str(err.get("type")))
            message = f"error event in stream: {str(err.get('message') or '')[:500]}"
            status = known[0] if known else 500
            raise _map_error(err.get("type"), status, {}, message, self.provider)
        try:
            return state.handle(event)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamBadResponse(
                f"{self.provider} sent a malformed {event.get('type')!s} event"
            ) from exc


@dataclass(slots=True)
class _StreamState:
    """What a stream has said so far; :meth:`handle` turns one event into a delta."""

    json_mode: bool
    model: str
    usage: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None
    tool_indexes: dict[int, int] = field(default_factory=dict)
    stopped: bool = False
    writes_1h: bool = False  # every cache_control mark asked for 1 hour
    cache_creation: Any = None  # usage.cache_creation (cache writes by TTL), when sent

    def handle(self, event: dict[str, Any]) -> StreamDelta | None:
        kind = event.get("type")
        if kind == "message_start":
            message = event["message"]
            self.model = str(message.get("model") or self.model)
            self._merge_usage(message.get("usage"))
        elif kind == "content_block_start":
            return self._block_start(int(event["index"]), event["content_block"])
        elif kind == "content_block_delta":
            return self._block_delta(int(event["index"]), event["delta"])
        elif kind == "message_delta":
            self.stop_reason = event["delta"].get("stop_reason") or self.stop_reason
            self._merge_usage(event.get("usage"))
        elif kind == "message_stop":
            return self.finish()
        # ping, content_block_stop and event types added later carry nothing for us.
        return None

    def finish(self) -> StreamDelta:
        """The last delta: the finish reason and the usage counted so far."""
        self.stopped = True
        return StreamDelta(
            finish_reason=_finish(self.stop_reason, self.json_mode),
            usage=parse_anthropic_usage(
                {**self.usage, "cache_creation": self.cache_creation}, writes_1h=self.writes_1h
            ),
            model=self.model,
        )

    def _merge_usage(self, raw: Any) -> None:
        if isinstance(raw, dict):  # later events may repeat a count, or send it as null
            if isinstance(raw.get("cache_creation"), dict):
                self.cache_creation = raw["cache_creation"]
            for key in _USAGE_KEYS:
                value = raw.get(key)
                if value is not None:
                    self.usage[key] = token_count(value, "anthropic")

    def _block_start(self, index: int, block: dict[str, Any]) -> StreamDelta | None:
        if block.get("type") == "text" and block.get("text") and not self.json_mode:
            return StreamDelta(content=_text(block["text"]), model=self.model)
        if block.get("type") != "tool_use" or self.json_mode:
            return None
        position = len(self.tool_indexes)
        self.tool_indexes[index] = position
        call: ToolCallDelta = {
            "index": position,
            "id": _text(block["id"]),
            "type": "function",
            "function": {"name": _text(block["name"]), "arguments": ""},
        }
        return StreamDelta(tool_calls=[call], model=self.model)

    def _block_delta(self, index: int, delta: dict[str, Any]) -> StreamDelta | None:
        kind = delta.get("type")
        if kind == "text_delta" and not self.json_mode:
            return StreamDelta(content=_text(delta["text"]), model=self.model)
        if kind != "input_json_delta" or not delta.get("partial_json"):
            return None
        partial = _text(delta["partial_json"])
        if self.json_mode:
            return StreamDelta(content=partial, model=self.model)
        call: ToolCallDelta = {
            "index": self.tool_indexes[index],
            "function": {"arguments": partial},
        }
        return StreamDelta(tool_calls=[call], model=self.model)


# -- request translation -------------------------------------------------------


def _translate_messages(
    messages: Sequence[Message], marks: CacheMarks
) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages → (Anthropic ``system``, alternating ``messages``); ``marks``: the
    ``cache_control`` breakpoints by position (``system`` becomes blocks when it has one)."""
    system: list[str] = []
    system_blocks: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for m, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            text = _plain_text(message.get("content"))
            if text:
                system.append(text)
            if marks:
                system_blocks += _system_blocks(message.get("content"), m, marks)
            continue
        if role == "tool":
            blocks = [_marked(_tool_result(message), marks.get(("message", m)))]
            role = "user"
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"), m, marks)
            blocks += [
                _marked(_tool_use(call), marks.get(("call", m, c)))
                for c, call in enumerate(message.get("tool_calls") or ())
            ]
        elif role == "user":
            blocks = _content_blocks(message.get("content"), m, marks)
        else:
            raise InvalidRequest(f"unknown message role {role!r}", param="messages")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    turns = [_finish_turn(turn) for turn in turns]
    if any("cache_control" in block for block in system_blocks):
        return system_blocks, turns
    return "\n\n".join(system), turns


def _marked(block: dict[str, Any], control: Any) -> dict[str, Any]:
    if control is not None:
        block["cache_control"] = dict(control)
    return block


def _system_blocks(
    content: str | list[ContentPart] | None, m: int, marks: CacheMarks
) -> list[dict[str, Any]]:
    """A system message as text blocks, each with its breakpoint."""
    if isinstance(content, str):
        parts: list[ContentPart] = [{"type": "text", "text": content}] if content else []
        whole = marks.get(("message", m))
    else:
        parts, whole = list(content or ()), None
    blocks = [
        _marked({"type": "text", "text": str(part.get("text") or "")}, marks.get(("part", m, p)))
        for p, part in enumerate(parts)
        if part.get("text")
    ]
    if blocks and whole is not None:
        _marked(blocks[-1], whole)
    return blocks


def _finish_turn(turn: dict[str, Any]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = turn["content"]
    if turn["role"] == "user":  # Anthropic wants tool results before any text
        blocks.sort(key=lambda block: block["type"] != "tool_result")
    if len(blocks) == 1 and blocks[0]["type"] == "text" and "cache_control" not in blocks[0]:
        return {"role": turn["role"], "content": blocks[0]["text"]}
    return turn


def _plain_text(content: str | list[ContentPart] | None) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    parts = []
    for part in content:
        if part.get("type") != "text":
            raise InvalidRequest(
                "system and tool messages may only contain text parts", param="messages"
            )
        parts.append(str(part.get("text") or ""))
    return "\n".join(p for p in parts if p)


def _content_blocks(
    content: str | list[ContentPart] | None, m: int, marks: CacheMarks
) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [_marked({"type": "text", "text": content}, marks.get(("message", m)))]
    blocks: list[dict[str, Any]] = []
    for p, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                text = {"type": "text", "text": str(part["text"])}
                blocks.append(_marked(text, marks.get(("part", m, p))))
        elif kind == "image_url" and "image_url" in part:
            image = _image(str(part["image_url"]["url"]))
            blocks.append(_marked(image, marks.get(("part", m, p))))
        else:
            raise InvalidRequest(f"unsupported content part type {kind!r}", param="messages")
    return blocks


def _image(url: str) -> dict[str, Any]:
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, sep, data = url.partition(",")
    if url.startswith("data:") and sep and header.endswith(";base64"):
        media_type = header[len("data:") : -len(";base64")]
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    raise InvalidRequest("image_url must be an http(s) URL or a base64 data: URL", param="messages")


def _tool_result(message: Message) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not call_id:
        raise InvalidRequest("a tool message needs a tool_call_id", param="messages")
    return {
        "type": "tool_result",
        "tool_use_id": call_id,
        "content": _plain_text(message.get("content")),
    }


def _tool_use(call: ToolCall) -> dict[str, Any]:
    function = call["function"]
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"tool call {call.get('id')!r} has arguments that are not valid JSON",
            param="messages",
        ) from exc
    if not isinstance(arguments, dict):
        raise InvalidRequest(
            f"tool call {call.get('id')!r} arguments must be a JSON object", param="messages"
        )
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}


def _json_mode(request: ChatRequest) -> bool:
    rf = request.response_format
    return rf is not None and rf.get("type") in ("json_schema", "json_object")


def _tools_part(request: ChatRequest) -> dict[str, Any]:
    """``tools`` and ``tool_choice`` (user tools, or the forced tool of JSON mode)."""
    if _json_mode(request):
        spec = request.json_schema or {}
        name = str(spec.get("name") or _JSON_TOOL)
        tool: dict[str, Any] = {
            "name": name,
            "input_schema": spec.get("schema") or {"type": "object"},
        }
        if spec.get("description"):
            tool["description"] = spec["description"]
        return {"tools": [tool], "tool_choice": {"type": "tool", "name": name}}
    if not request.tools:
        return {}
    tools = []
    for i, item in enumerate(request.tools):
        function = item["function"]
        tool = {"name": function["name"]}
        if function.get("description"):
            tool["description"] = function["description"]
        tool["input_schema"] = function.get("parameters") or {"type": "object"}
        tools.append(_marked(tool, request.cache_control.get(("tools", i))))
    part: dict[str, Any] = {"tools": tools}
    choice = _tool_choice(request.tool_choice)
    if request.parallel_tool_calls is False and choice.get("type") != "none":
        choice = {"type": "auto", **choice, "disable_parallel_tool_use": True}
    if choice:
        part["tool_choice"] = choice
    return part


def _tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any]:
    if choice is None:
        return {}
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": str(choice["function"]["name"])}
    raise InvalidRequest(f"unsupported tool_choice {choice!r}", param="tool_choice")


# -- response translation -------------------------------------------------------


def _result(
    payload: dict[str, Any],
    blocks: list[Any],
    json_mode: bool,
    default_model: str,
    *,
    writes_1h: bool = False,
) -> ChatResult:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in blocks:
        if block["type"] == "text":
            texts.append(_text(block["text"]))
        elif block["type"] == "tool_use":
            if not isinstance(block["input"], dict):
                raise TypeError("tool_use input is not an object")
            arguments = orjson.dumps(block["input"]).decode()
            call_id, name = _text(block["id"]), _text(block["name"])
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
    content: str | None = "".join(texts) if texts else None
    if json_mode:  # the answer is the forced tool's input; text around it is not
        content = calls[0]["function"]["arguments"] if calls else None
        calls = []
    return ChatResult(
        content=content,
        finish_reason=_finish(payload.get("stop_reason"), json_mode),
        model=str(payload.get("model") or default_model),
        usage=parse_anthropic_usage(payload.get("usage"), writes_1h=writes_1h),
        tool_calls=calls,
    )


def _text(value: Any) -> str:
    """A string field of an answer; any other type makes the answer malformed."""
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _finish(stop_reason: Any, json_mode: bool) -> str:
    finish = _STOP_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    return "stop" if json_mode and finish == "tool_calls" else finish


def _map_error(
    err_type: Any, status: int, headers: Mapping[str, str], message: str, provider: str
) -> UpstreamError:
    generic = error_for_status(status, headers, message, provider=provider)
    known = _ERRORS.get(err_type) if isinstance(err_type, str) else None
    if known is None or type(generic) is known[1]:
        return generic
    return known[1](str(generic), upstream_status=status, retry_after=parse_retry_after(headers))
