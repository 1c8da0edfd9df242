"""Rendering OpenAI JSON, SSE chunks and error bodies (the one place errors become bodies),
and writing a stream of rendered SSE events to the client in as few writes as can be."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Callable, Generator
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from starlette.types import Send

from laneway.errors import LanewayError
from laneway.providers import ChatResult, StreamDelta, Usage

__all__ = [
    "DONE",
    "ChunkRenderer",
    "error_body",
    "error_event",
    "money",
    "render_chunk",
    "render_completion",
    "render_usage_chunk",
    "send_events",
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


class ChunkRenderer:
    """The ``chat.completion.chunk`` events of one stream, as :func:`render_chunk` renders
    them, byte for byte. What every chunk of the stream shares (id, created, model) is
    rendered once; a plain content delta — most of a stream — is then two small
    concatenations around the JSON string of its text instead of a dict tree to encode."""

    __slots__ = ("_head",)

    def __init__(self, *, request_id: str, created: int, model: str) -> None:
        self._head = (
            b'data: {"id":'
            + orjson.dumps(request_id)
            + b',"object":"chat.completion.chunk","created":'
            + orjson.dumps(created)
            + b',"model":'
            + orjson.dumps(model)
            + b',"choices":[{"index":0,"delta":'
        )

    def chunk(self, delta: StreamDelta, first: bool) -> bytes:
        content = delta.content
        if first or delta.tool_calls or content is None:
            body = orjson.dumps(_delta_body(delta, first))
        else:
            body = b'{"content":' + orjson.dumps(content) + b"}"
        finish = delta.finish_reason
        tail = b',"finish_reason":null' if finish is None else _finish_json(finish)
        if delta.logprobs is not None:
            tail += b',"logprobs":' + orjson.dumps(delta.logprobs)
        return self._head + body + tail + b"}]}\n\n"


def _finish_json(finish: str) -> bytes:
    return b',"finish_reason":' + orjson.dumps(finish)


def _delta_body(delta: StreamDelta, first: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if first:
        body["role"] = "assistant"
        body["content"] = delta.content or ""
    elif delta.content is not None:
        body["content"] = delta.content
    if delta.tool_calls:
        body["tool_calls"] = delta.tool_calls
    return body


def render_chunk(
    delta: StreamDelta, *, request_id: str, created: int, model: str, first: bool
) -> bytes:
    body = _delta_body(delta, first)
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


_T = TypeVar("_T")
# A batch of ready events is written once it reaches this size, even if more are ready.
_BATCH_BYTES = 32 * 1024


async def send_events(
    items: AsyncIterator[_T],
    render: Callable[[_T], bytes],
    send: Send,
    *,
    held: bytes = b"",
    before_cancel: Callable[[BaseException], None] | None = None,
) -> None:
    """Write ``held`` and then each of ``items`` rendered (SSE events) as the ASGI
    response body, and end the body.

    Events that are ready without waiting go out together in one write: when the upstream
    delivered several chunks while the gateway was busy, they leave in one ``send`` (one
    socket write, as a byte relay would) instead of one each. What is held is written the
    moment ``items`` would wait, before it waits, so no event is delayed behind one that
    has not arrived. To know that, each ``__anext__`` is stepped by hand: a step that
    finishes at once produced a ready item; one that yields is waiting, and is awaited
    after the write exactly as ``await`` would have (same futures, same cancellation).

    If a write fails while a step waits (the client left, the task was cancelled),
    ``before_cancel`` is told the write's exception, the waiting step is cancelled where
    it waits (as a cancellation of the task would have done) and the exception is raised.
    ``render`` is called between steps, never while one waits, so what it raises leaves
    ``items`` suspended at a ``yield``, as a plain ``async for`` would (what is held is
    written first).
    """
    parts: list[bytes] = [held] if held else []
    size = len(held)
    next_item = items.__anext__
    while True:
        step = next_item().__await__()
        try:
            pending = step.send(None)
        except StopIteration as done:
            item: _T = done.value
        except StopAsyncIteration:
            break
        else:  # the source must wait: what is held goes out now
            if parts:
                body = parts[0] if len(parts) == 1 else b"".join(parts)
                parts.clear()
                size = 0
                try:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                except BaseException as exc:
                    if before_cancel is not None:
                        before_cancel(exc)
                    await _cancel_step(step, pending)
                    raise
            try:
                item = await _finish_step(step, pending)
            except StopAsyncIteration:
                break
        try:
            event = render(item)
        except BaseException:  # what was rendered before still reaches the client
            if parts:
                body = b"".join(parts)
                await send({"type": "http.response.body", "body": body, "more_body": True})
            raise
        if event:
            parts.append(event)
            size += len(event)
            if size >= _BATCH_BYTES:
                body = b"".join(parts)
                parts.clear()
                size = 0
                await send({"type": "http.response.body", "body": body, "more_body": True})
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    await send({"type": "http.response.body", "body": body, "more_body": False})


@types.coroutine
def _finish_step(step: Generator[Any, Any, _T], pending: Any) -> Generator[Any, Any, _T]:
    """The rest of a started ``__anext__`` step: passes what it waits for up to the task
    and what the task sends or throws back down (what ``await`` does)."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            step.close()
            raise
        except BaseException as exc:
            try:
                pending = step.throw(exc)
            except StopIteration as done:
                result: _T = done.value
                return result
        else:
            try:
                pending = step.send(sent)
            except StopIteration as done:
                result = done.value
                return result


async def _cancel_step(step: Generator[Any, Any, Any], pending: Any) -> None:
    """Cancel a step where it waits and let it unwind (its clean-up may await); what it
    ends with is dropped: the caller raises the write's error."""
    try:
        pending = step.throw(asyncio.CancelledError())
    except BaseException:  # it ended: StopIteration, the cancellation or an error
        return
    try:
        await _finish_step(step, pending)
    except BaseException:  # as above
        return
