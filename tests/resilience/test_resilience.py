"""Retry decisions, backoff, the retry budget and the circuit breaker (unit level)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from laneway.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    StreamInterrupted,
    UpstreamAuthError,
    UpstreamConnectionError,
    UpstreamInvalidRequest,
    UpstreamRateLimited,
    UpstreamServerError,
)
from laneway.providers import ChatRequest, ChatResult, StreamDelta, Usage
from laneway.resilience import (
    Candidate,
    CircuitBreaker,
    CircuitState,
    FallbackModel,
    Retry,
    RetryBudget,
    RetryingModel,
    Trace,
    backoff_delay,
    may_fall_back,
    retry_decision,
)
from laneway.settings import CircuitSettings, RetrySettings

REQUEST = ChatRequest(model="m", messages=({"role": "user", "content": "hi"},))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A ChatModel that plays a script of exceptions and results."""

    def __init__(self, *script: BaseException | str) -> None:
        self.script = list(script)
        self.calls = 0

    def check(self, request: ChatRequest) -> None:
        return None

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.calls += 1
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return ChatResult(content=step, finish_reason="stop", model="m", usage=Usage(3, 4))

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        self.calls += 1
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        for word in step.split():
            yield StreamDelta(content=word)
            if word == "BREAK":
                raise UpstreamConnectionError("reset")
        yield StreamDelta(finish_reason="stop", usage=Usage(1, 2))


async def no_sleep(seconds: float) -> None:
    sleeps.append(seconds)


sleeps: list[float] = []


def _retrying(model: Scripted, trace: Trace, **retry: float) -> RetryingModel:
    settings = RetrySettings(**retry)  # type: ignore[arg-type]
    return RetryingModel(
        Candidate("d", model, CircuitBreaker(CircuitSettings())),
        settings,
        RetryBudget(settings),
        trace,
        sleep=no_sleep,
    )


def test_retry_decisions_by_type() -> None:
    assert retry_decision(UpstreamRateLimited("x", retry_after=3)).kind is Retry.RATE_LIMITED
    assert retry_decision(UpstreamRateLimited("x", retry_after=3)).retry_after == 3
    assert retry_decision(UpstreamServerError("x")).kind is Retry.TRANSIENT
    assert retry_decision(UpstreamConnectionError("x")).kind is Retry.TRANSIENT
    for final in (
        UpstreamAuthError("x"),
        ContextLengthExceeded("x"),
        ContentFiltered("x"),
        UpstreamInvalidRequest("x"),
    ):
        assert retry_decision(final).kind is Retry.NO
    assert may_fall_back(UpstreamAuthError("x"))
    assert may_fall_back(UpstreamServerError("x"))
    assert not may_fall_back(ContextLengthExceeded("x"))
    assert not may_fall_back(ContentFiltered("x"))


def test_backoff_is_jittered_exponential_and_honours_retry_after() -> None:
    settings = RetrySettings(base_delay=0.1, max_delay=1.0, max_retry_after=5)
    transient = retry_decision(UpstreamServerError("x"))
    assert backoff_delay(1, transient, settings, rand=lambda: 1.0) == pytest.approx(0.1)
    assert backoff_delay(3, transient, settings, rand=lambda: 1.0) == pytest.approx(0.4)
    assert backoff_delay(3, transient, settings, rand=lambda: 0.0) == pytest.approx(0.2)
    assert backoff_delay(10, transient, settings, rand=lambda: 1.0) == pytest.approx(1.0)
    limited = retry_decision(UpstreamRateLimited("x", retry_after=2.5))
    assert backoff_delay(1, limited, settings) == 2.5
    too_long = retry_decision(UpstreamRateLimited("x", retry_after=60))
    assert backoff_delay(1, too_long, settings) is None  # fall back instead of waiting


def test_retry_budget_throttles_retries_under_an_outage_and_recovers() -> None:
    budget = RetryBudget(RetrySettings(budget_ratio=0.1, budget_min=5))
    allowed = 0
    for _ in range(100):  # a sustained outage: every attempt fails
        budget.failure()
        allowed += budget.allows_retry()
    assert allowed == 4  # 10 tokens: retries while more than 5 are left, then none
    for _ in range(50):  # the upstreams answer again: 50 successes earn 5 tokens
        budget.success()
    assert not budget.allows_retry()  # exactly 5 left: not more than budget_min
    budget.success()
    assert budget.allows_retry()


async def test_retrying_model_retries_then_succeeds_and_records_attempts() -> None:
    sleeps.clear()
    trace = Trace()
    model = Scripted(UpstreamServerError("a", upstream_status=503), "ok")
    result = await _retrying(model, trace, max_retries=2, base_delay=0.01).complete(REQUEST)
    assert result.content == "ok"
    assert model.calls == 2
    assert len(sleeps) == 1
    assert [a.error is None for a in trace.attempts] == [False, True]
    assert trace.served_by == "d"


async def test_retrying_model_gives_up_after_max_retries() -> None:
    trace = Trace()
    model = Scripted(*(UpstreamServerError("a") for _ in range(5)))
    with pytest.raises(UpstreamServerError):
        await _retrying(model, trace, max_retries=2).complete(REQUEST)
    assert model.calls == 3


async def test_non_retryable_error_is_raised_at_once() -> None:
    model = Scripted(ContextLengthExceeded("too long"), "ok")
    with pytest.raises(ContextLengthExceeded):
        await _retrying(model, Trace(), max_retries=3).complete(REQUEST)
    assert model.calls == 1


async def test_fallback_tries_next_member_only_when_allowed() -> None:
    trace = Trace()
    first = Scripted(UpstreamAuthError("bad key"))
    second = Scripted("from second")
    chain = FallbackModel(
        [_retrying(first, trace, max_retries=0), _retrying(second, trace, max_retries=0)]
    )
    result = await chain.complete(REQUEST)
    assert result.content == "from second"
    blocked = FallbackModel(
        [
            _retrying(Scripted(ContentFiltered("no")), Trace(), max_retries=0),
            _retrying(Scripted("never"), Trace(), max_retries=0),
        ]
    )
    with pytest.raises(ContentFiltered):
        await blocked.complete(REQUEST)


async def test_stream_falls_back_before_first_delta_but_not_after() -> None:
    trace = Trace()
    chain = FallbackModel(
        [
            _retrying(Scripted(UpstreamServerError("down")), trace, max_retries=0),
            _retrying(Scripted("hello world"), trace, max_retries=0),
        ]
    )
    words = [d.content async for d in chain.stream(REQUEST) if d.content]
    assert words == ["hello", "world"]
    assert trace.served_by == "d"
    broken = FallbackModel(
        [
            _retrying(Scripted("one BREAK"), Trace(), max_retries=2),
            _retrying(Scripted("never used"), Trace(), max_retries=0),
        ]
    )
    seen = []
    with pytest.raises(StreamInterrupted):
        async for delta in broken.stream(REQUEST):
            seen.append(delta.content)
    assert seen == ["one", "BREAK"]


def test_circuit_breaker_opens_probes_and_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(CircuitSettings(failure_threshold=3, cooldown=10), clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.failure()
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allows()
    clock.now = 10.5
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allows()
    assert breaker.acquire()
    assert not breaker.allows()  # one probe at a time
    breaker.failure()
    assert breaker.state is CircuitState.OPEN  # a failed probe reopens at once
    clock.now = 21
    assert breaker.acquire()
    breaker.success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.opened_count == 2


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_cancelled_probe_frees_the_half_open_slot(streaming: bool) -> None:
    import asyncio

    clock = Clock()
    breaker = CircuitBreaker(CircuitSettings(failure_threshold=1, cooldown=10), clock=clock)
    breaker.failure()
    clock.now = 10.5
    assert breaker.allows()  # half-open: one probe may go

    class Hangs(Scripted):
        async def complete(self, request: ChatRequest) -> ChatResult:
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

        async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
            await asyncio.sleep(3600)
            yield StreamDelta(content="unreachable")

    settings = RetrySettings()
    model = RetryingModel(
        Candidate("d", Hangs(), breaker), settings, RetryBudget(settings), Trace(), sleep=no_sleep
    )

    async def call() -> None:
        if streaming:
            async for _ in model.stream(REQUEST):
                pass
        else:
            await model.complete(REQUEST)

    task = asyncio.ensure_future(call())
    await asyncio.sleep(0.01)
    assert not breaker.allows()  # the probe is out
    task.cancel()  # the client left
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.allows()  # before the fix: refused until the process restarted
