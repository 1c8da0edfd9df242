"""``POST /v1/embeddings``: OpenAI's embeddings API in and out, routed by the core
(:meth:`~laneway.gateway.Gateway.embed`) to deployments whose adapter can embed (OpenAI
and OpenAI-compatible servers: vLLM, TEI's OpenAI route …), governed and ledgered like
chat. Token-id arrays are refused: the scanner cannot read them (fail closed)."""

from __future__ import annotations

import base64
import dataclasses
import struct
import time
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from laneway.errors import InvalidRequest, LanewayError
from laneway.gateway import EmbedRequest, Gateway, RequestContext
from laneway.providers import Usage
from laneway.server._chat import (
    JSONBytesResponse,
    _raw_route_headers,
    call_core,
    error_response,
    read_request,
    refuse,
)
from laneway.server._jsonlimits import expect_int, expect_nonempty_str, load_object, type_error
from laneway.server._render import money
from laneway.server._validate import _model, _user

__all__ = ["EmbeddingsRequest", "embeddings", "parse_embeddings_request"]

MAX_INPUTS = 2048  # OpenAI's limit on the strings of one request
_MAX_DIMENSIONS = 65_536
_KEYS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


@dataclasses.dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    """A validated embeddings request (``input`` as a tuple of non-empty strings)."""

    model: str
    texts: tuple[str, ...]
    encoding_format: str = "float"
    dimensions: int | None = None
    user: str | None = None

    def for_core(self) -> EmbedRequest:
        return EmbedRequest(self.model, self.texts, self.dimensions, self.user)


def parse_embeddings_request(body: bytes, max_depth: int = 64) -> EmbeddingsRequest:
    """Validate an OpenAI embeddings body (unknown keys, token arrays and empty input are
    refused with :class:`~laneway.errors.InvalidRequest`)."""
    doc = load_object(body, max_depth)
    for key in doc:
        if key not in _KEYS:
            raise InvalidRequest(f"unknown parameter '{key}'", param=key)
    if "model" not in doc:
        raise InvalidRequest("missing required parameter 'model'", param="model")
    if "input" not in doc:
        raise InvalidRequest("missing required parameter 'input'", param="input")
    fmt = doc.get("encoding_format")
    if fmt is None:
        fmt = "float"
    elif fmt not in ("float", "base64"):
        raise InvalidRequest(
            f"invalid 'encoding_format' {str(fmt)[:40]!r}: expected 'float' or 'base64'",
            param="encoding_format",
        )
    dimensions = doc.get("dimensions")
    if dimensions is not None:
        dimensions = expect_int(dimensions, "dimensions", 1, _MAX_DIMENSIONS)
    user = doc.get("user")
    return EmbeddingsRequest(
        model=_model(doc["model"], "model"),
        texts=_texts(doc["input"]),
        encoding_format=fmt,
        dimensions=dimensions,
        user=None if user is None else _user(user, "user"),
    )


def _texts(value: Any) -> tuple[str, ...]:
    if type(value) is str:
        return (expect_nonempty_str(value, "input"),)
    if type(value) is not list:
        raise type_error("input", "a string or an array of strings", value)
    if not value:
        raise InvalidRequest("'input' must not be an empty array", param="input")
    if any(type(v) is int or type(v) is list for v in value):
        raise InvalidRequest(
            "token-id arrays are not accepted in 'input': the gateway must read the text to "
            "scan it for sensitive data; send strings",
            param="input",
        )
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(
            f"'input' has {len(value)} strings; at most {MAX_INPUTS} are allowed", param="input"
        )
    return tuple(expect_nonempty_str(v, f"input[{i}]") for i, v in enumerate(value))


async def embeddings(request: Request) -> Response:
    """``POST /v1/embeddings``."""
    gateway: Gateway = request.app.state.gateway
    limits = gateway.settings.server
    request_id = gateway.new_request_id()
    ctx = RequestContext(request_id=request_id, started=time.perf_counter(), requested_model="")
    try:
        body, _ = await read_request(gateway, request, ctx, request.headers.get("authorization"))
        parsed = parse_embeddings_request(body, limits.max_json_depth)
    except ClientDisconnect:
        gateway.metrics.observe_rejected(499, None)
        return Response(status_code=499)
    except LanewayError as exc:
        refuse(gateway, request.scope, exc, request_id, ctx.key_id)
        return error_response(exc, request_id)
    ctx.requested_model = parsed.model
    outcome = await call_core(ctx, request.receive, gateway.embed(ctx, parsed.for_core()))
    if outcome is None:
        return Response(status_code=499)  # the client left; nobody reads it
    vectors, usage = outcome.vectors, outcome.usage
    if vectors is None or usage is None:
        error = outcome.error or LanewayError("internal error (see the gateway's log)")
        return error_response(error, request_id)
    headers = _raw_route_headers(ctx)
    cost_text = money(outcome.cost)
    if cost_text is not None:
        headers.append((b"x-laneway-cost-usd", cost_text.encode()))
    served = gateway.deployments[ctx.trace.served_by or ""]
    body_out = _render(vectors, usage, served.model_id, parsed.encoding_format)
    return JSONBytesResponse(body_out, headers)


def _render(vectors: list[list[float]], usage: Usage, model: str, encoding: str) -> bytes:
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(v, encoding)}
        for i, v in enumerate(vectors)
    ]
    tokens = usage.prompt_tokens
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    """``base64``: little-endian float32, as OpenAI sends it."""
    if encoding != "base64":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
