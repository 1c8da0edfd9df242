"""Adapter for Hugging Face text-embeddings-inference's native route (``POST {api_base}/embed``).

A vendor row with ``format: tei`` (``vendor: tei`` in a deployment; TEI's OpenAI route,
``/v1/embeddings``, is served by the OpenAI-format adapter with any OpenAI-compatible
row). Body ``{"inputs": [...]}`` (TEI's defaults: normalised vectors, no truncation: a
text over the model's length is the upstream's 413/422, never silently cut); answer a
bare array of vectors in input order. TEI's body has no usage: the token count comes
from its ``x-compute-tokens`` header when present (else the gateway estimates). Texts
go out in batches of at most ``max_batch`` (a vendor quirk, default 32: TEI's
``--max-client-batch-size`` default), concurrently.

TEI serves embeddings only: a chat request is refused by :meth:`check` (400, never
sent). ``dimensions`` is refused too (``/embed`` returns the model's own size);
``user`` is not sent (TEI has no such field). Errors ``{"error", "error_type"}`` are
mapped by HTTP status; 424 (the model backend failed) counts as a server error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from laneway.errors import UnsupportedParameter, UpstreamBadResponse, UpstreamError
from laneway.providers._batches import in_batches
from laneway.providers._http import UpstreamClient, response_limit
from laneway.providers._status import Endpoint, describe_body, error_for_status
from laneway.providers._types import MAX_TOKEN_COUNT, ChatRequest, ChatResult, StreamDelta, Usage

__all__ = ["TEIAdapter"]


class TEIAdapter:
    """Embeddings from a self-hosted text-embeddings-inference server."""

    provider = "tei"

    def __init__(self, endpoint: Endpoint, client: UpstreamClient) -> None:
        self.endpoint = endpoint
        self._client = client
        self._url = endpoint.api_base.rstrip("/") + "/embed"
        self._headers = endpoint.bearer_headers()

    # -- chat: not served ------------------------------------------------------------
    def _chat_refused(self) -> UnsupportedParameter:
        return UnsupportedParameter(
            f"deployment {self.endpoint.deployment!r} (text-embeddings-inference) serves "
            "embeddings only (POST /v1/embeddings)",
            param="model",
        )

    def check(self, request: ChatRequest) -> None:
        raise self._chat_refused()

    async def complete(self, request: ChatRequest) -> ChatResult:
        raise self._chat_refused()

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        for delta in self._no_deltas():  # refused from the first __anext__
            yield delta

    def _no_deltas(self) -> list[StreamDelta]:
        raise self._chat_refused()

    # -- embeddings --------------------------------------------------------------------
    def check_embed(self, *, dimensions: int | None) -> None:
        if dimensions is not None:
            raise UnsupportedParameter(
                f"deployment {self.endpoint.deployment!r} (text-embeddings-inference /embed) "
                "returns the model's own vector size: 'dimensions' cannot be honoured",
                param="dimensions",
            )

    async def embed(
        self, texts: Sequence[str], *, dimensions: int | None, user: str | None
    ) -> tuple[list[list[float]], Usage | None]:
        """One float vector per text, in order, and the usage from ``x-compute-tokens``
        (``None`` when any batch's answer lacked it)."""
        self.check_embed(dimensions=dimensions)
        size = int(self.endpoint.quirk("max_batch", 32))
        results = await in_batches(texts, size, self._embed_batch)
        vectors: list[list[float]] = []
        tokens: int | None = 0
        for batch_vectors, batch_tokens in results:
            vectors += batch_vectors
            tokens = None if tokens is None or batch_tokens is None else tokens + batch_tokens
        usage = None if tokens is None else Usage(prompt_tokens=tokens, completion_tokens=0)
        return vectors, usage

    async def _embed_batch(self, texts: Sequence[str]) -> tuple[list[list[float]], int | None]:
        body = orjson.dumps({"inputs": list(texts)})
        response = await self._client.post(
            self._url,
            self._headers,
            body,
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
        vectors = _vectors(payload, len(texts))
        if vectors is None:
            raise UpstreamBadResponse(
                f"{self.provider} sent a malformed embeddings body", upstream_status=200
            )
        return vectors, _header_count(response.headers)

    def _error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            message = describe_body(headers, raw)
        else:
            err = payload.get("error") if isinstance(payload, dict) else None
            message = err[:500] if isinstance(err, str) else ""
        error = error_for_status(500 if status == 424 else status, headers, message, provider="tei")
        error.upstream_status = status
        return error


def _vectors(payload: Any, count: int) -> list[list[float]] | None:
    if type(payload) is not list or len(payload) != count:
        return None
    vectors = []
    for values in payload:
        if type(values) is not list or not all(type(x) is float or type(x) is int for x in values):
            return None
        vectors.append([float(x) for x in values])
    return vectors


def _header_count(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("x-compute-tokens")
    if raw is None or not raw.isascii() or not raw.strip().isdigit():
        return None  # ("²".isdigit() is true, and int() refuses it)
    count = int(raw)
    return count if count <= MAX_TOKEN_COUNT else None
