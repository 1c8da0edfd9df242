"""Against fakes with planted behaviour the reported figures equal the truth."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from laneway.evals import RunOptions, compute_metrics, run_suite
from laneway.evals._runner import new_run
from laneway.ledger import percentile
from laneway.testing import running
from tests._quiet_gc import session_heap_frozen
from tests.evals.conftest import (
    Plan,
    PlantedFake,
    ledger_sources,
    settings_for,
    write_planted_suite,
)

N, REPEATS = 24, 3
# A slow case's planted delay: well above what a fast call costs when it waits for the
# CPU (150-300 ms through gateway and fake on an overloaded 2-core machine).
PLANTED_S = 0.6
PLAN = Plan(
    wrong=frozenset(i for i in range(N) if i % 3 == 0),
    bad_json=frozenset(i for i in range(N) if i % 4 == 0),
    varies=frozenset(i for i in range(N) if i % 5 == 1),
    slow=frozenset(i for i in range(N) if i % 4 == 1),
)


def _truth(plan: Plan) -> dict[str, Any]:
    passes = {i: [plan.passes(i, r) for r in range(REPEATS)] for i in range(N)}
    json_cases = [i for i in range(N) if plan.is_json(i)]
    hat = {
        k: sum(math.comb(sum(p), k) / math.comb(REPEATS, k) for p in passes.values()) / N
        for k in range(1, REPEATS + 1)
    }
    agree = []
    for i in range(N):
        values = [plan.value(i, r) for r in range(REPEATS)]
        agree.append(max(values.count(v) for v in values) / REPEATS)
    return {
        "accuracy": sum(sum(p) for p in passes.values()) / (N * REPEATS),
        "format": sum(plan.valid_json(i) for i in json_cases) / len(json_cases),
        "hat": hat,
        "agreement": sum(agree) / N,
    }


async def test_metrics_equal_the_planted_truth(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    suite = write_planted_suite(tmp_path, N)
    fakes = PlantedFake(PLAN, slow_s=PLANTED_S), PlantedFake(Plan(), slow_s=PLANTED_S)
    with running(*fakes) as (planted, perfect):
        settings = settings_for(tmp_path, {"planted": planted, "perfect": perfect})  # type: ignore[dict-item]
        gateway = await gateway_factory(settings)
        options = RunOptions(models=("planted", "perfect"), repeats=REPEATS, concurrency=6)
        record = new_run(engine, suite, options, run_id="truth")
        with session_heap_frozen():  # a full collection would add its pause to some calls
            summary = await run_suite(gateway, suite, record, options)
        await gateway.aclose()
    assert summary.status == "complete", (
        summary.error_codes,
        [r.error for r in record.results() if r.error][:3],
    )
    assert summary.done == N * REPEATS * 2
    results = list(record.results())
    metrics = {
        (m.model, m.tag): m for m in compute_metrics(results, suite.to_dict(), options.models)
    }
    truth = _truth(PLAN)
    got = metrics[("planted", None)]
    assert got.pass_rate == truth["accuracy"]
    assert got.format_adherence == truth["format"]
    assert got.pass_hat_k == truth["hat"]
    assert got.agreement == truth["agreement"]
    assert got.errors == 0
    assert got.cost_per_case_usd is not None and got.cost_per_case_usd > 0
    perfect_m = metrics[("perfect", None)]
    assert perfect_m.pass_rate == 1.0
    assert perfect_m.format_adherence == 1.0
    assert perfect_m.pass_hat_k == {1: 1.0, 2: 1.0, 3: 1.0}
    # Per tag: the text cases never have format checks.
    assert metrics[("planted", "text")].format_adherence is None
    json_truth = [PLAN.passes(i, r) for i in range(0, N, 2) for r in range(REPEATS)]
    assert metrics[("planted", "json")].pass_rate == sum(json_truth) / len(json_truth)
    # Latency: 6 of 24 cases are slow (25%), so p50 is fast and p95 is slow.
    planted_lat = [r.latency_ms for r in results if r.model == "planted"]
    assert got.latency_p50_ms == percentile(planted_lat, 50)  # type: ignore[arg-type]
    assert got.latency_p50_ms is not None and got.latency_p50_ms < PLANTED_S * 1000
    assert got.latency_p95_ms is not None and got.latency_p95_ms >= PLANTED_S * 1000
    assert perfect_m.latency_p95_ms is not None and perfect_m.latency_p95_ms < PLANTED_S * 1000
    slow_lat = [
        r.latency_ms for r in results if r.model == "planted" and int(r.case_id[1:]) in PLAN.slow
    ]
    assert min(slow_lat) >= PLANTED_S * 1000  # type: ignore[type-var]
    assert got.ttft_p50_ms is not None and got.ttft_p50_ms <= got.latency_p50_ms
    # Eval traffic is in the ledger as source=eval (gpt-4o's catalog entry has no JSON
    # Schema output, so those requests were refused once, then sent in JSON mode).
    sources = ledger_sources(engine)
    assert len(sources) == N * REPEATS * 2
    assert set(sources) == {"eval"}
