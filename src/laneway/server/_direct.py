"""Calling the gateway in-process, without HTTP: the same resolution, selection,
retries, fallbacks and ledger as a client request (used by evals and benchmarks)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from laneway.errors import LanewayError, StreamInterrupted, UpstreamBadResponse
from laneway.providers import ChatRequest, ChatResult, ToolCall, Usage
from laneway.server._gateway import CallOutcome, Gateway, RequestContext

__all__ = ["CallReport", "run_request"]


@dataclass(frozen=True, slots=True)
class CallReport:
    """The outcome of one in-process request. Exactly one of ``result`` / ``error``."""

    request_id: str
    result: ChatResult | None
    error: LanewayError | None
    deployment: str | None
    tier: str | None
    route_reason: str | None
    fallbacks: int
    cost_usd: Decimal | None
    latency_ms: float
    ttft_ms: float | None


async def run_request(
    gateway: Gateway,
    request: ChatRequest,
    *,
    source: str = "api",
    key_id: str | None = None,
    log_prompt: bool | None = None,
) -> CallReport:
    """Run ``request`` (streamed when ``request.stream``, then assembled, so TTFT is
    measured) and record it in the ledger under ``source``. Never raises
    ``LanewayError``: it is returned in the report."""
    ctx = RequestContext(
        request_id=gateway.new_request_id(),
        started=time.perf_counter(),
        requested_model=request.model,
        key_id=key_id,
        source=source,
        stream=request.stream,
    )
    ctx.request = request
    ctx.log_prompt = log_prompt
    outcome = CallOutcome(status=200)
    result: ChatResult | None = None
    try:
        if request.stream:
            result, outcome.ttft = await _assemble(gateway, ctx, request)
        else:
            result = await gateway.complete(ctx, request)
        outcome.usage = result.usage
    except LanewayError as exc:
        outcome.status, outcome.error = exc.status, exc
        outcome.partial = isinstance(exc, StreamInterrupted)
    latency = time.perf_counter() - ctx.started
    gateway.finish(ctx, outcome)
    resolution = ctx.resolution
    return CallReport(
        request_id=ctx.request_id,
        result=result,
        error=outcome.error,
        deployment=ctx.trace.served_by,
        tier=resolution.tier if resolution else None,
        route_reason=resolution.reason if resolution else None,
        fallbacks=ctx.trace.fallbacks,
        cost_usd=gateway.request_cost(ctx) if outcome.error is None else None,
        latency_ms=latency * 1000.0,
        ttft_ms=None if outcome.ttft is None else outcome.ttft * 1000.0,
    )


async def _assemble(
    gateway: Gateway, ctx: RequestContext, request: ChatRequest
) -> tuple[ChatResult, float]:
    first, rest = await gateway.open_stream(ctx, request)
    ttft = time.perf_counter() - ctx.started
    text: list[str] = []
    calls: dict[int, ToolCall] = {}
    usage: Usage | None = None
    finish: str | None = None
    model = ""
    fingerprint: str | None = None
    delta = first
    try:
        while True:
            if delta.content:
                text.append(delta.content)
            for part in delta.tool_calls or ():
                call = calls.setdefault(
                    part["index"],
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                call["id"] = part.get("id") or call["id"]
                function = part.get("function") or {}
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
            usage = delta.usage or usage
            finish = delta.finish_reason or finish
            model = delta.model or model
            fingerprint = delta.system_fingerprint or fingerprint
            nxt = await anext(rest, None)
            if nxt is None:
                break
            delta = nxt
    finally:
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()
    if finish is None:
        raise StreamInterrupted("the stream ended without a finish reason") from (
            UpstreamBadResponse("no finish_reason")
        )
    return (
        ChatResult(
            content="".join(text) if text or not calls else None,
            finish_reason=finish,
            model=model,
            usage=usage,
            tool_calls=[calls[i] for i in sorted(calls)],
            system_fingerprint=fingerprint,
        ),
        ttft,
    )
