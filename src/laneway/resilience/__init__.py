"""Retry, fallback and circuit breaking: wrappers with the same interface as an adapter."""

from laneway.resilience._circuit import CircuitBreaker, CircuitState
from laneway.resilience._policy import (
    Attempt,
    Retry,
    RetryBudget,
    RetryDecision,
    Trace,
    backoff_delay,
    may_fall_back,
    retry_decision,
)
from laneway.resilience._wrappers import Candidate, FallbackModel, RetryingModel

__all__ = [
    "Attempt",
    "Candidate",
    "CircuitBreaker",
    "CircuitState",
    "FallbackModel",
    "Retry",
    "RetryBudget",
    "RetryDecision",
    "RetryingModel",
    "Trace",
    "backoff_delay",
    "may_fall_back",
    "retry_decision",
]
