"""The Prometheus exposition built from Laneway's plain counters at scrape time,
read back with prometheus_client's own text parser."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from laneway.gateway import Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def test_counters_histograms_and_gauges_render_as_prometheus() -> None:
    m = Metrics()
    m.circuit_open = lambda: {"a": 0, "b": 1}
    m.inflight = lambda: 3
    m.observe_request("a", 200, 0.004, None, None)
    m.observe_request("a", 200, 0.02, 0.003, None)
    m.observe_request("a", 502, 200.0, None, SimpleNamespace(code="upstream_error"))
    m.observe_attempt("a", True, 30, 8, Decimal("0.0001"))
    m.observe_attempt("a", False, 0, 0, None)
    m.observe_attempt("b", True, 5, 0, Decimal(0))  # zero cost: no cost series
    s = _samples(m)
    assert s["laneway_requests_total", (("deployment", "a"), ("status", "200"))] == 2
    assert s["laneway_requests_total", (("deployment", "a"), ("status", "502"))] == 1
    assert s["laneway_errors_total", (("code", "upstream_error"), ("deployment", "a"))] == 1
    assert s["laneway_upstream_attempts_total", (("deployment", "a"), ("outcome", "ok"))] == 1
    assert s["laneway_upstream_attempts_total", (("deployment", "a"), ("outcome", "error"))] == 1
    assert s["laneway_tokens_total", (("deployment", "a"), ("kind", "prompt"))] == 30
    assert s["laneway_tokens_total", (("deployment", "a"), ("kind", "completion"))] == 8
    assert s["laneway_tokens_total", (("deployment", "b"), ("kind", "prompt"))] == 5
    assert s["laneway_cost_usd_total", (("deployment", "a"),)] == 0.0001
    assert ("laneway_cost_usd_total", (("deployment", "b"),)) not in s
    bucket = "laneway_request_latency_seconds_bucket"
    assert s[bucket, (("deployment", "a"), ("le", "0.005"))] == 1  # 0.004 ≤ 0.005
    assert s[bucket, (("deployment", "a"), ("le", "0.025"))] == 2  # cumulative
    assert s[bucket, (("deployment", "a"), ("le", "120.0"))] == 2  # 200 s is past the last
    assert s[bucket, (("deployment", "a"), ("le", "+Inf"))] == 3
    assert s["laneway_request_latency_seconds_count", (("deployment", "a"),)] == 3
    assert abs(s["laneway_request_latency_seconds_sum", (("deployment", "a"),)] - 200.024) < 1e-9
    assert s["laneway_time_to_first_token_seconds_count", (("deployment", "a"),)] == 1
    assert s["laneway_circuit_open", (("deployment", "b"),)] == 1
    assert s["laneway_circuit_open", (("deployment", "a"),)] == 0
    assert s["laneway_inflight_requests", ()] == 3


def test_a_value_on_a_bucket_bound_counts_in_that_bucket() -> None:
    m = Metrics()
    m.observe_request("a", 200, 0.01, None, None)
    s = _samples(m)
    assert s["laneway_request_latency_seconds_bucket", (("deployment", "a"), ("le", "0.005"))] == 0
    assert s["laneway_request_latency_seconds_bucket", (("deployment", "a"), ("le", "0.01"))] == 1


def test_empty_metrics_render() -> None:
    text = Metrics().render().decode()
    assert "# TYPE laneway_requests_total counter" in text
    assert "laneway_inflight_requests 0.0" in text
