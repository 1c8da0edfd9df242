"""Retry decisions as values, the retry budget, and the per-request trace of attempts."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from laneway.errors import (
    CircuitOpen,
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
    """Whether the same deployment may be tried again after ``exc``. A time-out is not
    (:class:`~laneway.errors.UpstreamTimeout` is not retryable): a silent deployment would
    cost another whole time-out, so the next deployment is tried at once."""
    if isinstance(exc, UpstreamRateLimited):
        return RetryDecision(Retry.RATE_LIMITED, exc.retry_after)
    if isinstance(exc, UpstreamError) and exc.retryable:
        return RetryDecision(Retry.TRANSIENT, exc.retry_after)
    return RetryDecision(Retry.NO)


def may_fall_back(exc: BaseException) -> bool:
    """Whether the next deployment of the tier may be tried after ``exc``.

    Upstream faults, refused credentials and an open circuit fall back; a request the
    upstream judged invalid (context length included) or filtered is never sent elsewhere.
    """
    if isinstance(exc, UpstreamInvalidRequest | ContentFiltered):
        return False
    return isinstance(exc, UpstreamError | InvalidOutput | CircuitOpen)


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
    """Retry throttling shared by one worker's requests (gRPC's rule, proposal A6).

    A bucket holds up to ``2 × budget_min`` tokens and starts full. Every failed upstream
    attempt (a fault of the deployment, not the client's mistake) takes one token, every
    successful one gives back ``budget_ratio``; a retry may go only while more than
    ``budget_min`` tokens are left. A healthy gateway always has its retries; under a
    sustained outage about ``budget_min`` retries are made in all, then none until
    answers come back, so retries never multiply an outage (first attempts stay 1:1).
    Fallbacks to another deployment are not retries and are never throttled;
    ``budget_min: 0`` turns retries off.
    """

    def __init__(self, settings: RetrySettings) -> None:
        self._ratio = settings.budget_ratio
        self._threshold = settings.budget_min
        self._cap = 2.0 * settings.budget_min
        self._tokens = self._cap
        self._lock = threading.Lock()

    def success(self) -> None:
        if self._tokens >= self._cap:  # the usual case: full, nothing to add, no lock
            return
        with self._lock:
            self._tokens = min(self._cap, self._tokens + self._ratio)

    def failure(self) -> None:
        with self._lock:
            self._tokens = max(0.0, self._tokens - 1.0)

    def allows_retry(self) -> bool:
        return self._tokens > self._threshold + 1e-9  # tolerate float sums of the ratio


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
        attempts = self.attempts
        if len(attempts) < 2:  # the usual request: one call, nothing to count
            return 0
        names: list[str] = []
        for attempt in attempts:
            if not names or names[-1] != attempt.deployment:
                names.append(attempt.deployment)
        return max(0, len(names) - 1)
