"""A scripted upstream for malformed-answer tests: a real aiohttp server on loopback
(the fakes' machinery) that answers every POST, whatever the path, with one scripted
JSON body, or with scripted SSE events when the request asks for a stream. Plus the
well-formed answers of each wire format that the tests break one field at a time."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web

from laneway.providers._anthropic import AnthropicAdapter
from laneway.providers._gemini import GeminiAdapter
from laneway.providers._http import UpstreamClient
from laneway.providers._openai_chat import OpenAIChatAdapter
from laneway.providers._status import Endpoint
from laneway.testing._server import FakeUpstreamServer

__all__ = [
    "ANTHROPIC_EVENTS",
    "ANTHROPIC_OK",
    "GEMINI_EVENTS",
    "GEMINI_OK",
    "OPENAI_EVENTS",
    "OPENAI_OK",
    "Adapter",
    "Scripted",
    "adapter",
    "broken",
    "sse",
]

Adapter = OpenAIChatAdapter | AnthropicAdapter | GeminiAdapter

OPENAI_OK: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "up-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}
ANTHROPIC_OK: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "up-model",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 2},
}
GEMINI_OK: dict[str, Any] = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}
    ],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
    "modelVersion": "up-model",
}


def _openai_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"model": "up-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


# Well-formed streams whose second event a test replaces with a malformed one.
OPENAI_EVENTS: list[Any] = [
    _openai_chunk({"role": "assistant", "content": "hi"}),
    _openai_chunk({"content": " there"}),
    _openai_chunk({}, "stop"),
    {"model": "up-model", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
    "[DONE]",
]
ANTHROPIC_EVENTS: list[Any] = [
    {
        "type": "message_start",
        "message": {"model": "up-model", "usage": {"input_tokens": 3, "output_tokens": 1}},
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "hi"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    {"type": "message_stop"},
]
GEMINI_EVENTS: list[Any] = [
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}}]},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": " there"}]}}]},
    {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "!"}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
    },
]


def broken(value: Any, path: Sequence[str | int], replacement: Any) -> Any:
    """A deep copy of ``value`` with the item at ``path`` replaced."""
    result = copy.deepcopy(value)
    target = result
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = replacement
    return result


def sse(events: Sequence[Any]) -> list[bytes]:
    """SSE ``data:`` events; a ``bytes`` item is sent as it is, ``"[DONE]"`` verbatim."""
    out = []
    for event in events:
        if isinstance(event, bytes):
            out.append(event)
        elif event == "[DONE]":
            out.append(b"data: [DONE]\n\n")
        else:
            out.append(b"data: " + orjson.dumps(event) + b"\n\n")
    return out


class Scripted(FakeUpstreamServer):
    """``body`` answers plain requests; ``events`` (SSE) answer streaming ones."""

    def __init__(self, body: Any = None, events: Sequence[Any] = ()) -> None:
        super().__init__()
        self.body = body
        self.events = list(events)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/{tail:.*}", self._answer)]

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        sent = await self.record(request)
        wants_stream = "stream" in request.path or (isinstance(sent, dict) and sent.get("stream"))
        if wants_stream:
            return await self.sse_response(request, sse(self.events), None)
        body = self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)
        return web.Response(body=body, content_type="application/json")


def adapter(provider: str, url: str, client: UpstreamClient) -> Adapter:
    """The ``provider`` adapter pointed at ``url`` (a :class:`Scripted` server)."""
    if provider == "openai":
        return OpenAIChatAdapter(Endpoint("bad", url + "/v1", "up-model", api_key="k"), client)
    if provider == "anthropic":
        return AnthropicAdapter(Endpoint("bad", url, "up-model", api_key="k"), client)
    return GeminiAdapter(Endpoint("bad", url, "up-model", api_key="k"), client)
