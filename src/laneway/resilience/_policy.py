"""Retry decisions as values, the retry budget, and the per-request trace of attempts."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from laneway.errors import (
    ContentFiltered,
    InvalidOutput,
    LanewayError,
    UpstreamError,
    UpstreamInvalidRequest,
    UpstreamRateLimited,
)
from laneway.providers import Usage
from laneway.settings import RetrySettings

__all__ = [
    "Attempt",
    "Retry",
    "RetryBudget",
    "RetryDecision",
    "Trace",
    "backoff_delay",
    "may_fall_back",
    "retry_decision",
]


class Retry(Enum):
    NO = "no"
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class RetryDecision:
    kind: Retry
    retry_after: float | None = None


def retry_decision(exc: BaseException) -> RetryDecision:
    """Whether the same deployment may be tried again after ``exc``."""
    if isinstance(exc, UpstreamRateLimited):
        return RetryDecision(Retry.RATE_LIMITED, exc.retry_after)
    if isinstance(exc, UpstreamError) and exc.retryable:
        return RetryDecision(Retry.TRANSIENT, exc.retry_after)
    return RetryDecision(Retry.NO)


def may_fall_back(exc: BaseException) -> bool:
    """Whether the next deployment of the tier may be tried after ``exc``.

    Upstream faults and refused credentials fall back; a request the upstream judged
    invalid (context length included) or filtered is never sent elsewhere.
    """
    if isinstance(exc, UpstreamInvalidRequest | ContentFiltered):
        return False
    return isinstance(exc, UpstreamError | InvalidOutput)


def backoff_delay(
    attempt: int,
    decision: RetryDecision,
    settings: RetrySettings,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before retry ``attempt`` (1-based), or ``None`` to give up on
    this deployment (a Retry-After longer than the cap means: fall back now)."""
    if decision.retry_after is not None:
        if decision.retry_after > settings.max_retry_after:
            return None
        return decision.retry_after
    ceiling = min(settings.max_delay, settings.base_delay * float(2 ** (attempt - 1)))
    return ceiling * (0.5 + 0.5 * rand())  # "equal jitter"


class RetryBudget:
    """A token bucket shared by one worker's requests: every request deposits
    ``budget_ratio`` tokens, time adds ``budget_min`` per second, a retry takes one.
    Under a full outage this caps retries at a fraction of traffic."""

    def __init__(self, settings: RetrySettings, clock: Callable[[], float] = time.monotonic):
        self._ratio = settings.budget_ratio
        self._per_second = settings.budget_min
        self._cap = max(10.0, settings.budget_min * 10)
        self._clock = clock
        self._tokens = self._cap
        self._last = clock()
        self._lock = threading.Lock()

    def deposit(self) -> None:
        with self._lock:
            self._tokens = min(self._cap, self._tokens + self._ratio)

    def try_spend(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._cap, self._tokens + (now - self._last) * self._per_second)
            self._last = now
            if self._tokens >= 1.0 - 1e-9:  # tolerate float sums of the ratio
                self._tokens -= 1.0
                return True
            return False


@dataclass(slots=True)
class Attempt:
    """One upstream try, for the ledger."""

    deployment: str
    started: float
    ended: float | None = None
    first_byte: float | None = None
    error: LanewayError | None = None
    usage: Usage | None = None
    partial: bool = False

    @property
    def latency_ms(self) -> float | None:
        return None if self.ended is None else (self.ended - self.started) * 1000.0

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_byte is None else (self.first_byte - self.started) * 1000.0


@dataclass(slots=True)
class Trace:
    """What happened to one request: skipped deployments with reasons, every attempt."""

    skipped: list[tuple[str, str]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    served_by: str | None = None

    @property
    def fallbacks(self) -> int:
        """How many deployments failed before the one that served (or the last one)."""
        names: list[str] = []
        for attempt in self.attempts:
            if not names or names[-1] != attempt.deployment:
                names.append(attempt.deployment)
        return max(0, len(names) - 1)
