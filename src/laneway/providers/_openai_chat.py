"""Adapter for the OpenAI chat-completions wire format.

Serves OpenAI itself and every OpenAI-compatible vendor or self-hosted server
(vLLM, llama.cpp server, Ollama, TGI, Together, Groq …); their differences are
quirks from ``vendors.yaml``, not code:

``max_tokens_field``  ``max_completion_tokens`` (OpenAI) or ``max_tokens`` (default)
``stream_usage``      whether the upstream honours ``stream_options.include_usage``
``unsupported``       OpenAI parameters the vendor rejects (we reject them first, with a 400)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from laneway.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    UnsupportedParameter,
    UpstreamBadResponse,
    UpstreamError,
)
from laneway.providers._http import UpstreamClient
from laneway.providers._sse import iter_sse
from laneway.providers._status import Endpoint, error_for_status
from laneway.providers._types import (
    ChatRequest,
    ChatResult,
    StreamDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = ["OpenAIChatAdapter", "parse_openai_usage"]

_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})


def parse_openai_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )


class OpenAIChatAdapter:
    """:class:`~laneway.providers.ChatModel` speaking ``POST {api_base}/chat/completions``."""

    provider = "openai"

    def __init__(self, endpoint: Endpoint, client: UpstreamClient) -> None:
        self.endpoint = endpoint
        self._client = client
        self._url = endpoint.api_base.rstrip("/") + "/chat/completions"
        headers = {"content-type": "application/json", "accept": "application/json"}
        if endpoint.api_key:
            headers["authorization"] = f"Bearer {endpoint.api_key}"
        headers.update(endpoint.extra_headers or {})
        self._headers = headers
        self._unsupported = frozenset(endpoint.quirk("unsupported", ()) or ())

    def check(self, request: ChatRequest) -> None:
        for name in self._unsupported:
            if name in request.options or getattr(request, name, None) not in (None, (), False):
                raise UnsupportedParameter(
                    f"deployment {self.endpoint.deployment!r} does not support {name!r}",
                    param=name,
                )

    def _body(self, request: ChatRequest, *, stream: bool) -> bytes:
        body: dict[str, Any] = {
            "model": self.endpoint.upstream_model,
            "messages": request.messages,
        }
        if request.max_tokens is not None:
            body[self.endpoint.quirk("max_tokens_field", "max_tokens")] = request.max_tokens
        for name in (
            "temperature",
            "top_p",
            "seed",
            "user",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
        ):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.stop:
            body["stop"] = list(request.stop)
        if request.tools:
            body["tools"] = request.tools
        body.update(request.options)
        if stream:
            body["stream"] = True
            if self.endpoint.quirk("stream_usage", True):
                body["stream_options"] = {"include_usage": True}
        return orjson.dumps(body, default=_default)

    def _error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        message, code = "", None
        try:
            payload = orjson.loads(raw)
            err = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(err, dict):
                message = str(err.get("message") or "")[:500]
                code = err.get("code") or err.get("type")
            elif isinstance(err, str):  # some compatible servers send a bare string
                message = err[:500]
        except orjson.JSONDecodeError:
            message = raw[:200].decode("utf-8", "replace")
        return _map_code(code, status, headers, message, self.provider)

    async def complete(self, request: ChatRequest) -> ChatResult:
        response = await self._client.post(
            self._url, self._headers, self._body(request, stream=False), self.endpoint.timeouts
        )
        if response.status >= 400:
            raise self._error(response.status, response.headers, response.body)
        try:
            payload = orjson.loads(response.body)
            choice = payload["choices"][0]
            message = choice["message"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
            raise UpstreamBadResponse(
                f"{self.provider} sent a malformed completion body", upstream_status=200
            ) from exc
        finish = choice.get("finish_reason") or "stop"
        if finish == "content_filter" and not message.get("content"):
            raise ContentFiltered("the upstream's content filter blocked the answer")
        return ChatResult(
            content=message.get("content"),
            finish_reason=finish,
            model=str(payload.get("model") or self.endpoint.upstream_model),
            usage=parse_openai_usage(payload.get("usage")),
            tool_calls=_tool_calls(message.get("tool_calls")),
            refusal=message.get("refusal"),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        body = self._body(request, stream=True)
        async with self._client.post_stream(
            self._url, self._headers, body, self.endpoint.timeouts
        ) as response:
            if response.status >= 400:
                raise self._error(response.status, response.headers, await response.read_body())
            done = False
            async for event in iter_sse(response.lines()):
                if event.data == b"[DONE]":
                    done = True
                    break
                delta = self._parse_chunk(event.data)
                if delta is not None:
                    yield delta
            if not done:
                raise UpstreamBadResponse(f"{self.provider} stream ended without [DONE]")

    def _parse_chunk(self, data: bytes) -> StreamDelta | None:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(f"{self.provider} sent a malformed stream chunk") from exc
        if not isinstance(chunk, dict):
            raise UpstreamBadResponse(f"{self.provider} sent a malformed stream chunk")
        if "error" in chunk:
            raise self._error(500, {}, data)
        usage = parse_openai_usage(chunk.get("usage"))
        choices = chunk.get("choices") or []
        if not choices:
            return StreamDelta(usage=usage, model=chunk.get("model")) if usage else None
        choice = choices[0]
        delta = choice.get("delta") or {}
        tool_calls: list[ToolCallDelta] | None = delta.get("tool_calls") or None
        return StreamDelta(
            content=delta.get("content"),
            tool_calls=tool_calls,
            finish_reason=choice.get("finish_reason"),
            usage=usage,
            model=chunk.get("model"),
        )


def _map_code(
    code: Any, status: int, headers: Mapping[str, str], message: str, provider: str
) -> UpstreamError:
    if code in _CONTEXT_CODES:
        return ContextLengthExceeded(
            f"{provider}: context length exceeded: {message}", upstream_status=status
        )
    if code in _FILTER_CODES:
        return ContentFiltered(f"{provider} content filter: {message}", upstream_status=status)
    return error_for_status(status, headers, message, provider=provider)


def _tool_calls(raw: Any) -> list[ToolCall]:
    if not raw:
        return []
    if not isinstance(raw, list):
        raise UpstreamBadResponse("tool_calls is not a list")
    return raw  # already OpenAI-shaped


def _default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(type(value).__name__)
