"""Calling the gateway in-process, without HTTP: the same resolution, selection,
retries, fallbacks and ledger as a client request (used by evals and benchmarks)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from laneway.errors import LanewayError
from laneway.gateway._context import CallOutcome, RequestContext
from laneway.gateway._life import close_stream
from laneway.providers import ChatRequest, ChatResult, StreamDelta, ToolCall

if TYPE_CHECKING:
    from laneway.gateway._core import Gateway

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
        request=request,
        log_prompt=log_prompt,
    )
    if request.stream:
        outcome = await _assemble(gateway, ctx, request)
    else:
        outcome = await gateway.complete(ctx, request)
    latency = time.perf_counter() - ctx.started
    resolution = ctx.resolution
    return CallReport(
        request_id=ctx.request_id,
        result=outcome.result if outcome.error is None else None,
        error=outcome.error,
        deployment=ctx.trace.served_by,
        tier=resolution.tier if resolution else None,
        route_reason=resolution.reason if resolution else None,
        fallbacks=ctx.trace.fallbacks,
        cost_usd=outcome.cost if outcome.error is None else None,
        latency_ms=latency * 1000.0,
        ttft_ms=None if outcome.ttft is None else outcome.ttft * 1000.0,
    )


async def _assemble(gateway: Gateway, ctx: RequestContext, request: ChatRequest) -> CallOutcome:
    """The streamed answer put back together as one result (``outcome.result``)."""
    text: list[str] = []
    calls: dict[int, ToolCall] = {}
    events = gateway.stream(ctx, request)
    outcome: CallOutcome | None = None
    try:
        async for item in events:
            if type(item) is not StreamDelta:
                assert isinstance(item, CallOutcome)
                outcome = item
                break
            if item.content:
                text.append(item.content)
            for part in item.tool_calls or ():
                call = calls.setdefault(
                    part["index"],
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                call["id"] = part.get("id") or call["id"]
                function = part.get("function") or {}
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
    finally:
        await close_stream(events)  # records the request
    assert outcome is not None  # the core always ends a stream with an outcome
    if outcome.error is None:
        outcome.result = ChatResult(
            content="".join(text) if text or not calls else None,
            finish_reason=outcome.finish_reason or "stop",
            model=ctx.served_model or "",
            usage=None if ctx.estimated else outcome.usage,
            tool_calls=[calls[i] for i in sorted(calls)],
            system_fingerprint=ctx.fingerprint,
        )
    return outcome
