"""``POST /v1/embeddings``: OpenAI's embeddings API in and out, routed to deployments whose
adapter can embed (OpenAI and OpenAI-compatible servers: vLLM, TEI's OpenAI route …).

Governed like chat: every input string is scanned (one user message each), so a
sensitive input only goes to self-hosted or embedded deployments; the policy filter, key
rate limits and budget reservation apply; one ledger row per request. Token-id arrays
are refused: the scanner cannot read them (fail closed). Candidates are tried in order,
once each, falling over on upstream availability errors."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import struct
import time
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from laneway.errors import (
    CircuitOpen,
    InvalidRequest,
    LanewayError,
    NoDeploymentAvailable,
    UnsupportedParameter,
    UpstreamError,
)
from laneway.governance import PRIVATE_HOSTING
from laneway.providers import ChatRequest, Message, Usage, estimate_prompt_tokens
from laneway.resilience import Attempt, may_fall_back
from laneway.server._chat import (
    JSONBytesResponse,
    _raw_route_headers,
    _watched,
    error_response,
    read_request,
)
from laneway.server._deployments import Deployment
from laneway.server._gateway import (
    _AVAILABILITY_FAULTS,
    CallOutcome,
    Gateway,
    RequestContext,
    _private_failure,
)
from laneway.server._jsonlimits import expect_int, expect_nonempty_str, load_object, type_error
from laneway.server._protocol import OPENAI_CHAT
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

    def as_chat(self) -> ChatRequest:
        """The request as governance reads it: one user message per input string."""
        messages = tuple(Message(role="user", content=t) for t in self.texts)
        return ChatRequest(model=self.model, messages=messages, max_tokens=1, user=self.user)


class _Embedder(Protocol):
    async def embed(
        self, texts: Sequence[str], *, dimensions: int | None, user: str | None
    ) -> tuple[list[list[float]], Usage | None]: ...


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
        gateway.metrics.observe_rejected(exc.status, exc.code)
        gateway.record_refused(request.scope, exc, request_id=request_id, key_id=ctx.key_id)
        return error_response(exc, request_id)
    chat = parsed.as_chat()
    ctx.requested_model = parsed.model
    ctx.request = chat
    got = await _watched(
        gateway, ctx, chat, request.receive, _embed(gateway, ctx, parsed, chat), OPENAI_CHAT
    )
    if isinstance(got, Response):
        return got
    vectors, usage = got
    cost = gateway.request_cost(ctx)
    headers = _raw_route_headers(ctx)
    cost_text = money(cost)
    if cost_text is not None:
        headers.append((b"x-laneway-cost-usd", cost_text.encode()))
    served = gateway.deployments[ctx.trace.served_by or ""]
    body_out = _render(vectors, usage, served.model_id, parsed.encoding_format)
    gateway.finish(ctx, CallOutcome(status=200, usage=usage, cost=cost))
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


async def _embed(
    gateway: Gateway, ctx: RequestContext, parsed: EmbeddingsRequest, chat: ChatRequest
) -> tuple[list[list[float]], Usage]:
    chosen = await _govern(gateway, ctx, chat)
    try:
        vectors, usage = await _call_chain(ctx, chosen, parsed)
    except (UpstreamError, NoDeploymentAvailable) as exc:
        raise _private_failure(ctx, exc) from exc
    if usage is None:  # the upstream never said: bill an estimate, marked as such
        usage = Usage(prompt_tokens=estimate_prompt_tokens(chat), completion_tokens=0)
        ctx.trace.attempts[-1].usage = usage
        ctx.estimated = True
    return vectors, usage


async def _govern(gateway: Gateway, ctx: RequestContext, chat: ChatRequest) -> list[Deployment]:
    """Scan, rate limit, resolve, keep the deployments that can embed, policy filter,
    budget reservation (as chat's: the reservation is settled by ``finish``)."""
    governance = gateway.governance
    admission = await asyncio.to_thread(governance.admit, chat, ctx.key)
    ctx.admission = admission
    key = ctx.key
    if key is not None and (key.rpm or key.tpm) and governance.store is not None:
        await asyncio.to_thread(governance.store.take_rate, key, estimate_prompt_tokens(chat))
    resolution = gateway.resolver.resolve(chat.model)
    ctx.resolution = resolution
    able: list[str] = []
    for name in resolution.deployments:
        if callable(getattr(gateway.deployments[name].adapter, "embed", None)):
            able.append(name)
        else:
            ctx.trace.skipped.append((name, "cannot_embed"))
    if not able:
        raise UnsupportedParameter(
            f"model {chat.model!r} has no deployment that can embed (embeddings need an "
            "OpenAI-format deployment: OpenAI, an OpenAI-compatible vendor, vLLM or TEI)",
            param="model",
        )
    names = governance.filter(able, resolution.tier, chat.model, admission)
    chosen = [gateway.deployments[n] for n in names]
    if key is not None and key.budget_usd is not None and governance.store is not None:
        amount = governance.max_cost(chat, names)
        ctx.reservation = await asyncio.to_thread(governance.store.reserve, key, amount)
    return chosen


async def _call_chain(
    ctx: RequestContext, chosen: list[Deployment], parsed: EmbeddingsRequest
) -> tuple[list[list[float]], Usage | None]:
    """Each candidate once, in order; the next one after an availability failure."""
    last: LanewayError | None = None
    for d in chosen:
        breaker = d.breaker
        if not breaker.acquire():
            ctx.trace.skipped.append((d.name, "circuit_open"))
            last = CircuitOpen(
                f"deployment {d.name!r} is failing (circuit open)",
                retry_after=breaker.retry_after(),
            )
            continue
        embedder: _Embedder = d.adapter  # type: ignore[assignment]  # checked in _govern
        attempt = Attempt(d.name, time.perf_counter())
        ctx.trace.attempts.append(attempt)
        try:
            vectors, usage = await embedder.embed(
                _texts_for(ctx, d, parsed), dimensions=parsed.dimensions, user=parsed.user
            )
        except LanewayError as exc:
            attempt.ended = time.perf_counter()
            attempt.error = exc
            if isinstance(exc, _AVAILABILITY_FAULTS):
                breaker.failure()
            else:
                breaker.abandon()
            if not may_fall_back(exc):
                raise
            last = exc
            continue
        except BaseException:  # cancelled: no verdict on the deployment
            breaker.abandon()
            raise
        breaker.success()
        attempt.ended = attempt.first_byte = time.perf_counter()
        attempt.usage = usage
        ctx.trace.served_by = d.name
        return vectors, usage
    if last is None:
        raise NoDeploymentAvailable("no deployment can serve this embeddings request")
    raise last


def _texts_for(ctx: RequestContext, d: Deployment, parsed: EmbeddingsRequest) -> Sequence[str]:
    """The redacted texts for a deployment outside the private network when the policy
    redacts sensitive values; the texts as sent otherwise."""
    admission = ctx.admission
    if admission is None or admission.redacted is None or d.hosting in PRIVATE_HOSTING:
        return parsed.texts
    return [str(m.get("content", "")) for m in admission.redacted.messages]
