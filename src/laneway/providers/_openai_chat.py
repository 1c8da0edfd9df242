"""Adapter for the OpenAI chat-completions wire format.

Serves OpenAI itself and every OpenAI-compatible vendor or self-hosted server
(vLLM, llama.cpp server, Ollama, TGI, Together, Groq …); their differences are
quirks from ``vendors.yaml``, not code:

``max_tokens_field``  ``max_completion_tokens`` (OpenAI) or ``max_tokens`` (default)
``stream_usage``      whether the upstream honours ``stream_options.include_usage``
``unsupported``       OpenAI parameters the vendor rejects (we reject them first, with a 400)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from laneway.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    UnsupportedParameter,
    UpstreamBadResponse,
    UpstreamError,
)
from laneway.providers._http import UpstreamClient, response_limit
from laneway.providers._sse import SSEParser
from laneway.providers._status import Endpoint, describe_body, error_for_status
from laneway.providers._tool_arguments import ArgumentsCheck, check_arguments
from laneway.providers._types import (
    MAX_TOKEN_COUNT,
    ChatRequest,
    ChatResult,
    StreamDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    token_count,
)

__all__ = ["OpenAIChatAdapter", "parse_openai_usage"]

_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})
# Finish reasons passed on as they are; any other value (``"eos"`` …) becomes ``"stop"``.
_FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
_loads = orjson.loads


def parse_openai_usage(raw: Any, provider: str = "openai") -> Usage | None:
    """OpenAI ``usage`` → :class:`Usage`; ``None`` when absent or not trustworthy.

    A count that is not a number (``"abc"``, ``true``, ``1.7``) makes the body malformed
    (:class:`~laneway.errors.UpstreamBadResponse`, so the next deployment is tried). A
    negative count, or one past :data:`MAX_TOKEN_COUNT`, makes the whole usage unknown
    (``None``): it reaches neither the client nor the ledger, which records unknown
    tokens and an unknown cost, never a negative or made-up one.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise UpstreamBadResponse(f"{provider} sent a malformed usage object", upstream_status=200)
    prompt = raw.get("prompt_tokens")
    completion = raw.get("completion_tokens")
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if type(prompt) is not int or type(completion) is not int or type(cached) is not int:
        prompt = token_count(prompt, provider)
        completion = token_count(completion, provider)
        cached = token_count(cached, provider)
    if prompt < 0 or completion < 0 or cached < 0:
        return None
    if prompt > MAX_TOKEN_COUNT or completion > MAX_TOKEN_COUNT or cached > MAX_TOKEN_COUNT:
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)


# Anthropic Messages parameters (``/v1/messages``) that only Anthropic deployments honour.
_ANTHROPIC_ONLY = ("thinking", "top_k")


class OpenAIChatAdapter:
    """:class:`~laneway.providers.ChatModel` speaking ``POST {api_base}/chat/completions``."""

    provider = "openai"

    def __init__(self, endpoint: Endpoint, client: UpstreamClient) -> None:
        self.endpoint = endpoint
        self._client = client
        self._url = endpoint.api_base.rstrip("/") + "/chat/completions"
        self._headers = endpoint.bearer_headers()
        self._unsupported = frozenset(endpoint.quirk("unsupported", ()) or ())
        self._max_tokens_field = endpoint.quirk("max_tokens_field", "max_tokens")
        self._stream_usage = endpoint.quirk("stream_usage", True)

    def check(self, request: ChatRequest) -> None:
        for name in _ANTHROPIC_ONLY:
            if name in request.options:
                raise UnsupportedParameter(
                    f"deployment {self.endpoint.deployment!r} (OpenAI format) does not support "
                    f"{name!r} (an Anthropic Messages parameter)",
                    param=name,
                )
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
            body[self._max_tokens_field] = request.max_tokens
        # the optional parameters one by one, in this order (a loop over their names with
        # getattr cost twice as much, on every request)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.seed is not None:
            body["seed"] = request.seed
        if request.user is not None:
            body["user"] = request.user
        if request.tool_choice is not None:
            body["tool_choice"] = request.tool_choice
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
        if request.response_format is not None:
            body["response_format"] = request.response_format
        if request.stop:
            body["stop"] = list(request.stop)
        if request.tools:
            body["tools"] = request.tools
        if request.options:
            body.update(request.options)
        if stream:
            body["stream"] = True
            if self._stream_usage:
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
                code = code if type(code) is str else None  # may be a number, or worse
            elif isinstance(err, str):  # some compatible servers send a bare string
                message = err[:500]
        except orjson.JSONDecodeError:
            message = describe_body(headers, raw)
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
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(
                f"{self.provider} sent {describe_body(response.headers, response.body)}",
                upstream_status=response.status,
            ) from exc
        except (KeyError, IndexError, TypeError) as exc:
            raise UpstreamBadResponse(
                f"{self.provider} sent a malformed completion body", upstream_status=200
            ) from exc
        if not isinstance(message, dict):
            raise self._malformed("message is not an object")
        content = message.get("content")
        refusal = message.get("refusal")
        logprobs = choice.get("logprobs")
        if not (
            (content is None or type(content) is str)
            and (refusal is None or type(refusal) is str)
            and (logprobs is None or type(logprobs) is dict)
        ):
            raise self._malformed("content, refusal or logprobs has the wrong type")
        finish = _finish_reason(choice.get("finish_reason"))
        if finish == "content_filter" and not content:
            raise ContentFiltered("the upstream's content filter blocked the answer")
        model = payload.get("model")
        tool_calls = _tool_calls(message.get("tool_calls"), self.provider)
        if request.object_arguments:
            check_arguments(tool_calls, self.provider, finish)
        return ChatResult(
            content=content,
            finish_reason=finish,
            model=model if type(model) is str and model else self.endpoint.upstream_model,
            usage=parse_openai_usage(payload.get("usage"), self.provider),
            tool_calls=tool_calls,
            refusal=refusal,
            logprobs=logprobs,
            system_fingerprint=_fingerprint(payload),
        )

    async def embed(
        self, texts: Sequence[str], *, dimensions: int | None, user: str | None
    ) -> tuple[list[list[float]], Usage | None]:
        """``POST {api_base}/embeddings``: one float vector per text, in order, and the
        upstream's usage (``None`` when it sent none)."""
        body: dict[str, Any] = {
            "model": self.endpoint.upstream_model,
            "input": list(texts),
            "encoding_format": "float",
        }
        if dimensions is not None:
            body["dimensions"] = dimensions
        if user is not None:
            body["user"] = user
        url = self.endpoint.api_base.rstrip("/") + "/embeddings"
        response = await self._client.post(
            url,
            self._headers,
            orjson.dumps(body),
            self.endpoint.timeouts,
            limit=response_limit(len(texts)),
        )
        if response.status >= 400:
            raise self._error(response.status, response.headers, response.body)
        try:
            payload = orjson.loads(response.body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(
                f"{self.provider} sent {describe_body(response.headers, response.body)}",
                upstream_status=response.status,
            ) from exc
        data = payload.get("data") if isinstance(payload, dict) else None
        vectors = _embedding_vectors(data, len(texts))
        if vectors is None:
            raise UpstreamBadResponse(
                f"{self.provider} sent a malformed embeddings body", upstream_status=200
            )
        usage = parse_openai_usage(payload.get("usage"), self.provider)  # no completion: 0
        return vectors, usage

    def _malformed(self, what: str) -> UpstreamBadResponse:
        return UpstreamBadResponse(
            f"{self.provider} sent a malformed completion ({what})", upstream_status=200
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        body = self._body(request, stream=True)
        async with self._client.post_stream(
            self._url, self._headers, body, self.endpoint.timeouts
        ) as response:
            if response.status >= 400:
                raise self._error(response.status, response.headers, await response.read_body())
            finished = False
            parser = SSEParser()
            next_chunk = response.chunks().__anext__
            ended = False
            check = ArgumentsCheck(self.provider) if request.object_arguments else None
            while not ended:  # each piece of the body as it arrives, then the body's end
                try:
                    events = parser.feed(await next_chunk())
                except StopAsyncIteration:
                    events, ended = parser.end(), True
                for event in events:
                    if event.data == b"[DONE]":
                        if check is not None:
                            check.end()
                        return
                    delta = self._parse_chunk(event.data)
                    if delta is not None:
                        finished = finished or delta.finish_reason is not None
                        if check is not None:
                            check.feed(delta)
                        yield delta
            # Ended cleanly without [DONE]: complete if a finish_reason came (some servers
            # never send [DONE]), truncated otherwise.
            if not finished:
                raise UpstreamBadResponse(
                    f"{self.provider} stream ended without a finish_reason or [DONE]"
                )

    def _parse_chunk(self, data: bytes) -> StreamDelta | None:
        """One ``data:`` payload → a delta (``None`` for one that says nothing). Run for
        every chunk of every stream: lookups are kept to what the chunk holds."""
        try:
            chunk = _loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(f"{self.provider} sent a malformed stream chunk") from exc
        if type(chunk) is not dict:
            raise UpstreamBadResponse(f"{self.provider} sent a malformed stream chunk")
        if "error" in chunk:
            raise self._error(500, {}, data)
        usage = chunk.get("usage")
        if usage is not None:
            usage = parse_openai_usage(usage, self.provider)
        model = chunk.get("model")
        if model is not None and type(model) is not str:
            model = None
        choices = chunk.get("choices")
        if not choices:  # absent, null or empty (any empty value, as before)
            return StreamDelta(usage=usage, model=model) if usage else None
        if type(choices) is not list:
            raise UpstreamBadResponse(f"{self.provider} sent a stream chunk with bad choices")
        choice = choices[0]
        if type(choice) is not dict:
            raise UpstreamBadResponse(f"{self.provider} sent a stream chunk with a bad choice")
        delta = choice.get("delta") or {}
        if type(delta) is not dict:
            raise UpstreamBadResponse(f"{self.provider} sent a stream chunk with a bad delta")
        content = delta.get("content")
        logprobs = choice.get("logprobs")
        if not (
            (content is None or type(content) is str)
            and (logprobs is None or type(logprobs) is dict)
        ):
            raise UpstreamBadResponse(f"{self.provider} sent a stream chunk with bad content")
        tool_calls: list[ToolCallDelta] | None = delta.get("tool_calls") or None
        if tool_calls is not None:
            _check_tool_call_deltas(tool_calls, self.provider)
        finish = choice.get("finish_reason")
        if finish is not None:
            finish = _finish_reason(finish)
        fingerprint = chunk.get("system_fingerprint")
        if fingerprint is not None:  # as _fingerprint, inlined: most chunks carry one
            fingerprint = fingerprint[:200] if type(fingerprint) is str and fingerprint else None
        # positional: StreamDelta's field order (content, tool_calls, finish_reason, usage,
        # model, logprobs, system_fingerprint); keywords cost twice as much per chunk
        return StreamDelta(content, tool_calls, finish, usage, model, logprobs, fingerprint)


def _fingerprint(payload: dict[str, Any]) -> str | None:
    """The upstream's ``system_fingerprint`` (its backend configuration), when it sent one."""
    value = payload.get("system_fingerprint")
    return value[:200] if type(value) is str and value else None


def _finish_reason(raw: Any) -> str:
    """A known OpenAI finish reason as it is; ``None`` and anything else → ``"stop"``."""
    return raw if type(raw) is str and raw in _FINISH_REASONS else "stop"


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


def _tool_calls(raw: Any, provider: str) -> list[ToolCall]:
    if not raw:
        return []
    if type(raw) is not list:
        raise UpstreamBadResponse(f"{provider} sent tool_calls that are not a list")
    for call in raw:
        function = call.get("function") if type(call) is dict else None
        if not (
            type(function) is dict
            and type(call.get("id", "")) is str
            and type(function.get("name")) is str
            and type(function.get("arguments")) is str
        ):
            raise UpstreamBadResponse(f"{provider} sent a malformed tool call")
    return raw  # already OpenAI-shaped


def _check_tool_call_deltas(raw: Any, provider: str) -> None:
    """Streamed tool-call pieces: a list of objects with an integer ``index`` and, when
    present, a ``function`` object whose ``name``/``arguments`` are strings."""
    if type(raw) is not list:
        raise UpstreamBadResponse(f"{provider} sent tool_calls that are not a list")
    for call in raw:
        if type(call) is not dict or type(call.get("index")) is not int:
            raise UpstreamBadResponse(f"{provider} sent a malformed tool call delta")
        function = call.get("function")
        if function is None:
            continue
        if type(function) is not dict or not all(
            function.get(key) is None or type(function.get(key)) is str
            for key in ("name", "arguments")
        ):
            raise UpstreamBadResponse(f"{provider} sent a malformed tool call delta")


def _embedding_vectors(data: Any, count: int) -> list[list[float]] | None:
    """``data`` of an embeddings answer → ``count`` vectors ordered by ``index``;
    ``None`` when malformed (wrong count, a missing index, a value that is not a number)."""
    if type(data) is not list or len(data) != count:
        return None
    vectors: list[list[float] | None] = [None] * count
    for item in data:
        index = item.get("index") if type(item) is dict else None
        vector = item.get("embedding") if type(item) is dict else None
        if type(index) is not int or not 0 <= index < count or vectors[index] is not None:
            return None
        if type(vector) is not list or not all(type(x) is float or type(x) is int for x in vector):
            return None
        vectors[index] = [float(x) for x in vector]
    return [v for v in vectors if v is not None]


def _default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(type(value).__name__)
