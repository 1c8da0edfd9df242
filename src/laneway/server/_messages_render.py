"""Anthropic Messages out: answers, the stream's event sequence and errors in Anthropic's
shapes, for any deployment behind the gateway.

Stream: ``message_start`` and a ``ping``, then per content block ``content_block_start``,
``content_block_delta`` (``text_delta``, or ``input_json_delta`` for a tool call's
arguments) and ``content_block_stop``, then ``message_delta`` (stop reason, usage) and
``message_stop``; a failure after the start is an ``error`` event. Errors are
``{"type": "error", "error": {"type", "message"}}`` with Laneway's status and stable
code (``laneway_code``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import Response

from laneway.errors import LanewayError
from laneway.providers import ChatRequest, ChatResult, StreamDelta, Usage
from laneway.server._messages import parse_messages_request
from laneway.server._protocol import StreamEncoder
from laneway.server._render import money

__all__ = ["ANTHROPIC_MESSAGES", "AnthropicMessages", "anthropic_error_body", "usage_block"]

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def anthropic_error_body(exc: LanewayError) -> bytes:
    kind = _ERROR_TYPES.get(exc.status)
    if kind is None:
        kind = "invalid_request_error" if exc.status < 500 else "api_error"
    error = {"type": kind, "message": exc.message, "laneway_code": exc.code}
    return orjson.dumps({"type": "error", "error": error})


def usage_block(usage: Usage | None) -> dict[str, int]:
    """Anthropic usage: ``input_tokens`` excludes the cached part of the prompt."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    cached = usage.cached_tokens
    created = usage.cache_creation_tokens
    return {
        "input_tokens": max(0, usage.prompt_tokens - cached - created),
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": created,
    }


def _message_id(request_id: str) -> str:
    """``msg_`` and the request id's unique part (the ids in the ledger and headers)."""
    return "msg_" + request_id.rsplit("-", 1)[-1]


def _arguments(text: str) -> Any:
    """A tool call's ``input``. The adapters refuse arguments that are no JSON object
    (``ChatRequest.object_arguments``) but for a call cut short by ``max_tokens``: the
    answer's ``stop_reason`` is then ``max_tokens``, and its input ``{}``."""
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _event(name: bytes, payload: Mapping[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class _MessagesEncoder:
    """One stream's Anthropic events; tracks which content block is open."""

    __slots__ = ("_blocks", "_id", "_model", "_open", "_tools")

    def __init__(self, request_id: str, model: str) -> None:
        self._id = _message_id(request_id)
        self._model = model
        self._blocks = 0  # blocks started so far
        self._open: str | None = None  # "text" or "tool:<index>"
        self._tools: dict[int, int] = {}  # OpenAI tool-call index → block index

    def _start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _event(b"message_start", {"type": "message_start", "message": message}) + _event(
            b"ping", {"type": "ping"}
        )

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        index = self._blocks - 1
        return _event(b"content_block_stop", {"type": "content_block_stop", "index": index})

    def _open_block(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._open = kind
        index = self._blocks
        self._blocks += 1
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return out + _event(b"content_block_start", start)

    def delta(self, delta: StreamDelta, first: bool) -> bytes:
        out = self._start() if first else b""
        if delta.content:
            if self._open != "text":
                out += self._open_block("text", {"type": "text", "text": ""})
            body = {"type": "text_delta", "text": delta.content}
            out += _event(
                b"content_block_delta",
                {"type": "content_block_delta", "index": self._blocks - 1, "delta": body},
            )
        for call in delta.tool_calls or ():
            out += self._tool_delta(call)
        return out

    def _tool_delta(self, call: Any) -> bytes:
        out = b""
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        if index not in self._tools:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{index}",
                "name": function.get("name") or "",
                "input": {},
            }
            out += self._open_block(f"tool:{index}", block)
            self._tools[index] = self._blocks - 1
        arguments = function.get("arguments")
        if arguments:
            body = {"type": "input_json_delta", "partial_json": arguments}
            out += _event(
                b"content_block_delta",
                {"type": "content_block_delta", "index": self._tools[index], "delta": body},
            )
        return out

    def end(self, usage: Usage | None, finish: str, cost: Decimal | None) -> bytes:
        out = self._close()
        delta = {"stop_reason": _STOP_REASONS.get(finish, "end_turn"), "stop_sequence": None}
        message_delta = {
            "type": "message_delta",
            "delta": delta,
            "usage": usage_block(usage),
            "laneway_cost_usd": money(cost),
        }
        return (
            out
            + _event(b"message_delta", message_delta)
            + _event(b"message_stop", {"type": "message_stop"})
        )

    def error(self, exc: LanewayError) -> bytes:
        return b"event: error\ndata: " + anthropic_error_body(exc) + b"\n\n"


class AnthropicMessages:
    """``POST /v1/messages``."""

    name = "messages"
    needs_prepare = False

    async def prepare(self, request: ChatRequest, key_id: str | None) -> ChatRequest:
        return request

    def credentials(self, headers: Mapping[str, str]) -> str | None:
        key = headers.get("x-api-key")
        if key:
            return "Bearer " + key
        return headers.get("authorization")

    def parse(self, body: bytes, max_depth: int) -> ChatRequest:
        return parse_messages_request(body, max_depth=max_depth)

    def completion(
        self, result: ChatResult, *, request_id: str, created: int, model: str, cost: Decimal | None
    ) -> bytes:
        content: list[dict[str, Any]] = []
        if result.content:
            content.append({"type": "text", "text": result.content})
        for call in result.tool_calls:
            function = call["function"]
            content.append(
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": function["name"],
                    "input": _arguments(function["arguments"]),
                }
            )
        payload = {
            "id": _message_id(request_id),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": _STOP_REASONS.get(result.finish_reason, "end_turn"),
            "stop_sequence": None,
            "usage": usage_block(result.usage),
            "laneway_cost_usd": money(cost),
        }
        return orjson.dumps(payload)

    def encoder(self, request: ChatRequest, *, request_id: str, model: str) -> StreamEncoder:
        return _MessagesEncoder(request_id, model)

    def error_response(self, exc: LanewayError, headers: dict[str, str]) -> Response:
        return Response(
            anthropic_error_body(exc),
            status_code=exc.status,
            media_type="application/json",
            headers=headers,
        )


ANTHROPIC_MESSAGES = AnthropicMessages()
