"""Prometheus metrics, in a registry owned by one app (no module-level state).

The request path only adds to plain dictionaries (a few dictionary updates per request);
a custom collector turns them into Prometheus families when ``/metrics`` is scraped.
``prometheus_client``'s own ``Counter.labels(...).inc()`` takes a lock and goes through
several layers per call, about 15 µs per request for the seven series Laneway keeps.
Everything is updated from the event loop's thread, and a scrape renders on that thread
too, so no lock is needed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from laneway.errors import LanewayError

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _Histogram:
    """Bucket counts (not cumulative; the last one is +Inf), sum and count."""

    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(_LATENCY_BUCKETS) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.buckets[bisect_left(_LATENCY_BUCKETS, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip((*_LATENCY_BUCKETS, float("inf")), self.buckets, strict=True):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(total)))
        return out


class Metrics:
    """The gateway's counters. ``circuit_open`` is a callable set by the gateway that
    returns ``{deployment: 0 or 1}`` at scrape time; ``inflight`` likewise."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.errors: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.attempts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.tokens: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.cost: defaultdict[str, float] = defaultdict(float)
        self.latency: dict[str, _Histogram] = {}
        self.ttft: dict[str, _Histogram] = {}
        self.circuit_open: Callable[[], dict[str, int]] = dict
        self.inflight: Callable[[], int] = lambda: 0
        # shadow copies by rule and outcome (sent, failed, dropped: queue full, shed: queue
        # full while the worker was too busy to send, skipped_*: policy, sensitive data,
        # daily budget, lost: held by a sender process that died)
        self.shadow: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.registry.register(_Collector(self))

    def observe_request(
        self,
        deployment: str,
        status: int,
        latency: float,
        ttft: float | None,
        error: LanewayError | None,
    ) -> None:
        self.requests[deployment, str(status)] += 1
        histogram = self.latency.get(deployment)
        if histogram is None:
            histogram = self.latency[deployment] = _Histogram()
        histogram.observe(latency)
        if ttft is not None:
            histogram = self.ttft.get(deployment)
            if histogram is None:
                histogram = self.ttft[deployment] = _Histogram()
            histogram.observe(ttft)
        if error is not None:
            self.errors[deployment, error.code] += 1

    def observe_rejected(self, status: int, code: str | None) -> None:
        """A request refused before routing (auth, body size, validation) or whose client
        left while sending it: counted under deployment ``none``, no latency observed."""
        self.requests["none", str(status)] += 1
        if code is not None:
            self.errors["none", code] += 1

    def observe_attempt(
        self, deployment: str, ok: bool, prompt: int, completion: int, cost: Decimal | None
    ) -> None:
        self.attempts[deployment, "ok" if ok else "error"] += 1
        if prompt:
            self.tokens[deployment, "prompt"] += prompt
        if completion:
            self.tokens[deployment, "completion"] += completion
        self.add_cost(deployment, cost)

    def add_cost(self, deployment: str, cost: Decimal | None) -> None:
        if cost is not None and cost > 0:
            self.cost[deployment] += float(cost)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Collector:
    """Builds the Prometheus families from :class:`Metrics` at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        yield _counter(
            "laneway_requests",
            "Chat requests by deployment and HTTP status",
            ["deployment", "status"],
            m.requests,
        )
        yield _counter(
            "laneway_errors", "Failed chat requests by error code", ["deployment", "code"], m.errors
        )
        yield _counter(
            "laneway_upstream_attempts",
            "Upstream attempts by deployment and outcome",
            ["deployment", "outcome"],
            m.attempts,
        )
        yield _counter(
            "laneway_tokens",
            "Tokens by deployment and kind (prompt, completion, cached)",
            ["deployment", "kind"],
            m.tokens,
        )
        cost = CounterMetricFamily(
            "laneway_cost_usd", "Known cost in USD by deployment", labels=["deployment"]
        )
        for deployment, value in sorted(m.cost.items()):
            cost.add_metric([deployment], value)
        yield cost
        yield _histogram(
            "laneway_request_latency_seconds", "Request latency by deployment", m.latency
        )
        yield _histogram(
            "laneway_time_to_first_token_seconds", "Streaming time to first token", m.ttft
        )
        circuit = GaugeMetricFamily(
            "laneway_circuit_open",
            "1 while a deployment's circuit breaker is open",
            labels=["deployment"],
        )
        for deployment, value in sorted(m.circuit_open().items()):
            circuit.add_metric([deployment], float(value))
        yield circuit
        yield _counter(
            "laneway_shadow_copies",
            "Shadow copies by rule and outcome (sent, failed, dropped, shed, skipped_*, lost)",
            ["rule", "outcome"],
            m.shadow,
        )
        yield GaugeMetricFamily(
            "laneway_inflight_requests",
            "Chat requests in flight in this worker",
            value=float(m.inflight()),
        )


def _counter(
    name: str, documentation: str, labels: list[str], values: dict[tuple[str, str], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), float(value))
    return family


def _histogram(
    name: str, documentation: str, histograms: dict[str, _Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=["deployment"])
    for deployment, h in sorted(histograms.items()):
        family.add_metric([deployment], h.cumulative(), sum_value=h.sum)
    return family
