"""Prometheus metrics, in a registry owned by one app (no module-level state)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "laneway_requests",
            "Chat requests by deployment and HTTP status",
            ["deployment", "status"],
            registry=r,
        )
        self.errors = Counter(
            "laneway_errors",
            "Failed chat requests by error code",
            ["deployment", "code"],
            registry=r,
        )
        self.attempts = Counter(
            "laneway_upstream_attempts",
            "Upstream attempts by deployment and outcome",
            ["deployment", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "laneway_request_latency_seconds",
            "Request latency by deployment",
            ["deployment"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "laneway_time_to_first_token_seconds",
            "Streaming time to first token",
            ["deployment"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "laneway_tokens",
            "Tokens by deployment and kind (prompt, completion, cached)",
            ["deployment", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "laneway_cost_usd", "Known cost in USD by deployment", ["deployment"], registry=r
        )
        self.circuit_open = Gauge(
            "laneway_circuit_open",
            "1 while a deployment's circuit breaker is open",
            ["deployment"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "laneway_inflight_requests", "Chat requests in flight in this worker", registry=r
        )

        self.before_render: Callable[[], None] | None = None
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """Labelled children are cached: ``labels()`` takes a lock and hashes each time."""
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_request(
        self, deployment: str, status: int, latency: float, ttft: float | None, error: Any
    ) -> None:
        self._child(self.requests, deployment, str(status)).inc()
        self._child(self.latency, deployment).observe(latency)
        if ttft is not None:
            self._child(self.ttft, deployment).observe(ttft)
        if error is not None:
            self._child(self.errors, deployment, error.code).inc()

    def observe_attempt(
        self, deployment: str, ok: bool, prompt: int, completion: int, cost: Decimal | None
    ) -> None:
        self._child(self.attempts, deployment, "ok" if ok else "error").inc()
        if prompt:
            self._child(self.tokens, deployment, "prompt").inc(prompt)
        if completion:
            self._child(self.tokens, deployment, "completion").inc(completion)
        self.add_cost(deployment, cost)

    def add_cost(self, deployment: str, cost: Decimal | None) -> None:
        if cost is not None and cost > 0:
            self._child(self.cost, deployment).inc(float(cost))

    def render(self) -> bytes:
        if self.before_render is not None:
            self.before_render()
        return generate_latest(self.registry)
