"""Adapter for Google's Gemini API (``generateContent`` / ``streamGenerateContent``).

Wire: ``POST {api_base}/v1beta/models/{model}:generateContent`` and
``…:streamGenerateContent?alt=sse``; the key goes in the ``x-goog-api-key`` header,
never in the URL (URLs end up in logs).

Translation from the OpenAI chat request:

- ``system``/``developer`` messages → ``systemInstruction`` (texts joined in order);
  ``user`` → ``"user"``, ``assistant`` → ``"model"``, ``tool`` → a ``"user"`` turn of
  ``functionResponse`` parts; consecutive turns of the same role are merged (Gemini
  wants alternating turns).
- tool declarations use ``parametersJsonSchema`` and structured output uses
  ``responseJsonSchema``, not ``parameters``/``responseSchema``: OpenAI clients send JSON
  Schema (``additionalProperties``, ``$ref``, ``anyOf`` …), which the JSON-Schema fields
  accept as is, while the older fields take Google's OpenAPI subset and reject those
  keywords with a 400. Passing the schema through unchanged is the faithful choice.
- ``presence_penalty``/``frequency_penalty`` map to ``presencePenalty``/``frequencyPenalty``;
  every other OpenAI-only option, ``user`` and ``parallel_tool_calls: false`` are
  rejected with :class:`UnsupportedParameter` (Gemini may call several functions in one
  turn and has no switch to stop it, so ``parallel_tool_calls: true`` is honoured).
  Options that ask for nothing (``n: 1``, ``logprobs: false``, ``None`` values) pass.
  A tool's ``strict`` flag is not sent: Gemini has no such field.
- Embeddings (:meth:`GeminiAdapter.embed`): ``…:batchEmbedContents``, one request per
  text (``outputDimensionality`` for ``dimensions``), at most ``embed_batch`` texts (a
  vendor quirk, 100 by default: Google's limit) per call; ``user`` is not sent (Gemini
  has no such field). Google's answer carries no usage: the gateway then bills an
  estimate, marked as such.
- Answers: ``thought`` parts are skipped, function calls get ids ``call_<n>`` (their
  index in the answer), ``thoughtsTokenCount`` counts as completion tokens. Errors are
  mapped by ``error.status`` and the structured ``details``, never by message text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from laneway.errors import (
    ContentFiltered,
    InvalidRequest,
    UnsupportedParameter,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamServerError,
)
from laneway.providers._batches import in_batches
from laneway.providers._http import UpstreamClient, response_limit
from laneway.providers._sse import iter_sse
from laneway.providers._status import Endpoint, describe_body, error_for_status
from laneway.providers._types import (
    ChatRequest,
    ChatResult,
    Message,
    StreamDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    token_count,
)

__all__ = ["GeminiAdapter", "gemini_error", "gemini_request_body", "parse_gemini_usage"]

MAX_STOP_SEQUENCES = 5
_OPTION_FIELDS = {"presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty"}
# OpenAI options whose value asks for nothing Gemini would not do anyway (some SDKs send them).
_NEUTRAL_OPTIONS = {"n": 1, "logprobs": False}
_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
# google.rpc.Code names → the HTTP status Google documents for each.
_GOOGLE_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_TOOL_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
_MIME_BY_EXTENSION = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
}
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)
_DURATION = re.compile(r"^(?P<seconds>\d+(?:\.\d+)?)s$")


# -- request translation -------------------------------------------------------


def gemini_request_body(request: ChatRequest) -> dict[str, Any]:
    """The ``GenerateContentRequest`` for ``request``; raises ``InvalidRequest`` /
    ``UnsupportedParameter`` for anything that cannot be translated faithfully."""
    _check_parameters(request)
    system, contents = _contents(request.messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    if request.tools:
        declarations = []
        for tool in request.tools:
            function = tool["function"]
            declaration: dict[str, Any] = {"name": function["name"]}
            if "description" in function:
                declaration["description"] = function["description"]
            if function.get("parameters"):
                declaration["parametersJsonSchema"] = function["parameters"]
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    if request.tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _function_calling(request.tool_choice)}
    return body


def _check_parameters(request: ChatRequest) -> None:
    if request.user is not None:
        raise UnsupportedParameter("Gemini does not accept 'user'", param="user")
    if request.parallel_tool_calls is False:
        raise UnsupportedParameter(
            "Gemini cannot be told to avoid parallel function calls", param="parallel_tool_calls"
        )
    for name, value in request.options.items():
        if name in _OPTION_FIELDS or value is None or _NEUTRAL_OPTIONS.get(name, ...) == value:
            continue
        raise UnsupportedParameter(f"Gemini does not support {name!r}", param=name)
    if len(request.stop) > MAX_STOP_SEQUENCES:
        raise UnsupportedParameter(
            f"Gemini accepts at most {MAX_STOP_SEQUENCES} stop sequences", param="stop"
        )


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.seed is not None:
        config["seed"] = request.seed
    for name, field in _OPTION_FIELDS.items():
        if request.options.get(name) is not None:
            config[field] = request.options[name]
    rf = request.response_format
    kind = None if rf is None else rf.get("type")
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind == "json_schema":
        spec = request.json_schema
        if spec is None or not isinstance(spec.get("schema"), Mapping):
            raise InvalidRequest(
                "response_format.json_schema.schema must be an object", param="response_format"
            )
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = dict(spec["schema"])
    elif kind not in (None, "text"):
        raise UnsupportedParameter(
            f"Gemini does not support response_format {kind!r}", param="response_format"
        )
    return config


def _function_calling(choice: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(choice, str):
        if choice not in _TOOL_MODES:
            raise UnsupportedParameter(f"unknown tool_choice {choice!r}", param="tool_choice")
        return {"mode": _TOOL_MODES[choice]}
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if choice.get("type") != "function" or not isinstance(name, str):
        raise UnsupportedParameter("unsupported tool_choice object", param="tool_choice")
    return {"mode": "ANY", "allowedFunctionNames": [name]}


def _contents(messages: tuple[Message, ...]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_call_id → function name, latest wins

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            system.append(_plain_text(message.get("content")))
        elif role == "user":
            add("user", _user_parts(message.get("content")))
        elif role == "assistant":
            add("model", _model_parts(message, call_names))
        elif role == "tool":
            add("user", [_function_response(message, call_names)])
        else:
            raise InvalidRequest(f"unsupported message role {role!r}", param="messages")
    return system, contents


def _plain_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.get("type") != "text":
            raise UnsupportedParameter(
                "only text parts are allowed in system and tool messages", param="messages"
            )
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif kind == "image_url":
            parts.append(_image_part(str(part.get("image_url", {}).get("url", ""))))
        else:
            raise UnsupportedParameter(
                f"Gemini adapter does not support {kind!r} parts", param="messages"
            )
    return parts


def _image_part(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            raise InvalidRequest("image data URLs must be base64 encoded", param="messages")
        return {"inlineData": {"mimeType": match["mime"], "data": match["data"]}}
    if url.startswith(("http://", "https://")):
        path = url.split("?", 1)[0].split("#", 1)[0]
        extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
        mime = _MIME_BY_EXTENSION.get(extension)
        if mime is None:
            raise UnsupportedParameter(
                f"cannot tell the media type of {url[:100]!r} from its extension",
                param="messages",
            )
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise UnsupportedParameter("image URLs must be data: or http(s) URLs", param="messages")


def _model_parts(message: Message, call_names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = _plain_text(message.get("content"))
    if text:
        parts.append({"text": text})
    for call in message.get("tool_calls") or []:
        function = call["function"]
        try:
            args = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(
                f"tool call {call.get('id')!r} has arguments that are not JSON", param="messages"
            ) from exc
        if not isinstance(args, dict):
            raise InvalidRequest(
                f"tool call {call.get('id')!r} arguments must be a JSON object", param="messages"
            )
        call_names[call["id"]] = function["name"]
        parts.append({"functionCall": {"name": function["name"], "args": args}})
    return parts


def _function_response(message: Message, call_names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = call_names.get(call_id) if call_id is not None else None
    if name is None:
        raise InvalidRequest(
            f"tool message answers unknown tool_call_id {call_id!r}", param="messages"
        )
    text = _plain_text(message.get("content"))
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


# -- response translation ------------------------------------------------------


def parse_gemini_usage(raw: Any, provider: str = "gemini") -> Usage | None:
    """``usageMetadata`` → :class:`Usage` (thinking tokens count as completion tokens).

    A count that is not a number raises :class:`~laneway.errors.UpstreamBadResponse`; a
    negative count makes the whole usage unknown (``None``), never a negative bill.
    """
    if not isinstance(raw, dict):
        return None
    prompt = token_count(raw.get("promptTokenCount"), provider)
    answer = token_count(raw.get("candidatesTokenCount"), provider)
    thoughts = token_count(raw.get("thoughtsTokenCount"), provider)
    cached = token_count(raw.get("cachedContentTokenCount"), provider)
    if min(prompt, answer, thoughts, cached) < 0:
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=answer + thoughts, cached_tokens=cached)


def _split_parts(
    candidate: dict[str, Any], provider: str
) -> tuple[str | None, list[tuple[str, str]]]:
    """Visible text (``None`` when there is none) and ``(name, JSON args)`` calls.

    Parts of an unknown kind are skipped; a part that is not an object, text that is not
    a string or a function call without a name or with non-object ``args`` make the
    answer malformed (:class:`~laneway.errors.UpstreamBadResponse`)."""
    content = candidate.get("content")
    parts = content.get("parts") if type(content) is dict else None
    if (content is not None and parts is None and type(content) is not dict) or (
        parts is not None and type(parts) is not list
    ):
        raise UpstreamBadResponse(f"{provider} sent malformed content", upstream_status=200)
    texts: list[str] = []
    calls: list[tuple[str, str]] = []
    for part in parts or ():
        if type(part) is not dict:
            raise UpstreamBadResponse(f"{provider} sent a malformed part", upstream_status=200)
        if part.get("thought") is True:
            continue
        text = part.get("text")
        if text is not None:
            if type(text) is not str:
                raise UpstreamBadResponse(f"{provider} sent non-text text", upstream_status=200)
            texts.append(text)
        call = part.get("functionCall")
        if call is not None:
            calls.append(_function_call(call, provider))
    return ("".join(texts) if texts else None), calls


def _function_call(call: Any, provider: str) -> tuple[str, str]:
    args = call.get("args") if type(call) is dict else None
    if (
        type(call) is not dict
        or type(call.get("name")) is not str
        or type(args)
        not in (
            dict,
            type(None),
        )
    ):
        raise UpstreamBadResponse(f"{provider} sent a malformed functionCall", upstream_status=200)
    return call["name"], orjson.dumps(args or {}).decode()


def _finish(raw: Any, has_calls: bool) -> str:
    finish = _FINISH.get(str(raw), "stop")
    return "tool_calls" if finish == "stop" and has_calls else finish


def _first_candidate(payload: Any, provider: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise UpstreamBadResponse(f"{provider} sent a malformed body", upstream_status=200)
    candidates = payload.get("candidates")
    if not candidates:
        feedback = payload.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if reason:
            raise ContentFiltered(f"{provider} blocked the prompt: {reason}")
        raise UpstreamBadResponse(f"{provider} sent no candidates", upstream_status=200)
    candidate = candidates[0] if isinstance(candidates, list) else None
    if not isinstance(candidate, dict):
        raise UpstreamBadResponse(f"{provider} sent a malformed candidate", upstream_status=200)
    return candidate


# -- errors ----------------------------------------------------------------------


def gemini_error(
    status: int, headers: Mapping[str, str], raw: bytes, provider: str = "gemini"
) -> UpstreamError:
    """Map a Gemini error response by HTTP status, ``error.status`` and the structured
    ``details`` (``ErrorInfo.reason``, ``RetryInfo.retryDelay``), never by message."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return error_for_status(status, headers, describe_body(headers, raw), provider=provider)
    err = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(err, dict):
        return error_for_status(status, headers, "", provider=provider)
    message = str(err.get("message") or "")[:500]
    google_status = str(err.get("status") or "")
    raw_details = err.get("details")
    details = [d for d in raw_details if isinstance(d, dict)] if type(raw_details) is list else []
    reasons = {str(d.get("reason")) for d in details if str(d.get("@type")).endswith("ErrorInfo")}
    if "API_KEY_INVALID" in reasons or google_status == "FAILED_PRECONDITION":
        # A bad key comes back as 400 INVALID_ARGUMENT; FAILED_PRECONDITION means the
        # account needs billing or its region is not served: both are this deployment's
        # problem, not the client's, so another deployment may still serve the request.
        return UpstreamAuthError(
            f"{provider} refused this deployment ({google_status}): {message}",
            upstream_status=status,
        )
    error = error_for_status(
        _GOOGLE_STATUS.get(google_status, status), headers, message, provider=provider
    )
    error.upstream_status = status
    if error.retry_after is None and isinstance(error, UpstreamRateLimited | UpstreamServerError):
        error.retry_after = _retry_delay(details)
    return error


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    for detail in details:
        if str(detail.get("@type")).endswith("RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match is not None:
                return min(float(match["seconds"]), 3600.0)
    return None


# -- the adapter -------------------------------------------------------------------


class GeminiAdapter:
    """:class:`~laneway.providers.ChatModel` speaking Gemini's ``generateContent``."""

    provider = "gemini"

    def __init__(self, endpoint: Endpoint, client: UpstreamClient) -> None:
        self.endpoint = endpoint
        self._client = client
        root = endpoint.api_base.rstrip("/")
        if not root.endswith(("/v1beta", "/v1")):
            root += "/v1beta"
        base = f"{root}/models/{endpoint.upstream_model}"
        self._url = f"{base}:generateContent"
        self._embed_url = f"{base}:batchEmbedContents"
        self._embed_model = f"models/{endpoint.upstream_model}"
        self._stream_url = f"{base}:streamGenerateContent?alt=sse"
        headers = {"content-type": "application/json", "accept": "application/json"}
        if endpoint.api_key:
            headers["x-goog-api-key"] = endpoint.api_key
        headers.update(endpoint.extra_headers or {})
        self._headers = headers

    def check(self, request: ChatRequest) -> None:
        gemini_request_body(request)

    def _body(self, request: ChatRequest) -> bytes:
        return orjson.dumps(gemini_request_body(request), default=_default)

    async def complete(self, request: ChatRequest) -> ChatResult:
        response = await self._client.post(
            self._url, self._headers, self._body(request), self.endpoint.timeouts
        )
        if response.status >= 400:
            raise gemini_error(response.status, response.headers, response.body, self.provider)
        try:
            payload = orjson.loads(response.body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(
                f"{self.provider} sent a malformed completion body", upstream_status=200
            ) from exc
        candidate = _first_candidate(payload, self.provider)
        text, calls = _split_parts(candidate, self.provider)
        finish = _finish(candidate.get("finishReason"), bool(calls))
        if finish == "content_filter" and not text and not calls:
            reason = candidate.get("finishReason")
            raise ContentFiltered(f"{self.provider} blocked the answer: {reason}")
        tool_calls: list[ToolCall] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(calls)
        ]
        return ChatResult(
            content=text,
            finish_reason=finish,
            model=_model(payload.get("modelVersion")) or self.endpoint.upstream_model,
            usage=parse_gemini_usage(payload.get("usageMetadata"), self.provider),
            tool_calls=tool_calls,
        )

    async def embed(
        self, texts: Sequence[str], *, dimensions: int | None, user: str | None
    ) -> tuple[list[list[float]], Usage | None]:
        """One float vector per text, in order, and the usage when Google sent one
        (``None`` otherwise: the caller estimates). Batches go out concurrently."""
        size = int(self.endpoint.quirk("embed_batch", 100))
        results = await in_batches(texts, size, lambda b: self._embed_batch(b, dimensions))
        vectors: list[list[float]] = []
        prompt: int | None = 0
        for batch_vectors, tokens in results:
            vectors += batch_vectors
            prompt = None if prompt is None or tokens is None else prompt + tokens
        usage = None if prompt is None else Usage(prompt_tokens=prompt, completion_tokens=0)
        return vectors, usage

    async def _embed_batch(
        self, texts: Sequence[str], dimensions: int | None
    ) -> tuple[list[list[float]], int | None]:
        requests: list[dict[str, Any]] = []
        for text in texts:
            item: dict[str, Any] = {
                "model": self._embed_model,
                "content": {"parts": [{"text": text}]},
            }
            if dimensions is not None:
                item["outputDimensionality"] = dimensions
            requests.append(item)
        response = await self._client.post(
            self._embed_url,
            self._headers,
            orjson.dumps({"requests": requests}),
            self.endpoint.timeouts,
            limit=response_limit(len(texts)),
        )
        if response.status >= 400:
            raise gemini_error(response.status, response.headers, response.body, self.provider)
        try:
            payload = orjson.loads(response.body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(
                f"{self.provider} sent {describe_body(response.headers, response.body)}",
                upstream_status=response.status,
            ) from exc
        vectors = _embedding_values(payload, len(texts))
        if vectors is None:
            raise UpstreamBadResponse(
                f"{self.provider} sent a malformed embeddings body", upstream_status=200
            )
        meta = payload.get("usageMetadata")
        tokens = meta.get("promptTokenCount") if isinstance(meta, dict) else None
        return vectors, tokens if type(tokens) is int and tokens >= 0 else None

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        body = self._body(request)
        async with self._client.post_stream(
            self._stream_url, self._headers, body, self.endpoint.timeouts
        ) as response:
            if response.status >= 400:
                raw = await response.read_body()
                raise gemini_error(response.status, response.headers, raw, self.provider)
            state = _StreamState(self.provider)
            async for event in iter_sse(response.lines()):
                delta = state.parse(event.data)
                if delta is not None:
                    yield delta
            if not state.finished:
                raise UpstreamBadResponse(f"{self.provider} stream ended before a finishReason")
            if state.usage is not None:
                yield StreamDelta(usage=state.usage, model=state.model)


class _StreamState:
    """What a stream carries from one chunk to the next."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.calls = 0
        self.finished = False
        self.usage: Usage | None = None
        self.model: str | None = None

    def parse(self, data: bytes) -> StreamDelta | None:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(f"{self.provider} sent a malformed stream chunk") from exc
        if not isinstance(chunk, dict):
            raise UpstreamBadResponse(f"{self.provider} sent a malformed stream chunk")
        if "error" in chunk:
            raise gemini_error(500, {}, data, self.provider)
        self.model = _model(chunk.get("modelVersion")) or self.model
        self.usage = parse_gemini_usage(chunk.get("usageMetadata"), self.provider) or self.usage
        feedback = chunk.get("promptFeedback")
        blocked = isinstance(feedback, dict) and bool(feedback.get("blockReason"))
        if not chunk.get("candidates") and not blocked:
            return None  # a chunk with usage or metadata only
        candidate = _first_candidate(chunk, self.provider)
        text, calls = _split_parts(candidate, self.provider)
        tool_deltas: list[ToolCallDelta] = []
        for name, args in calls:
            index = self.calls
            self.calls += 1
            tool_deltas.append(
                {
                    "index": index,
                    "id": f"call_{index}",
                    "type": "function",
                    "function": {"name": name, "arguments": args},
                }
            )
        finish = None
        if candidate.get("finishReason"):
            finish = _finish(candidate["finishReason"], self.calls > 0)
            self.finished = True
        if text is None and not tool_deltas and finish is None:
            return None
        return StreamDelta(
            content=text, tool_calls=tool_deltas or None, finish_reason=finish, model=self.model
        )


def _embedding_values(payload: Any, count: int) -> list[list[float]] | None:
    """``embeddings[].values`` of a ``batchEmbedContents`` answer, ``count`` of them;
    ``None`` when malformed (wrong count, a value that is not a number)."""
    items = payload.get("embeddings") if isinstance(payload, dict) else None
    if type(items) is not list or len(items) != count:
        return None
    vectors = []
    for item in items:
        values = item.get("values") if type(item) is dict else None
        if type(values) is not list or not all(type(x) is float or type(x) is int for x in values):
            return None
        vectors.append([float(x) for x in values])
    return vectors


def _model(raw: Any) -> str | None:
    return raw if type(raw) is str and raw else None


def _default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(type(value).__name__)
