"""Retry and fallback as wrappers with the same interface as an adapter (ChatModel).

They are built per request (a few small objects) so that each can record its attempts
in that request's :class:`~laneway.resilience.Trace`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from laneway.errors import (
    CircuitOpen,
    LanewayError,
    StreamInterrupted,
    UpstreamBadResponse,
    UpstreamError,
)
from laneway.providers import ChatModel, ChatRequest, ChatResult, StreamDelta
from laneway.resilience._circuit import CircuitBreaker
from laneway.resilience._policy import (
    Attempt,
    Retry,
    RetryBudget,
    Trace,
    backoff_delay,
    may_fall_back,
    retry_decision,
)
from laneway.settings import RetrySettings

__all__ = ["Candidate", "FallbackModel", "RetryingModel"]

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A deployment that may serve a request: its name, adapter and circuit breaker."""

    name: str
    model: ChatModel
    breaker: CircuitBreaker


def _is_fault(exc: LanewayError) -> bool:
    """Failures that count against a deployment's health (not the client's mistakes)."""
    return isinstance(exc, UpstreamError) and may_fall_back(exc)


class RetryingModel:
    """Tries one deployment up to ``1 + max_retries`` times on retryable errors, with
    jittered exponential backoff that honours Retry-After, within the retry budget.
    A stream is retried only before its first delta; a time-out is never retried here.
    Every attempt asks the deployment's circuit breaker first: an open circuit (or a
    half-open one whose single probe is out) fails fast with ``CircuitOpen``."""

    def __init__(
        self,
        candidate: Candidate,
        settings: RetrySettings,
        budget: RetryBudget,
        trace: Trace,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._candidate = candidate
        self._settings = settings
        self._budget = budget
        self._trace = trace
        self._sleep = sleep
        self._clock = clock

    def check(self, request: ChatRequest) -> None:
        self._candidate.model.check(request)

    def _start(self, last: LanewayError | None) -> Attempt:
        """Begin an attempt if the circuit breaker lets it go (closed, or the one
        half-open probe); otherwise raise: the previous attempt's error when this was a
        retry, else :class:`~laneway.errors.CircuitOpen` (fail fast, next deployment)."""
        breaker = self._candidate.breaker
        if not breaker.acquire():
            if last is not None:
                raise last
            raise CircuitOpen(
                f"deployment {self._candidate.name!r} is failing (circuit open)",
                retry_after=breaker.retry_after(),
            )
        attempt = Attempt(self._candidate.name, self._clock())
        self._trace.attempts.append(attempt)
        return attempt

    def _succeeded(self) -> None:
        self._candidate.breaker.success()
        self._budget.success()

    async def _after_failure(self, attempt: Attempt, exc: LanewayError, number: int) -> None:
        """Record the failure; return to retry, or re-raise ``exc`` to give up."""
        attempt.ended = self._clock()
        attempt.error = exc
        if _is_fault(exc):
            self._candidate.breaker.failure()
            self._budget.failure()
        else:  # the request's fault, not the deployment's: no verdict, free a probe slot
            self._candidate.breaker.abandon()
        decision = retry_decision(exc)
        if decision.kind is Retry.NO or number > self._settings.max_retries:
            raise exc
        delay = backoff_delay(number, decision, self._settings)
        if delay is None or not self._budget.allows_retry():
            raise exc
        await self._sleep(delay)

    async def complete(self, request: ChatRequest) -> ChatResult:
        number = 0
        last: LanewayError | None = None
        while True:
            number += 1
            attempt = self._start(last)
            try:
                result = await self._candidate.model.complete(request)
            except LanewayError as exc:
                last = exc
                await self._after_failure(attempt, exc, number)
                continue
            except BaseException:  # cancelled: no verdict on the deployment
                self._candidate.breaker.abandon()
                raise
            attempt.ended = attempt.first_byte = self._clock()
            attempt.usage = result.usage
            self._succeeded()
            self._trace.served_by = self._candidate.name
            return result

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        number = 0
        last: LanewayError | None = None
        while True:
            number += 1
            attempt = self._start(last)
            inner = aiter(self._candidate.model.stream(request))
            try:
                first = await anext(inner)
            except StopAsyncIteration:
                await _close(inner)
                last = UpstreamBadResponse("the upstream stream ended before any data")
                await self._after_failure(attempt, last, number)
                continue
            except LanewayError as exc:
                await _close(inner)
                last = exc
                await self._after_failure(attempt, exc, number)
                continue
            except BaseException:
                self._candidate.breaker.abandon()
                await _close(inner)
                raise
            break
        attempt.first_byte = self._clock()
        self._trace.served_by = self._candidate.name
        try:
            if first.usage is not None:
                attempt.usage = first.usage
            yield first
            async for delta in inner:
                if delta.usage is not None:
                    attempt.usage = delta.usage
                yield delta
        except LanewayError as exc:
            attempt.error = exc
            attempt.partial = True
            self._candidate.breaker.failure()
            self._budget.failure()
            raise StreamInterrupted(
                f"the stream from {self._candidate.name!r} broke after it started: {exc.message}",
                upstream_status=getattr(exc, "upstream_status", None),
            ) from exc
        except BaseException:  # the client left mid-stream: no verdict
            self._candidate.breaker.abandon()
            raise
        finally:
            attempt.ended = self._clock()
            await _close(inner)
        self._succeeded()


class FallbackModel:
    """Tries each member in order; falls back only on errors that allow it
    (:func:`~laneway.resilience.may_fall_back`) and, for streams, only before the
    first delta reached the client. When every member failed, the error of the last
    one tried is raised (see :func:`_last_error`)."""

    def __init__(self, members: Sequence[ChatModel]) -> None:
        if not members:
            raise ValueError("FallbackModel needs at least one member")
        self._members = tuple(members)

    def check(self, request: ChatRequest) -> None:
        self._members[0].check(request)

    async def complete(self, request: ChatRequest) -> ChatResult:
        last: LanewayError | None = None
        for member in self._members:
            try:
                return await member.complete(request)
            except LanewayError as exc:
                if not may_fall_back(exc):
                    raise
                last = _last_error(last, exc)
        assert last is not None
        raise last

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        last: LanewayError | None = None
        for member in self._members:
            inner = aiter(member.stream(request))
            try:
                first = await anext(inner)
            except LanewayError as exc:
                await _close(inner)
                if not may_fall_back(exc):
                    raise
                last = _last_error(last, exc)
                continue
            except BaseException:
                await _close(inner)
                raise
            try:
                yield first
                async for delta in inner:
                    yield delta
            finally:
                await _close(inner)
            return
        assert last is not None
        raise last


def _last_error(last: LanewayError | None, new: LanewayError) -> LanewayError:
    """The error a request that no deployment served ends with: the last deployment
    tried decides (its 429 with Retry-After, its time-out's 504, else 502), and a
    deployment skipped for its open circuit never hides a real failure before it."""
    if last is not None and isinstance(new, CircuitOpen):
        return last
    return new


async def _close(iterator: AsyncIterator[StreamDelta]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
