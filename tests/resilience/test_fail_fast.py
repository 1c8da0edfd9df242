"""Failing fast (issue 12, items 7, 8, 9, 16) at the level of the wrappers: a time-out
is not retried on the same deployment, a half-open circuit lets exactly one probe
through however many requests arrive at once, an open circuit refuses at once, the
retry budget holds a sustained outage to ~1× the requests, and the error a request
ends with when nothing served it (429 passed on with Retry-After)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tests.resilience.test_resilience import Clock

from laneway.errors import (
    CircuitOpen,
    LanewayError,
    UpstreamInvalidRequest,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from laneway.providers import ChatModel, ChatRequest, ChatResult, StreamDelta, Usage
from laneway.resilience import (
    Candidate,
    CircuitBreaker,
    CircuitState,
    FallbackModel,
    RetryBudget,
    RetryingModel,
    Trace,
)
from laneway.settings import CircuitSettings, RetrySettings

REQUEST = ChatRequest(model="m", messages=({"role": "user", "content": "hi"},))


class Upstream:
    """A ChatModel that answers ``outcome`` (an exception or a text) after ``delay``."""

    def __init__(self, outcome: LanewayError | str, delay: float = 0.0) -> None:
        self.outcome = outcome
        self.delay = delay
        self.calls = 0

    def check(self, request: ChatRequest) -> None:
        return None

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(self.outcome, LanewayError):
            raise self.outcome
        return ChatResult(content=self.outcome, finish_reason="stop", model="m", usage=Usage(1, 1))

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        result = await self.complete(request)
        yield StreamDelta(content=result.content)
        yield StreamDelta(finish_reason="stop")


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def _retrying(
    name: str,
    model: ChatModel,
    breaker: CircuitBreaker | None = None,
    budget: RetryBudget | None = None,
    trace: Trace | None = None,
    **retry: float,
) -> RetryingModel:
    settings = RetrySettings(**retry)  # type: ignore[arg-type]
    return RetryingModel(
        Candidate(name, model, breaker or CircuitBreaker(CircuitSettings())),
        settings,
        budget or RetryBudget(settings),
        trace or Trace(),
        sleep=_no_sleep,
    )


def _half_open(clock: Clock) -> CircuitBreaker:
    breaker = CircuitBreaker(CircuitSettings(failure_threshold=1, cooldown=10), clock=clock)
    breaker.failure()
    clock.now = 10.5
    assert breaker.state is CircuitState.HALF_OPEN
    return breaker


# -- item 7: a time-out is not retried on the same deployment ------------------------


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_time_out_falls_over_at_once_with_one_attempt(streaming: bool) -> None:
    silent = Upstream(UpstreamTimeout("upstream did not answer within 3 s"))
    backup = Upstream("from backup")
    trace = Trace()
    chain = FallbackModel(
        [
            _retrying("silent", silent, trace=trace, max_retries=2),
            _retrying("backup", backup, trace=trace, max_retries=2),
        ]
    )
    if streaming:
        text = "".join([d.content or "" async for d in chain.stream(REQUEST)])
    else:
        text = (await chain.complete(REQUEST)).content or ""
    assert text == "from backup"
    assert silent.calls == 1  # before the fix: 3 (1 + max_retries), each a whole time-out
    assert [a.deployment for a in trace.attempts] == ["silent", "backup"]


# -- item 8: the circuit breaker -----------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
async def test_half_open_lets_exactly_one_probe_through_concurrent_requests(
    streaming: bool,
) -> None:
    breaker = _half_open(Clock())
    sick = Upstream(UpstreamServerError("still down", upstream_status=503), delay=0.05)
    backup = Upstream("from backup")

    async def one() -> str:
        chain = FallbackModel([_retrying("sick", sick, breaker), _retrying("backup", backup)])
        if streaming:
            return "".join([d.content or "" async for d in chain.stream(REQUEST)])
        return (await chain.complete(REQUEST)).content or ""

    answers = await asyncio.gather(*(one() for _ in range(10)))
    assert answers == ["from backup"] * 10
    assert sick.calls == 1  # the one probe (before the fix: 10 requests x 3 attempts)
    assert backup.calls == 10
    assert breaker.state is CircuitState.OPEN  # the failed probe reopened it


async def test_half_open_with_nothing_else_refuses_all_but_the_probe() -> None:
    breaker = _half_open(Clock())
    sick = Upstream(UpstreamServerError("still down", upstream_status=503), delay=0.05)
    model = _retrying("sick", sick, breaker)
    results = await asyncio.gather(
        *(model.complete(REQUEST) for _ in range(10)), return_exceptions=True
    )
    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["CircuitOpen"] * 9 + ["UpstreamServerError"]
    assert sick.calls == 1


async def test_an_open_circuit_fails_fast_with_retry_after() -> None:
    clock = Clock()
    breaker = CircuitBreaker(CircuitSettings(failure_threshold=1, cooldown=30), clock=clock)
    breaker.failure()
    clock.now = 12.0
    sick = Upstream("never called")
    with pytest.raises(CircuitOpen) as info:
        await _retrying("sick", sick, breaker).complete(REQUEST)
    assert sick.calls == 0  # before the fix: 3 attempts per request
    assert (info.value.status, info.value.code) == (503, "circuit_open")
    assert info.value.retry_after == pytest.approx(18.0)
    assert info.value.headers() == {"retry-after": "18"}


async def test_a_retry_the_opening_circuit_refuses_raises_the_real_failure() -> None:
    breaker = CircuitBreaker(CircuitSettings(failure_threshold=1, cooldown=30))
    sick = Upstream(UpstreamServerError("down", upstream_status=503))
    with pytest.raises(UpstreamServerError):  # not CircuitOpen: the upstream's own error
        await _retrying("sick", sick, breaker, max_retries=2).complete(REQUEST)
    assert sick.calls == 1  # its failure opened the circuit, so no retry went out


async def test_a_probe_ending_in_the_clients_error_frees_the_probe_slot() -> None:
    breaker = _half_open(Clock())
    model = _retrying("d", Upstream(UpstreamInvalidRequest("bad", upstream_status=400)), breaker)
    with pytest.raises(UpstreamInvalidRequest):
        await model.complete(REQUEST)
    assert breaker.allows()  # before the fix: the probe slot stayed taken for good


# -- item 9: the retry budget under a sustained outage ------------------------------------


async def test_retries_stay_under_a_fifth_of_requests_in_a_sustained_outage() -> None:
    settings = RetrySettings()  # the defaults
    budget = RetryBudget(settings)
    down = Upstream(UpstreamServerError("503", upstream_status=503), delay=0.001)

    async def one() -> None:
        model = RetryingModel(
            Candidate("down", down, CircuitBreaker(CircuitSettings(failure_threshold=10**6))),
            settings,
            budget,
            Trace(),
            sleep=_no_sleep,
        )
        with pytest.raises(UpstreamServerError):
            await model.complete(REQUEST)

    await asyncio.gather(*(one() for _ in range(200)))
    assert 200 <= down.calls <= 240  # before the fix: ~2x
    assert down.calls <= 200 + settings.budget_min  # about budget_min retries in all


# -- item 16: the error a request ends with --------------------------------------------


def test_an_upstream_429_is_passed_on_as_429_with_retry_after() -> None:
    limited = UpstreamRateLimited("upstream said 429", upstream_status=429, retry_after=7)
    assert (limited.status, limited.code, limited.type) == (429, "rate_limited", "rate_limit_error")
    assert limited.headers() == {"retry-after": "7"}
    unnamed = UpstreamRateLimited("upstream said 429", upstream_status=429)
    assert unnamed.headers() == {"retry-after": "5"}  # a sane default when it named none
    assert UpstreamRateLimited("x", retry_after=0.2).headers() == {"retry-after": "1"}


@pytest.mark.parametrize(
    ("first", "last", "raised"),
    [
        (UpstreamServerError("5xx", upstream_status=503), UpstreamRateLimited("429"), 429),
        (UpstreamRateLimited("429"), UpstreamServerError("5xx", upstream_status=503), 502),
        (UpstreamRateLimited("429"), UpstreamTimeout("silent"), 504),
        (UpstreamTimeout("silent"), UpstreamServerError("5xx", upstream_status=500), 502),
    ],
)
async def test_with_mixed_failures_the_last_deployment_tried_decides(
    first: LanewayError, last: LanewayError, raised: int
) -> None:
    chain = FallbackModel(
        [
            _retrying("a", Upstream(first), max_retries=0),
            _retrying("b", Upstream(last), max_retries=0),
        ]
    )
    with pytest.raises(LanewayError) as info:
        await chain.complete(REQUEST)
    assert info.value.status == raised


async def test_a_circuit_refusal_never_hides_the_failure_before_it() -> None:
    clock = Clock()
    tripped = CircuitBreaker(CircuitSettings(failure_threshold=1, cooldown=30), clock=clock)
    tripped.failure()
    chain = FallbackModel(
        [
            _retrying(
                "a", Upstream(UpstreamServerError("5xx", upstream_status=503)), max_retries=0
            ),
            _retrying("b", Upstream("never"), tripped),
        ]
    )
    with pytest.raises(UpstreamServerError):
        await chain.complete(REQUEST)


@pytest.mark.parametrize(("after", "header"), [(2.5, "3"), (0.2, "1"), (6.01, "7"), (7.0, "7")])
def test_retry_after_is_rounded_up(after: float, header: str) -> None:
    """A client told to come back sooner than the wait would be refused again: the header
    rounds up (``round`` sent 2 for 2.5 and 6 for 6.01)."""
    from laneway.errors import RateLimited

    assert RateLimited("slow down", retry_after=after).headers() == {"retry-after": header}
