"""``POST /v1/chat/completions``: non-streaming and streaming (SSE)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from laneway.errors import (
    InvalidRequest,
    LanewayError,
    PayloadTooLarge,
    StreamInterrupted,
    UpstreamBadResponse,
)
from laneway.providers import ChatRequest, StreamDelta, Usage
from laneway.server._gateway import CallOutcome, Gateway, RequestContext
from laneway.server._render import (
    DONE,
    error_body,
    error_event,
    money,
    render_chunk,
    render_completion,
    render_usage_chunk,
)
from laneway.server._validate import parse_chat_request

__all__ = ["chat_completions", "error_response", "handle_chat", "read_body"]

_JSON = "application/json"


class JSONBytesResponse(Response):
    """An already rendered JSON body with raw ASGI headers built by the caller (Starlette's
    ``init_headers`` re-checks and re-encodes every header, ~5 µs a response)."""

    media_type = _JSON

    def __init__(
        self, body: bytes, headers: list[tuple[bytes, bytes]], status_code: int = 200
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        headers.append((b"content-length", b"%d" % len(body)))
        headers.append((b"content-type", _JSON_BYTES))
        self.raw_headers = headers


_JSON_BYTES = _JSON.encode()


def error_response(exc: LanewayError, request_id: str | None = None) -> Response:
    headers = exc.headers()
    if request_id:
        headers["x-laneway-request-id"] = request_id
    return Response(error_body(exc), status_code=exc.status, media_type=_JSON, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidRequest("invalid Content-Length header") from None
        if size > limit:
            raise PayloadTooLarge(f"request body of {size} bytes exceeds the {limit}-byte limit")
    chunks: list[bytes] = []
    total = 0
    receive = request.receive
    while True:  # the ASGI messages themselves: Starlette's stream() adds a generator layer
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"request body exceeds the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _raw_route_headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    """:func:`_route_headers` as raw ASGI headers (names pre-encoded)."""
    resolution = ctx.resolution
    headers = [
        (b"x-laneway-request-id", ctx.request_id.encode()),
        (b"x-laneway-deployment", _header_value(ctx.trace.served_by or "")),
        (b"x-laneway-tier", _header_value((resolution.tier or "") if resolution else "")),
        (b"x-laneway-route-reason", _header_value(resolution.reason if resolution else "")),
        (b"x-laneway-fallbacks", b"%d" % ctx.trace.fallbacks),
    ]
    if ctx.route_score is not None:
        headers.append((b"x-laneway-route-score", b"%.4f" % ctx.route_score))
    return headers


def _header_value(text: str) -> bytes:
    """Latin-1, as HTTP headers are; a character outside it (a model name the client
    typed, say) becomes ``?`` instead of failing the response."""
    return text.encode("latin-1", "replace")


def _route_headers(ctx: RequestContext) -> dict[str, str]:
    """The same headers as :func:`_raw_route_headers`, as a mapping (for streams)."""
    return {k.decode(): v.decode("latin-1") for k, v in _raw_route_headers(ctx)}


async def chat_completions(request: Request) -> Response:
    return await handle_chat(request.app.state.gateway, request)


async def handle_chat(gateway: Gateway, request: Request) -> Response:
    """``POST /v1/chat/completions`` for ``gateway`` (the app's fast path calls this
    directly, without looking the gateway up in the app's state)."""
    limits = gateway.settings.server
    request_id = gateway.new_request_id()
    ctx = RequestContext(request_id=request_id, started=time.perf_counter(), requested_model="")
    try:
        governance = gateway.governance
        if governance.auth_required:
            header = request.headers.get("authorization")
            ctx.key = await asyncio.to_thread(governance.authenticate, header)
        body = await read_body(request, limits.max_body_bytes)
        chat = parse_chat_request(body, max_depth=limits.max_json_depth)
    except ClientDisconnect:
        return Response(status_code=499)
    except LanewayError as exc:
        return error_response(exc, request_id)
    ctx.requested_model = chat.model
    ctx.stream = chat.stream
    ctx.request = chat
    if chat.stream:
        return await _stream(gateway, ctx, chat)
    return await _complete(gateway, ctx, chat)


async def _complete(gateway: Gateway, ctx: RequestContext, chat: ChatRequest) -> Response:
    try:
        result = await gateway.complete(ctx, chat)
    except LanewayError as exc:
        gateway.finish(ctx, CallOutcome(status=exc.status, error=exc))
        return error_response(gateway.sanitize(exc), ctx.request_id)
    except asyncio.CancelledError:
        gateway.finish(ctx, CallOutcome(status=499, partial=True))
        raise
    cost = gateway.request_cost(ctx)
    headers = _raw_route_headers(ctx)
    cost_text = money(cost)
    if cost_text is not None:
        headers.append((b"x-laneway-cost-usd", cost_text.encode()))
    body = render_completion(
        result,
        request_id=ctx.request_id,
        created=int(time.time()),
        model=_served_model(gateway, ctx, chat),
        cost=cost,
    )
    gateway.finish(ctx, CallOutcome(status=200, usage=result.usage, cost=cost))
    return JSONBytesResponse(body, headers)


def _served_model(gateway: Gateway, ctx: RequestContext, chat: ChatRequest) -> str:
    served = ctx.trace.served_by
    deployment = gateway.deployments.get(served) if served else None
    return deployment.model_id if deployment is not None else chat.model


async def _stream(gateway: Gateway, ctx: RequestContext, chat: ChatRequest) -> Response:
    try:
        first, rest = await gateway.open_stream(ctx, chat)
    except LanewayError as exc:
        gateway.finish(ctx, CallOutcome(status=exc.status, error=exc))
        return error_response(gateway.sanitize(exc), ctx.request_id)
    ttft = time.perf_counter() - ctx.started
    headers = _route_headers(ctx)
    headers["cache-control"] = "no-cache"
    headers["x-accel-buffering"] = "no"
    return StreamingResponse(
        _sse(gateway, ctx, chat, first, rest, ttft),
        media_type="text/event-stream",
        headers=headers,
    )


async def _sse(
    gateway: Gateway,
    ctx: RequestContext,
    chat: ChatRequest,
    first: StreamDelta,
    rest: AsyncIterator[StreamDelta],
    ttft: float,
) -> AsyncIterator[bytes]:
    created = int(time.time())
    model = _served_model(gateway, ctx, chat)
    usage: Usage | None = None
    finish: str | None = None
    chunks = 0
    outcome = CallOutcome(status=200, ttft=ttft, partial=True)
    try:
        delta: StreamDelta | None = first
        is_first = True
        while delta is not None:
            if delta.usage is not None:
                usage = delta.usage
            if delta.finish_reason is not None:
                finish = delta.finish_reason
            if delta.content is not None or delta.tool_calls or delta.finish_reason or is_first:
                chunks += 1
                yield render_chunk(
                    delta,
                    request_id=ctx.request_id,
                    created=created,
                    model=model,
                    first=is_first,
                )
                is_first = False
            delta = await anext(rest, None)
        if finish is None:
            raise StreamInterrupted(
                "the upstream stream ended without a finish reason (truncated answer)"
            ) from UpstreamBadResponse("no finish_reason")
        outcome.partial = False
        if chat.include_usage:
            yield render_usage_chunk(
                usage,
                request_id=ctx.request_id,
                created=created,
                model=model,
                cost=gateway.request_cost(ctx),
            )
        yield DONE
    except LanewayError as exc:
        outcome.error = exc
        outcome.status = exc.status
        yield error_event(gateway.sanitize(exc))
    finally:
        if usage is None and outcome.partial:
            # The upstream never sent usage (cut or client gone): bill what was generated.
            usage = Usage(completion_tokens=chunks)
            last = ctx.trace.attempts[-1] if ctx.trace.attempts else None
            if last is not None and last.usage is None:
                last.usage = usage
        outcome.usage = usage
        if outcome.partial and outcome.error is None:
            outcome.status = 499
        gateway.finish(ctx, outcome)
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()
