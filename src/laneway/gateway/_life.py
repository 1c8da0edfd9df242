"""One request's life in the core, as a protocol calls it: :func:`complete` (one outcome)
or :func:`stream` (deltas, then one outcome). Both admit, route and call through the
gateway, account for what was used (upstream usage, an estimate when it sent none,
partial billing when the request ended early) and record the request in ONE ``finally``.

How a request can end, and what is recorded:

- answered: 200, the upstream's usage (or an estimate, marked ``estimated``);
- refused or failed (``LanewayError``): its status; after a stream's first delta the
  call is marked partial and what was sent is billed;
- the client went away (the protocol layer set ``ctx.client_gone`` and cancelled the
  task): 499, partial, billed for what the call in flight used; ``CancelledError`` goes on;
- cancelled otherwise (the server's shutdown grace period ended): ``shutting_down``;
- a bug below (any other exception): ``internal_error``, logged without request data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Generic, TypeVar

from laneway.errors import (
    ClientClosed,
    LanewayError,
    ShuttingDown,
    StreamInterrupted,
    UpstreamBadResponse,
)
from laneway.gateway._context import CallOutcome, RequestContext
from laneway.gateway._records import finish
from laneway.providers import ChatRequest, StreamDelta, Usage, estimate_prompt_tokens, text_tokens

if TYPE_CHECKING:
    from laneway.gateway._core import Gateway
    from laneway.settings import ShadowRule

__all__ = [
    "Accounted",
    "abandoned_usage",
    "close_stream",
    "complete",
    "internal_error",
    "shutting_down",
    "stream",
]

log = logging.getLogger("laneway.gateway")

OutcomeT = TypeVar("OutcomeT", bound=CallOutcome)


async def complete(gateway: Gateway, ctx: RequestContext, request: ChatRequest) -> CallOutcome:
    """``Gateway.complete``: answer ``request`` in full and record it. Never raises
    ``LanewayError`` (a failure is the outcome's ``error``, safe to show the client);
    raises ``CancelledError`` only when ``ctx.client_gone`` (the request is recorded)."""
    with Accounted(gateway, ctx, request, CallOutcome(status=200)) as outcome:
        result = await gateway.answer(ctx, request)
        ctx.model_id = gateway.served_model_id(ctx, request)
        outcome.result = result
        outcome.usage = result.usage if result.usage is not None else ctx.estimated_usage
        outcome.cost = gateway.request_cost(ctx)
        outcome.priced = True
    error = outcome.error
    if error is not None:
        gateway.sanitize(error)
    elif gateway.shadow is not None and outcome.result is not None:
        result = outcome.result
        gateway.shadow.offer(ctx, result, result.content, outcome.cost)
    return outcome


class Accounted(Generic[OutcomeT]):
    """``with Accounted(gateway, ctx, request, outcome) as outcome:`` around the work of a
    request that answers in one piece (chat, embeddings, a relayed response): however the
    work ends, the outcome says how and the request is recorded once (``finish``).

    A ``LanewayError`` becomes the outcome's error; a cancellation bills the call in flight
    and is a 499 re-raised when the client left, else the gateway shutting down; anything
    else is logged as ``internal_error``. Only a client's cancellation (and a
    ``BaseException`` such as ``KeyboardInterrupt``) leaves the block."""

    __slots__ = ("_ctx", "_gateway", "_outcome", "_request")

    def __init__(
        self, gateway: Gateway, ctx: RequestContext, request: ChatRequest, outcome: OutcomeT
    ) -> None:
        self._gateway = gateway
        self._ctx = ctx
        self._request = request
        self._outcome = outcome

    def __enter__(self) -> OutcomeT:
        return self._outcome

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        outcome, ctx = self._outcome, self._ctx
        try:
            if exc is None:
                return False
            if isinstance(exc, LanewayError):
                outcome.status = exc.status
                outcome.error = exc
                return True
            if isinstance(exc, asyncio.CancelledError):
                outcome.usage = abandoned_usage(ctx, self._request, exc)
                if ctx.client_gone:
                    outcome.status = 499
                    outcome.partial = True
                    return False
                shutting_down(outcome)
                return True
            if isinstance(exc, Exception):  # a bug below: the client still gets an answer
                err = internal_error(ctx, exc)
                outcome.usage = abandoned_usage(ctx, self._request, exc, err)
                outcome.status = err.status
                outcome.error = err
                return True
            return False
        finally:
            finish(self._gateway, ctx, outcome)


async def stream(
    gateway: Gateway, ctx: RequestContext, request: ChatRequest
) -> AsyncGenerator[StreamDelta | CallOutcome, None]:
    """``Gateway.stream``: the deltas worth sending, then one final outcome (or an
    outcome first, for a failure before the first delta); recorded when it ends or is
    closed."""
    tally = _StreamTally(keep_text=False)
    shadow = gateway.shadow
    drawn: tuple[ShadowRule, ...] = ()
    outcome = CallOutcome(status=200)
    rest: AsyncIterator[StreamDelta] | None = None
    begun = False  # the first delta was handed out: an end from here on is partial
    try:
        first, rest = await gateway.open_stream(ctx, request)
        outcome.ttft = time.perf_counter() - ctx.started
        ctx.model_id = gateway.served_model_id(ctx, request)
        begun = outcome.partial = True
        if shadow is not None and (drawn := shadow.draw(ctx)):  # routed: sample it now
            tally.texts = []  # only a sampled stream keeps its text for the copy
        tally.add(first, ctx, True)  # the first delta is always handed out
        yield first
        async for delta in rest:  # (``async for``: ~1k instructions less per delta than anext)
            if tally.add(delta, ctx, False):
                yield delta
        if tally.finish is None:
            raise StreamInterrupted(
                "the upstream stream ended without a finish reason (truncated answer)"
            ) from UpstreamBadResponse("no finish_reason")
        outcome.partial = False
        if tally.usage is None:  # the upstream never said: bill an estimate, marked as such
            tally.usage = gateway.estimate_usage(ctx, request, max(1, text_tokens(tally.chars)))
        outcome.usage = tally.usage
        outcome.finish_reason = tally.finish
        outcome.cost = gateway.request_cost(ctx)
        outcome.priced = True
        yield outcome
    except LanewayError as exc:
        outcome.status = exc.status
        outcome.error = exc
        yield _sanitized(gateway, outcome)
    except asyncio.CancelledError as exc:
        if not begun:
            outcome.usage = abandoned_usage(ctx, request, exc)
        if ctx.client_gone:
            if not begun:
                outcome.status = 499
                outcome.partial = True
            raise  # the finally below bills what was sent
        shutting_down(outcome)
        yield outcome
    except Exception as exc:  # a bug below: still end with an error the client can read
        err = internal_error(ctx, exc)
        if not begun:
            outcome.usage = abandoned_usage(ctx, request, exc, err)
        outcome.status = err.status
        outcome.error = err
        yield outcome
    finally:
        if begun and outcome.partial:
            # Cut, failed or client gone: the call's record says so too, and what was
            # sent and generated is billed (estimated when the upstream never said).
            outcome.usage = _settle_partial(ctx, request, tally.usage, tally.chunks, outcome.error)
            if outcome.error is None:
                outcome.status = 499
        finish(gateway, ctx, outcome)
        if shadow is not None and drawn and tally.texts is not None and outcome.status == 200:
            shadow.offer(ctx, None, "".join(tally.texts), outcome.cost, drawn)
        if rest is not None:
            await close_stream(rest)


def _sanitized(gateway: Gateway, outcome: CallOutcome) -> CallOutcome:
    if outcome.error is not None:
        gateway.sanitize(outcome.error)
    return outcome


def shutting_down(outcome: CallOutcome) -> None:
    """Cancelled from outside: the grace period after SIGTERM is over. The client still
    gets an answer it can read (and retry elsewhere), not a cut connection."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    err = ShuttingDown("the gateway is shutting down; retry the request")
    outcome.status = err.status
    outcome.error = err


class _StreamTally:
    """What a stream has said so far: usage, finish reason, deltas handed out, characters
    (for an estimate when the upstream sends no usage) and, for a shadow copy, the text."""

    __slots__ = ("chars", "chunks", "finish", "texts", "usage")

    def __init__(self, *, keep_text: bool) -> None:
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.chunks = 0
        self.chars = 0
        self.texts: list[str] | None = [] if keep_text else None

    def add(self, delta: StreamDelta, ctx: RequestContext, first: bool) -> bool:
        """Count ``delta``; whether to hand it out (anything in it, or the first one)."""
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.finish_reason is not None:
            self.finish = delta.finish_reason
        if delta.model:
            ctx.served_model = delta.model
        if delta.system_fingerprint:
            ctx.fingerprint = delta.system_fingerprint
        if delta.content is None and not delta.tool_calls and not delta.finish_reason and not first:
            return False
        self.chunks += 1
        if delta.content is not None:
            self.chars += len(delta.content)
            if self.texts is not None:
                self.texts.append(delta.content)
        if delta.tool_calls:
            self.chars += _tool_chars(delta)
        return True


def _tool_chars(delta: StreamDelta) -> int:
    size = 0
    for call in delta.tool_calls or ():
        function = call.get("function") or {}
        size += len(function.get("arguments") or "") + len(function.get("name") or "")
    return size


async def close_stream(iterator: AsyncIterator[object]) -> None:
    """Close an async iterator that may or may not be a generator (the one place a
    stream is closed): its ``finally`` runs now; an error or a cancellation raised while
    it closes is not the caller's concern."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with contextlib.suppress(LanewayError, asyncio.CancelledError):
            await close()


def internal_error(ctx: RequestContext, exc: BaseException) -> LanewayError:
    """Log an unexpected exception (its type and frames, not its message: that may hold
    request data) and return the client's ``internal_error``."""
    log.error(
        "unexpected %s in request %s\n%s",
        type(exc).__name__,
        ctx.request_id,
        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
    )
    return LanewayError("internal error (see the gateway's log)")


def _settle_partial(
    ctx: RequestContext,
    request: ChatRequest,
    usage: Usage | None,
    completion: int,
    error: LanewayError | None,
) -> Usage | None:
    """Close the record of the call a request ended in the middle of (client gone, stream
    cut, unexpected error): mark it partial and failed, and bill what was sent and
    generated (``usage`` when the upstream said, else the estimate and ``completion``)."""
    last = ctx.trace.attempts[-1] if ctx.trace.attempts else None
    if last is None:
        return usage
    if usage is None:
        usage = last.usage or Usage(
            prompt_tokens=estimate_prompt_tokens(request), completion_tokens=completion
        )
    if last.usage is None:
        last.usage = usage
    last.partial = True
    if last.error is None:
        last.error = error or ClientClosed("the client closed the connection")
    if last.ended is None:
        last.ended = time.perf_counter()
    return usage


def abandoned_usage(
    ctx: RequestContext,
    request: ChatRequest,
    exc: BaseException,
    error: LanewayError | None = None,
) -> Usage | None:
    """Usage of a request that ended while it waited for an answer (cancelled, or an
    unexpected error ``error``): the call in flight, if any, is marked failed and billed
    with what its adapter counted (the embedded model attaches a ``usage`` to its
    cancellation) or the prompt estimate."""
    last = ctx.trace.attempts[-1] if ctx.trace.attempts else None
    if last is None:
        return None
    if last.ended is not None:  # nothing in flight (e.g. waiting to retry)
        return last.usage
    counted = getattr(exc, "usage", None)
    counted = counted if isinstance(counted, Usage) else None
    if error is None and isinstance(exc, asyncio.CancelledError) and not ctx.client_gone:
        # the server cancelled it (its shutdown grace period ended), not the client
        error = ShuttingDown("the gateway is shutting down; retry the request")
    return _settle_partial(ctx, request, counted, 0, error)
