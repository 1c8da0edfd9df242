"""A relayed Responses request's life in the core: a ``POST /v1/responses`` body that only
OpenAI's Responses API can honour (reasoning items, ``include`` of encrypted reasoning,
a ``previous_response_id`` relayed before) goes out unchanged but for ``model``.

Governed like chat (every string of :attr:`RelayRequest.scan` is scanned; a request the
policy would redact is refused, relayed items cannot be redacted; key limits, policy
filter and budget reservation apply), routed to the deployments whose adapter serves the
Responses API (only the one holding the previous response, when there is one), each
tried once in order (the next after an availability failure), accounted from the
upstream's ``usage`` (an estimate, marked, when it sent none) and recorded as one ledger
row. The protocol layer decides that a request is relayed, renders the answer and
watches the client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from laneway.errors import (
    CircuitOpen,
    ClientClosed,
    LanewayError,
    NoDeploymentAvailable,
    SensitiveDataBlocked,
    ShuttingDown,
    UnsupportedParameter,
    UpstreamError,
    UpstreamServerError,
)
from laneway.gateway._context import CallOutcome, RequestContext
from laneway.gateway._deployments import Deployment
from laneway.gateway._life import Accounted
from laneway.governance import PRIVATE_HOSTING
from laneway.providers import (
    ChatRequest,
    RelayEvent,
    ResponsesRelay,
    Usage,
    estimate_prompt_tokens,
    relay_for,
)
from laneway.resilience import Attempt, may_fall_back

if TYPE_CHECKING:
    from laneway.gateway._core import Gateway

__all__ = ["RelayOutcome", "RelayRequest", "relay", "relay_stream"]


@dataclass(frozen=True, slots=True)
class RelayRequest:
    """A validated relay request: the body to send, why it is relayed (for refusals'
    messages), the deployment holding its previous response (if any) and every text of
    it as governance reads it."""

    doc: dict[str, Any]
    why: str
    deployment: str | None
    scan: ChatRequest


@dataclass(slots=True)
class RelayOutcome(CallOutcome):
    """A non-streamed relay's end: ``response`` is the upstream's answer, unchanged but
    for an output scan's redactions, when it answered."""

    response: dict[str, Any] | None = None


async def relay(gateway: Gateway, ctx: RequestContext, request: RelayRequest) -> RelayOutcome:
    """Govern, call the first deployment that answers and record the request; the
    outcome holds the response or the error (not yet sanitized). Raises
    ``CancelledError`` (the request recorded as a 499) when the client left."""
    with Accounted(gateway, ctx, request.scan, RelayOutcome(status=200)) as outcome:
        chosen = await _govern(gateway, ctx, request)
        response, usage = await _create(ctx, chosen, request)
        ctx.served_model = _model_of(response)
        outcome.usage = _usage(ctx, request, usage)
        _scan_output(gateway, ctx, response)  # before finish: the audit goes in the ledger
        outcome.response = response
        outcome.cost = gateway.request_cost(ctx)
        outcome.priced = True
    return outcome


async def _create(
    ctx: RequestContext, chosen: list[Deployment], request: RelayRequest
) -> tuple[dict[str, Any], Usage | None]:
    """Each candidate once, in order; the next one after an availability failure."""
    last: LanewayError | None = None
    for d in chosen:
        begun = _begin(ctx, d)
        if begun is None:
            continue
        relay_, attempt = begun
        try:
            response, usage = await relay_.create(request.doc)
            if response.get("status") == "failed":  # an HTTP 200 that is no answer
                raise UpstreamServerError(_upstream_error("response", response))
        except LanewayError as exc:
            _failed(d, attempt, exc)
            if not may_fall_back(exc):
                raise
            last = exc
            continue
        except BaseException:  # the call in flight is settled (499, 503) by Accounted
            ctx.trace.served_by = d.name  # the row names the deployment it was on
            d.breaker.abandon()
            raise
        d.breaker.success()
        attempt.ended = attempt.first_byte = time.perf_counter()
        ctx.trace.served_by = d.name
        return response, usage
    raise _exhausted(ctx, last)


async def relay_stream(
    gateway: Gateway, ctx: RequestContext, request: RelayRequest
) -> CallOutcome | AsyncGenerator[bytes | LanewayError, None]:
    """Govern and open the first deployment that answers (falling over before its first
    event). A refusal is a recorded :class:`CallOutcome` holding the error (not yet
    sanitized); otherwise the upstream's SSE events byte for byte, then, when it fails
    after the start, the error (for the client's ``error`` event): a cut, a time-out, a
    stream without its final event, the upstream's own ``error`` event (not passed on)
    or ``response.failed`` (passed on), or a cancellation while the client is still
    there (the shutdown grace period ended: 503 ``shutting_down``). The request is
    recorded when that generator ends or is closed (close it: ``close_stream``); when
    the client leaves, set ``ctx.client_gone`` and cancel: the rows say 499."""
    try:
        chosen = await _govern(gateway, ctx, request)
    except LanewayError as exc:
        return _refused(gateway, ctx, exc)
    last: LanewayError | None = None
    for d in chosen:
        begun = _begin(ctx, d)
        if begun is None:
            continue
        relay_, attempt = begun
        events = relay_.stream(request.doc)
        try:
            first = await anext(events)
        except LanewayError as exc:
            await events.aclose()
            _failed(d, attempt, exc)
            if not may_fall_back(exc):
                return _refused(gateway, ctx, exc)
            last = exc
            continue
        except BaseException:
            d.breaker.abandon()
            await events.aclose()
            raise
        attempt.first_byte = time.perf_counter()
        ctx.trace.served_by = d.name
        return _relayed(gateway, ctx, request, d, attempt, first, events)
    return _refused(gateway, ctx, _exhausted(ctx, last))


def _refused(gateway: Gateway, ctx: RequestContext, exc: LanewayError) -> CallOutcome:
    outcome = CallOutcome(status=exc.status, error=exc)
    gateway.finish(ctx, outcome)
    return outcome


async def _relayed(
    gateway: Gateway,
    ctx: RequestContext,
    request: RelayRequest,
    d: Deployment,
    attempt: Attempt,
    first: RelayEvent,
    events: AsyncGenerator[RelayEvent, None],
) -> AsyncGenerator[bytes | LanewayError, None]:
    first_byte = attempt.first_byte
    outcome = CallOutcome(status=200, ttft=None if first_byte is None else first_byte - ctx.started)
    usage: Usage | None = None
    deltas = 0  # text / arguments deltas sent: what a broken stream is billed for
    try:
        event: RelayEvent | None = first
        while event is not None:
            if event.kind == "error":  # the upstream's: sent on as the gateway's own
                raise UpstreamServerError(_upstream_error(event.kind, _payload(event.raw)))
            yield event.raw
            if event.kind in _DELTAS:
                deltas += 1
            elif event.response is not None:
                usage = event.usage
                ctx.served_model = _model_of(event.response)
                _scan_output(gateway, ctx, event.response, sent=True)  # the audit only
                if event.kind == "response.failed":  # relayed; the error event follows
                    raise UpstreamServerError(_upstream_error(event.kind, event.response))
            event = await anext(events, None)
        d.breaker.success()
        outcome.usage = _usage(ctx, request, usage)
        outcome.cost = gateway.request_cost(ctx)
        outcome.priced = True
    except LanewayError as exc:  # after the start: the client gets an error event
        _broken(ctx, request, outcome, d, attempt, exc, usage, deltas)
        yield exc
    except asyncio.CancelledError:
        if ctx.client_gone:
            _left(ctx, request, outcome, d, attempt, usage, deltas)
            raise
        # the shutdown grace period is over: the client still gets an error event
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        stopped = ShuttingDown("the gateway is shutting down; retry the request")
        _broken(ctx, request, outcome, d, attempt, stopped, usage, deltas)
        yield stopped
    except GeneratorExit:  # closed: the client left, or the server stopped writing
        if ctx.client_gone:
            _left(ctx, request, outcome, d, attempt, usage, deltas)
        else:
            stopped = ShuttingDown("the gateway stopped the stream")
            _broken(ctx, request, outcome, d, attempt, stopped, usage, deltas)
        raise
    finally:
        attempt.ended = time.perf_counter()
        # recorded before the upstream connection is closed (an await): when the server
        # stops, its ledger closes right after the grace period's cancellations
        gateway.finish(ctx, outcome)
        await asyncio.shield(events.aclose())


def _broken(
    ctx: RequestContext,
    request: RelayRequest,
    outcome: CallOutcome,
    d: Deployment,
    attempt: Attempt,
    exc: LanewayError,
    usage: Usage | None,
    deltas: int,
) -> None:
    """A relayed stream that failed after its start: the request and its call failed,
    partial, billed for what was sent."""
    _failed(d, attempt, exc)
    outcome.status, outcome.error, outcome.partial = exc.status, exc, True
    outcome.usage = _usage(ctx, request, usage, deltas)
    attempt.partial = True


def _left(
    ctx: RequestContext,
    request: RelayRequest,
    outcome: CallOutcome,
    d: Deployment,
    attempt: Attempt,
    usage: Usage | None,
    deltas: int,
) -> None:
    """The client left a relayed stream: 499, and its call too (partial, billed)."""
    d.breaker.abandon()
    outcome.status, outcome.partial = 499, True
    outcome.usage = _usage(ctx, request, usage, deltas)
    attempt.partial = True
    attempt.error = ClientClosed("the client closed the connection")


def _upstream_error(kind: str, payload: Any) -> str:
    """What an upstream's ``error`` event, or a response (``response.failed``'s, or a
    non-streamed one) with ``status: "failed"``, says went wrong."""
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if message is None and isinstance(payload, dict):
        message = payload.get("message")  # the documented flat shape
    detail = f": {message[:500]}" if isinstance(message, str) and message else ""
    what = "a failed response" if kind == "response" else kind
    return f"openai sent {what}{detail}"


def _payload(raw: bytes) -> Any:
    try:
        return orjson.loads(raw[raw.index(b"\ndata: ") + 7 :])
    except (ValueError, orjson.JSONDecodeError):
        return None


async def _govern(gateway: Gateway, ctx: RequestContext, request: RelayRequest) -> list[Deployment]:
    """Scan, key limits, resolve, keep the deployments that speak the Responses API (the
    one holding the previous response, when there is one), policy filter, budget."""
    governance = gateway.governance
    scan = request.scan
    admission = await asyncio.to_thread(governance.admit, scan, ctx.key)
    ctx.admission = admission
    if admission.redacted is not None:
        raise SensitiveDataBlocked(
            "the request holds sensitive data and the policy redacts it, but a relayed "
            "Responses request (reasoning items) cannot be redacted: remove the values"
        )
    key, store = ctx.key, governance.store
    if key is not None and (key.rpm or key.tpm) and store is not None:
        await asyncio.to_thread(store.take_rate, key, estimate_prompt_tokens(scan))
    if scan.model == "auto" or scan.model.startswith("auto:"):
        raise UnsupportedParameter(
            f"{request.why}: a relayed Responses request needs a deployment, model or tier, "
            "not 'auto' (reasoning items belong to the model that wrote them; routing by "
            "the prompt could send them to another)",
            param="model",
        )
    resolution = gateway.resolver.resolve(scan.model)
    ctx.resolution = resolution
    able = _able(gateway, ctx, request, resolution.deployments)
    names_ok = governance.filter(able, resolution.tier, scan.model, admission)
    if key is not None and key.budget_usd is not None and store is not None:
        amount = governance.max_cost(scan, names_ok)
        ctx.reservation = await asyncio.to_thread(store.reserve, key, amount)
    return [gateway.deployments[n] for n in names_ok]


def _able(
    gateway: Gateway, ctx: RequestContext, request: RelayRequest, candidates: tuple[str, ...]
) -> list[str]:
    """The resolved deployments that serve the Responses API (and hold the previous
    response, when there is one); a 400 naming them all when none does."""
    able: list[str] = []
    for name in candidates:
        if relay_for(gateway.deployments[name].adapter) is None:
            ctx.trace.skipped.append((name, "no_responses_api"))
        elif request.deployment is not None and name != request.deployment:
            ctx.trace.skipped.append((name, "not_the_previous_deployment"))
        else:
            able.append(name)
    if not able:
        names = ", ".join(repr(n) for n in candidates)
        held = request.deployment
        holder = f" (the previous response lives on {held!r})" if held else ""
        raise UnsupportedParameter(
            f"{request.why}: such requests pass through to OpenAI's Responses API only, and "
            f"model {request.scan.model!r} resolves to deployment(s) {names}, none of which "
            f"serves it{holder}; leave reasoning items and include out to use any "
            "deployment, or choose an OpenAI deployment",
            param="model",
        )
    return able


def _begin(ctx: RequestContext, d: Deployment) -> tuple[ResponsesRelay, Attempt] | None:
    if not d.breaker.acquire():
        ctx.trace.skipped.append((d.name, "circuit_open"))
        return None
    relay_ = relay_for(d.adapter)
    assert relay_ is not None  # kept by _govern
    attempt = Attempt(d.name, time.perf_counter())
    ctx.trace.attempts.append(attempt)
    return relay_, attempt


def _failed(d: Deployment, attempt: Attempt, exc: LanewayError) -> None:
    attempt.ended = time.perf_counter()
    attempt.error = exc
    if isinstance(exc, UpstreamError) and may_fall_back(exc):
        d.breaker.failure()
    else:
        d.breaker.abandon()


_DELTAS = frozenset({
    "response.output_text.delta", "response.function_call_arguments.delta",
    "response.reasoning_summary_text.delta", "response.refusal.delta",
})  # fmt: skip


def _usage(ctx: RequestContext, request: RelayRequest, usage: Usage | None, sent: int = 0) -> Usage:
    """The upstream's usage; when it never said (a stream that broke or was left), an
    estimate, marked as such: the prompt, and a token per delta ``sent`` (as chat's)."""
    if usage is None:
        prompt = estimate_prompt_tokens(request.scan)
        usage = Usage(prompt_tokens=prompt, completion_tokens=sent)
        ctx.estimated = True
    ctx.trace.attempts[-1].usage = usage
    return usage


def _exhausted(ctx: RequestContext, last: LanewayError | None) -> LanewayError:
    if last is not None:
        return last
    open_ = [name for name, why in ctx.trace.skipped if why == "circuit_open"]
    if open_:
        return CircuitOpen(f"deployment {open_[0]!r} is failing (circuit open)")
    return NoDeploymentAvailable("no deployment can serve this relayed Responses request")


def _scan_output(
    gateway: Gateway, ctx: RequestContext, response: dict[str, Any], *, sent: bool = False
) -> None:
    """As chat's output scan: the answer's ``output_text`` parts from an external
    deployment are scanned for the audit, and redacted where the policy says so (unless
    ``sent``: a stream's final response, whose text the client already has)."""
    policies = gateway.settings.policies
    served = gateway.deployments.get(ctx.trace.served_by or "")
    if not policies.output_scan or served is None or served.hosting in PRIVATE_HOSTING:
        return
    from laneway.governance import redact_text, scan_output

    scanner = gateway.governance.scanner
    totals: dict[str, int] = {}
    for item in response.get("output") or ():
        parts = item.get("content") if isinstance(item, dict) else None
        for part in parts if isinstance(parts, list) else ():
            text = part.get("text") if isinstance(part, dict) else None
            if part.get("type") != "output_text" or not isinstance(text, str):
                continue
            counts = scan_output(text, scanner)
            for kind, n in counts.items():
                totals[kind] = totals.get(kind, 0) + n
            if counts and policies.redact_output and not sent:
                part["text"] = redact_text(text, scanner)
    if totals and ctx.admission is not None:
        ctx.admission.audit["output"] = totals


def _model_of(response: Mapping[str, Any]) -> str | None:
    """The model the upstream says answered (for the ledger's drift checks)."""
    model = response.get("model")
    return model[:200] if isinstance(model, str) and model else None
