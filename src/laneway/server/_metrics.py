"""Prometheus metrics, in a registry owned by one app (no module-level state)."""

from __future__ import annotations

from decimal import Decimal

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

    def add_cost(self, deployment: str, cost: Decimal | None) -> None:
        if cost is not None and cost > 0:
            self.cost.labels(deployment).inc(float(cost))

    def render(self) -> bytes:
        return generate_latest(self.registry)
