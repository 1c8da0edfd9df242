"""A fake upstream speaking OpenAI's chat-completions wire protocol (JSON and SSE)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
from aiohttp import web

from laneway.testing._server import (
    FakeReply,
    FakeTurn,
    FakeUpstreamServer,
    Fault,
    broken_json,
    count_tokens,
    json_response,
)

__all__ = ["FakeOpenAI"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class FakeOpenAI(FakeUpstreamServer):
    """``POST /v1/chat/completions`` (also ``/chat/completions``) and ``GET /v1/models``.

    ``api_key``, when set, is required as a bearer token (401 otherwise).
    """

    def __init__(self, *, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self._chat),
            web.post("/chat/completions", self._chat),
            web.post("/v1/embeddings", self._embeddings),
            web.get("/v1/models", self._models),
        ]

    async def _models(self, request: web.Request) -> web.Response:
        return json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    def _turn(self, body: dict[str, Any]) -> FakeTurn:
        messages = body.get("messages") or []
        last_user = next(
            (_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        tools = tuple(t["function"]["name"] for t in body.get("tools") or [])
        rf = body.get("response_format") or {}
        return FakeTurn(
            last_user_text=last_user,
            tool_names=tools,
            tool_choice_none=body.get("tool_choice") == "none",
            last_is_tool_result=bool(messages) and messages[-1].get("role") == "tool",
            wants_json=rf.get("type") in ("json_object", "json_schema"),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            body=body,
        )

    @staticmethod
    def stream_failure(fault: Fault) -> bytes:
        """Chat completions' in-stream error: a ``data:`` event holding ``error``."""
        error = {
            "message": fault.message or f"scripted in-stream error {fault.status}",
            "type": _ERROR_TYPES.get(fault.status, "server_error"),
            "param": None,
            "code": fault.error_code,
        }
        return b"data: " + orjson.dumps({"error": error}) + b"\n\n"

    def error_body(self, fault: Fault) -> web.Response:
        code = fault.error_code
        payload = {
            "error": {
                "message": fault.message or f"scripted error {fault.status}",
                "type": _ERROR_TYPES.get(fault.status, "server_error"),
                "param": None,
                "code": code,
            }
        }
        headers = {}
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        return json_response(payload, status=fault.status, headers=headers)

    async def _open(self, request: web.Request) -> tuple[Any, Fault | None, web.Response | None]:
        """Record a request, take its scripted fault and check the key: the body, the
        fault and, when the answer is already decided (401, a fault), that answer."""
        body = await self.record(request)
        fault = self.take_fault()
        await self.before_answer(request, fault)
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            denied = Fault("status", status=401, error_code="invalid_api_key")
            return body, fault, self.error_body(denied)
        return body, fault, self.fault_response(fault)

    async def _embeddings(self, request: web.Request) -> web.Response:
        """Deterministic vectors (from a hash of each text), ``dimensions`` long (8 by
        default), and a ``usage`` counted like the chat route's."""
        body, _, early = await self._open(request)
        if early is not None:
            return early
        texts = body.get("input") if isinstance(body, dict) else None
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return self.error_body(Fault("status", status=400, error_code="invalid_input"))
        size = body.get("dimensions") or 8
        tokens = sum(count_tokens(t) for t in texts)
        return json_response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": _fake_vector(t, size)}
                    for i, t in enumerate(texts)
                ],
                "model": body.get("model") or self.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, fault, early = await self._open(request)
        if early is not None:
            return early
        if not isinstance(body, dict):
            return self.error_body(Fault("status", status=400, error_code="invalid_json"))
        turn = self._turn(body)
        reply = self.responder(turn)
        text, finish = _truncate(reply, turn.max_tokens)
        prompt_tokens = count_tokens(orjson.dumps(body.get("messages")).decode())
        completion_tokens = count_tokens(text) + sum(count_tokens(a) for _, a in reply.tool_calls)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = self._stream_events(text, reply, finish, usage if include_usage else None)
            failure = self.stream_failure(fault) if fault is not None else b""
            return await self.sse_response(request, events, fault, failure)
        if fault is not None and fault.kind == "malformed":
            return broken_json(b'{"id": "chatcmpl-x", "choices": [')
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if reply.tool_calls:
            message["tool_calls"] = _tool_calls(reply)
        return json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or self.model,
                "choices": [
                    {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                ],
                "usage": usage,
                "system_fingerprint": "fp_fake",
            }
        )

    def _stream_events(
        self, text: str, reply: FakeReply, finish: str, usage: dict[str, Any] | None
    ) -> list[bytes]:
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "system_fingerprint": "fp",
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            payload = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
                ],
            }
            return b"data: " + orjson.dumps(payload) + b"\n\n"

        events = [chunk({"role": "assistant", "content": ""})]
        for piece in _pieces(text):
            events.append(chunk({"content": piece}))
        for index, call in enumerate(_tool_calls(reply)):
            name_delta = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            events.append(chunk({"tool_calls": [name_delta]}))
            for piece in _pieces(call["function"]["arguments"], size=8):
                events.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
        events.append(chunk({}, finish))
        if usage is not None:
            events.append(
                b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
            )
        events.append(b"data: [DONE]\n\n")
        return events


def _fake_vector(text: str, size: int) -> list[float]:
    """The fake's embedding of ``text``: ``size`` floats in [-1, 1) from its SHA-256
    (exact in float32, so a base64 round trip gives the same numbers back)."""
    seed = hashlib.sha256(text.encode()).digest()
    return [(seed[i % 32] - 128) / 128 for i in range(size)]


def _pieces(text: str, size: int = 0) -> list[str]:
    """Split like a tokenizer would: words with their leading space, or fixed sizes."""
    if not text:
        return []
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


def _truncate(reply: FakeReply, max_tokens: int | None) -> tuple[str, str]:
    if reply.tool_calls:
        return reply.text, "tool_calls"
    if max_tokens is not None and count_tokens(reply.text) > max_tokens:
        return reply.text[: max_tokens * 4], "length"
    return reply.text, "stop"


def _tool_calls(reply: FakeReply) -> list[dict[str, Any]]:
    return [
        {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
        for i, (name, args) in enumerate(reply.tool_calls)
    ]
