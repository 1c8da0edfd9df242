"""Cascades through the gateway: the cheap tier answers first (never streamed to the
client), the profile's checks run on that answer, and a check that fires sends the
request to the stronger tier. Both calls are in the request's trace, so the ledger
records both, their costs and which check fired (``audit.cascade``).

A streaming client receives nothing until the check passes: the final answer is then
replayed as a stream (one content delta and the finish), so its time to first token is
the cheap answer's whole latency (plus the strong one's when it escalates).

The router's checks are pure; a client's JSON schema is checked here with governance's
safe validator (linear-time patterns, no remote references) rather than by the router.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from laneway.gateway._deployments import Resolution, select_candidates
from laneway.governance import ClientSchema
from laneway.providers import ChatModel, ChatRequest, ChatResult, OpenAIChatAdapter, StreamDelta
from laneway.resilience import FallbackModel
from laneway.router import (
    AnswerResult,
    CascadeSpec,
    EscalationDecision,
    RequestInfo,
    ToolCall,
    conversation_from_messages,
)

if TYPE_CHECKING:
    from laneway.gateway._context import RequestContext
    from laneway.gateway._core import Gateway

__all__ = ["replay_stream", "run_cascade"]


def _wants_logprobs(spec: CascadeSpec, chain_names: list[str], gateway: Gateway) -> bool:
    """Ask for log-probabilities only when a check needs them and every cheap deployment
    speaks the OpenAI format (the only one that returns them)."""
    if not any(check.name == "logprob" for check in spec.checks):
        return False
    return all(
        isinstance(gateway.deployments[name].adapter, OpenAIChatAdapter) for name in chain_names
    )


def _token_logprobs(result: ChatResult) -> list[float] | None:
    content = (result.logprobs or {}).get("content")
    if not isinstance(content, list):
        return None
    values = [item.get("logprob") for item in content if isinstance(item, dict)]
    floats = [float(v) for v in values if isinstance(v, int | float)]
    return floats or None


async def _schema_problem(request: ChatRequest, result: ChatResult) -> str | None:
    spec = request.json_schema
    schema = spec.get("schema") if spec is not None else None
    if not isinstance(schema, dict):
        return None
    checked = ClientSchema.compile(schema, "response_format.json_schema.schema")
    return await checked.check(result.content)


def _tool_problem(request: ChatRequest, cheap: ChatResult) -> bool:
    """A tool call to an undeclared tool, with arguments that are not JSON, or that fail
    the tool's parameter schema (checked with governance's linear-time validator: the
    schema is the client's)."""
    tools = {t["function"]["name"]: t["function"].get("parameters") for t in request.tools}
    for call in cheap.tool_calls:
        name = call["function"]["name"]
        if name not in tools:
            return True
        try:
            arguments = json.loads(call["function"]["arguments"] or "{}")
        except ValueError:
            return True
        schema = tools[name]
        if isinstance(schema, dict) and schema:
            checked = ClientSchema.compile(schema, f"tools[{name}].function.parameters")
            if checked.problem(arguments) is not None:
                return True
    return False


async def _decide(
    gateway: Gateway,
    ctx: RequestContext,
    spec: CascadeSpec,
    request: ChatRequest,
    cheap: ChatResult,
) -> EscalationDecision:
    names = [c.name for c in spec.checks]
    if "json_schema" in names and await _schema_problem(request, cheap):
        return EscalationDecision(True, "json_schema", None)
    if "tool_arguments" in names and _tool_problem(request, cheap):
        return EscalationDecision(True, "tool_arguments", None)
    info = RequestInfo(
        conversation=conversation_from_messages(request.messages),
        task=ctx.task,
        response_schema=None,  # checked above, safely
        json_object=(request.response_format or {}).get("type") == "json_object",
        tools={},  # checked above, safely
    )
    answer = AnswerResult(
        text=cheap.content or "",
        finish_reason=cheap.finish_reason,
        tool_calls=[
            ToolCall(c["function"]["name"], c["function"]["arguments"]) for c in cheap.tool_calls
        ],
        token_logprobs=_token_logprobs(cheap),
    )
    router = gateway.router
    assert router is not None  # only the router's decisions cascade
    return router.check_answer(spec, info, answer)


async def run_cascade(
    gateway: Gateway, ctx: RequestContext, request: ChatRequest, cheap_chain: ChatModel
) -> ChatResult:
    """The cheap tier's answer, or the strong tier's when a check fires."""
    spec = ctx.cascade
    assert spec is not None  # called only for a request that cascades
    call = dataclasses.replace(request, stream=False)
    resolution = ctx.resolution
    names = list(resolution.deployments) if resolution is not None else []
    if _wants_logprobs(spec, names, gateway) and "logprobs" not in call.options:
        call = dataclasses.replace(call, options={**call.options, "logprobs": True})
    started = time.perf_counter()
    cheap = await cheap_chain.complete(call)
    decision = await _decide(gateway, ctx, spec, request, cheap)
    audit: dict[str, object] = {
        "from": spec.from_tier,
        "to": spec.to_tier,
        "escalated": decision.escalate,
        "check": decision.check,
        "cheap_deployment": ctx.trace.served_by,
        "cheap_ms": round((time.perf_counter() - started) * 1000.0, 1),
    }
    if decision.prob is not None:
        audit["verifier_prob"] = round(decision.prob, 4)
    ctx.cascade_audit = audit
    if not decision.escalate:
        return cheap
    tier = spec.to_tier
    reason = (
        resolution.reason if resolution is not None else "auto"
    ) + f":escalated:{decision.check}"
    strong = Resolution(gateway.resolver.tiers[tier], tier, reason)
    ctx.resolution = strong
    admission = ctx.admission
    assert admission is not None
    allowed = gateway.governance.filter(strong.deployments, tier, request.model, admission)
    probe = admission.redacted if admission.redacted is not None else request
    chosen = select_candidates(allowed, gateway.deployments, probe, ctx.trace)
    members = [gateway.member(ctx, d, call) for d in chosen]
    chain = members[0] if len(members) == 1 else FallbackModel(members)
    return await chain.complete(dataclasses.replace(call, options=request.options))


async def replay_stream(result: ChatResult) -> tuple[StreamDelta, AsyncIterator[StreamDelta]]:
    """A finished answer as a stream: its content and tool calls, then the finish."""
    calls = [
        {
            "index": i,
            "id": c["id"],
            "type": "function",
            "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
        }
        for i, c in enumerate(result.tool_calls)
    ]
    first = StreamDelta(content=result.content or "", tool_calls=calls or None)  # type: ignore[arg-type]

    async def rest() -> AsyncIterator[StreamDelta]:
        yield StreamDelta(finish_reason=result.finish_reason, usage=result.usage)

    return first, rest()
