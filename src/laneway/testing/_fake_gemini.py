"""A fake upstream speaking Google's Gemini API (``generateContent``, JSON and SSE)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from aiohttp import web

from laneway.testing._fake_openai import _fake_vector as fake_vector
from laneway.testing._server import (
    FakeReply,
    FakeTurn,
    FakeUpstreamServer,
    Fault,
    broken_json,
    count_tokens,
    json_response,
)

__all__ = ["FakeGemini"]

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_SAFETY = [
    {"category": category, "probability": "NEGLIGIBLE"}
    for category in (
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    )
]


def _google_error(
    status: int, message: str, google_status: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Google's error body: ``{"error": {"code", "message", "status", "details"?}}``."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": google_status or _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    error.update(extra)
    return {"error": error}


class FakeGemini(FakeUpstreamServer):
    """``POST /v1beta/models/{model}:generateContent``, ``…:streamGenerateContent`` and
    ``…:batchEmbedContents`` (at most 100 requests, each naming ``models/{model}`` as
    the URL does; vectors of ``outputDimensionality`` values, 8 by default, the same as
    the fake OpenAI's for the same text; no usage, as Google sends none).

    ``api_key``, when set, is required in ``x-goog-api-key``: a missing key is answered
    403 ``PERMISSION_DENIED`` and a wrong one 400 ``INVALID_ARGUMENT`` with the
    ``API_KEY_INVALID`` reason, as Google does. A ``Fault("status")`` answers with
    ``error_code`` as the Google status name (defaults by HTTP status) and, for
    ``retry_after``, both the header and a ``RetryInfo`` detail.
    """

    def __init__(self, *, api_key: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("model", "gemini-2.5-flash")
        super().__init__(**kwargs)
        self.api_key = api_key

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1beta/models/{target}", self._generate)]

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if not self.api_key:
            return None
        key = request.headers.get("x-goog-api-key")
        if key is None:
            body = _google_error(
                403, "Method doesn't allow unregistered callers.", "PERMISSION_DENIED"
            )
            return json_response(body, status=403)
        if key != self.api_key:
            detail = {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
            body = _google_error(
                400, "API key not valid. Please pass a valid API key.", details=[detail]
            )
            return json_response(body, status=400)
        return None

    def error_body(self, fault: Fault) -> web.Response:
        headers: dict[str, str] = {}
        extra: dict[str, Any] = {}
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
            extra["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{fault.retry_after:g}s",
                }
            ]
        body = _google_error(
            fault.status, f"scripted error {fault.status}", fault.error_code, **extra
        )
        return json_response(body, status=fault.status, headers=headers)

    def _turn(self, body: dict[str, Any]) -> FakeTurn:
        contents = body.get("contents") or []
        last_user = ""
        for content in reversed(contents):
            texts = [p["text"] for p in content.get("parts") or [] if "text" in p]
            if content.get("role") == "user" and texts:
                last_user = " ".join(texts)
                break
        tools = tuple(
            d["name"] for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []
        )
        calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        config = body.get("generationConfig") or {}
        last_parts = contents[-1].get("parts") or [] if contents else []
        return FakeTurn(
            last_user_text=last_user,
            tool_names=tuple(calling.get("allowedFunctionNames") or tools),
            tool_choice_none=calling.get("mode") == "NONE",
            last_is_tool_result=any("functionResponse" in p for p in last_parts),
            wants_json=config.get("responseMimeType") == "application/json",
            max_tokens=config.get("maxOutputTokens"),
            body=body,
        )

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        fault = self.take_fault()
        await self.before_answer(request, fault)
        model, _, method = request.match_info["target"].rpartition(":")
        methods = ("generateContent", "streamGenerateContent", "batchEmbedContents")
        if method not in methods or not model:
            return json_response(_google_error(404, "Not Found"), status=404)
        auth_error = self._auth_error(request)
        if auth_error is not None:
            return auth_error
        early = self.fault_response(fault)
        if early is not None:
            return early
        if method == "batchEmbedContents":
            return _batch_embed(body, model, fault)
        if not isinstance(body, dict) or not body.get("contents"):
            message = "* GenerateContentRequest.contents: contents is not specified"
            return json_response(_google_error(400, message), status=400)
        turn = self._turn(body)
        reply = self.responder(turn)
        text, finish = _truncate(reply.text, turn.max_tokens)
        prompt = count_tokens(orjson.dumps(body["contents"]).decode())
        response_id = hashlib.sha256(orjson.dumps(body)).hexdigest()[:22]
        meta = {"modelVersion": model, "responseId": response_id}
        if method == "streamGenerateContent":
            chunks = _chunks(text, reply, finish, prompt, meta)
            if request.query.get("alt") != "sse":  # without alt=sse Google sends a JSON array
                return json_response(chunks)
            events = [b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks]
            return await self.sse_response(request, events, fault)
        if fault is not None and fault.kind == "malformed":
            return broken_json(b'{"candidates": [{"content": {"parts": [')
        parts = _parts(text, reply)
        completion = count_tokens(text) + sum(count_tokens(a) for _, a in reply.tool_calls)
        return json_response(
            {
                "candidates": [_candidate(parts, finish)],
                "usageMetadata": _usage(prompt, completion),
                **meta,
            }
        )


def _batch_embed(body: Any, model: str, fault: Fault | None) -> web.Response:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        message = "* BatchEmbedContentsRequest.requests: requests is not specified"
        return json_response(_google_error(400, message), status=400)
    if len(requests) > 100:
        message = "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch"
        return json_response(_google_error(400, message), status=400)
    embeddings = []
    for i, item in enumerate(requests):
        if not isinstance(item, dict) or item.get("model") != f"models/{model}":
            message = f"requests[{i}].model: must be the model of the URL, models/{model}"
            return json_response(_google_error(400, message), status=400)
        parts = (item.get("content") or {}).get("parts") or []
        text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
        size = item.get("outputDimensionality") or 8
        embeddings.append({"values": fake_vector(text, size)})
    if fault is not None and fault.kind == "malformed":
        return broken_json(b'{"embeddings": [')
    return json_response({"embeddings": embeddings})


def _candidate(parts: list[dict[str, Any]] | None, finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    if parts:
        candidate["content"] = {"parts": parts, "role": "model"}
    if finish is not None:
        candidate["finishReason"] = finish
        candidate["safetyRatings"] = _SAFETY
    return candidate


def _usage(prompt: int, completion: int | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if completion is not None:
        usage["candidatesTokenCount"] = completion
    usage["totalTokenCount"] = prompt + (completion or 0)
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return usage


def _parts(text: str, reply: FakeReply) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    for name, args in reply.tool_calls:
        parts.append({"functionCall": {"name": name, "args": orjson.loads(args)}})
    return parts


def _chunks(
    text: str, reply: FakeReply, finish: str, prompt: int, meta: dict[str, Any]
) -> list[dict[str, Any]]:
    """Stream chunks as Google sends them: text split by words, function calls whole,
    ``finishReason`` and the full ``usageMetadata`` on the last chunk."""
    pieces: list[list[dict[str, Any]]] = []
    words = text.split(" ") if text else []
    pieces.extend([{"text": w if i == 0 else " " + w}] for i, w in enumerate(words))
    calls = _parts("", reply)
    if calls:
        pieces.append(calls)
    if not pieces:
        pieces.append([])
    completion = count_tokens(text) + sum(count_tokens(a) for _, a in reply.tool_calls)
    chunks = []
    for index, parts in enumerate(pieces):
        last = index == len(pieces) - 1
        chunks.append(
            {
                "candidates": [_candidate(parts, finish if last else None)],
                "usageMetadata": _usage(prompt, completion if last else None),
                **meta,
            }
        )
    return chunks


def _truncate(text: str, max_tokens: int | None) -> tuple[str, str]:
    if max_tokens is not None and count_tokens(text) > max_tokens:
        return text[: max_tokens * 4], "MAX_TOKENS"
    return text, "STOP"
