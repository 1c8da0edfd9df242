"""Rendering OpenAI JSON, SSE chunks and error bodies (the one place errors become bodies)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from laneway.errors import LanewayError
from laneway.providers import ChatResult, StreamDelta, Usage

__all__ = [
    "DONE",
    "error_body",
    "error_event",
    "money",
    "render_chunk",
    "render_completion",
    "render_usage_chunk",
    "usage_json",
]

DONE = b"data: [DONE]\n\n"


def money(value: Decimal | None) -> str | None:
    """Money in JSON: a decimal string, ``None`` (null) when unknown."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def usage_json(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def error_body(exc: LanewayError) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": exc.message,
                "type": exc.type,
                "param": exc.param,
                "code": exc.code,
            }
        }
    )


def error_event(exc: LanewayError) -> bytes:
    """The terminal SSE event sent when a stream fails after it started (no [DONE])."""
    return b"data: " + error_body(exc) + b"\n\n"


def render_completion(
    result: ChatResult, *, request_id: str, created: int, model: str, cost: Decimal | None
) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": result.content}
    if result.tool_calls:
        message["tool_calls"] = result.tool_calls
    if result.refusal is not None:
        message["refusal"] = result.refusal
    payload: dict[str, Any] = {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": result.finish_reason,
                "logprobs": result.logprobs,
            }
        ],
        "usage": usage_json(result.usage),
        "laneway_cost_usd": money(cost),
    }
    return orjson.dumps(payload)


def render_chunk(
    delta: StreamDelta, *, request_id: str, created: int, model: str, first: bool
) -> bytes:
    body: dict[str, Any] = {}
    if first:
        body["role"] = "assistant"
        body["content"] = delta.content or ""
    elif delta.content is not None:
        body["content"] = delta.content
    if delta.tool_calls:
        body["tool_calls"] = delta.tool_calls
    choice: dict[str, Any] = {"index": 0, "delta": body, "finish_reason": delta.finish_reason}
    if delta.logprobs is not None:  # only when asked for: the usual chunk stays as small
        choice["logprobs"] = delta.logprobs
    payload = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [choice],
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def render_usage_chunk(
    usage: Usage | None, *, request_id: str, created: int, model: str, cost: Decimal | None
) -> bytes:
    payload = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_json(usage),
        "laneway_cost_usd": money(cost),
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"
