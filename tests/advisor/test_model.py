"""Mechanics of the cost model, the decision branches and the seed check."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import laneway.advisor as advisor
from laneway.advisor import (
    Load,
    ModelSize,
    advice_to_json,
    advise,
    crossover_tokens_per_day,
    default_assumptions,
    seed_checks,
    self_hosted_monthly,
    workload_from_dict,
)
from laneway.catalog import Price
from laneway.errors import InvalidRequest

D = Decimal
SIZE = ModelSize(D(70), D(70))


def _load(tokens: int = 100_000_000, ptm: str = "1") -> Load:
    t = D(tokens)
    return Load(t / 1000, t * 3 / 4, t / 4, D(0), D(ptm), D(30))


def _api_day(load: Load, inp: str, out: str) -> Decimal:
    cost = advisor.api_cost_per_day(load, Price("x", D(inp), D(out), None, "2026-01", "t"))
    assert cost is not None
    return cost


def test_exports_sorted() -> None:
    def kind(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert advisor.__all__ == sorted(advisor.__all__, key=kind)


def test_unknown_price_is_none_not_zero() -> None:
    price = Price("x", None, D(1), None, "2026-01", "t")
    assert advisor.api_cost_per_day(_load(), price) is None
    a = default_assumptions("h200").add(
        advisor.Assumption("gpu_hourly_usd", "unknown", "USD/GPU-hour", "test")
    )
    assert a.maybe_number("gpu_hourly_usd") is None
    assert self_hosted_monthly(_load(), SIZE, a) is None


def test_every_gpu_has_a_dated_sourced_price() -> None:
    table = advisor.gpu_table()
    assert {"h100", "h200", "a100", "b200", "l40s"} <= set(table.gpus)
    for spec in table.gpus.values():
        assert spec.hourly_usd is not None and spec.hourly_usd > 0, spec.key
        assert spec.hourly_date and "https://" in spec.hourly_source, spec.key
        assert "seeds/" not in spec.hourly_source, spec.key
        assert default_assumptions(spec.key).maybe_number("gpu_hourly_usd") == spec.hourly_usd


def test_crossover_is_where_curves_meet() -> None:
    a = default_assumptions()
    load = _load()
    per_day = _api_day(load, "5", "25")
    cross = crossover_tokens_per_day(load, per_day, SIZE, a)
    assert cross is not None
    per_token = per_day / load.tokens_per_day
    at = self_hosted_monthly(load.scaled_to(cross), SIZE, a)
    below = self_hosted_monthly(load.scaled_to(cross * D("0.99")), SIZE, a)
    assert at is not None and below is not None
    assert at.total <= per_token * cross * 30
    assert below.total > per_token * cross * D("0.99") * 30


def test_crossover_monotone_in_price_and_utilisation() -> None:
    a = default_assumptions()
    load = _load()
    crossings = [
        crossover_tokens_per_day(load, _api_day(load, p, str(5 * int(p))), SIZE, a)
        for p in ("2", "5", "10")
    ]
    assert all(c is not None for c in crossings)
    assert crossings[0] > crossings[1] > crossings[2]  # type: ignore[operator]
    per_day = _api_day(load, "5", "25")
    by_util = [
        crossover_tokens_per_day(load, per_day, SIZE, a, utilisation=D(u))
        for u in ("0.1", "0.3", "0.6", "1")
    ]
    assert all(c is not None for c in by_util)
    values = [c for c in by_util if c is not None]
    assert values == sorted(values, reverse=True)
    assert values[0] > values[-1]
    # a cheap API price never loses to self-hosting: no crossover
    assert crossover_tokens_per_day(load, _api_day(load, "0.12", "0.12"), SIZE, a) is None


def test_peak_to_mean_raises_self_hosted_cost() -> None:
    a = default_assumptions()
    flat = self_hosted_monthly(_load(2_000_000_000, "1"), SIZE, a)
    spiky = self_hosted_monthly(_load(2_000_000_000, "4"), SIZE, a)
    assert flat is not None and spiky is not None
    assert spiky.total > flat.total
    assert spiky.sizing is not None and flat.sizing is not None
    assert spiky.sizing.utilisation < flat.sizing.utilisation


def test_multiple_of_rent_is_an_output() -> None:
    a = default_assumptions().override({"infra_overhead_multiplier": 1})
    cost = advisor.ownership_cost(D(10_000), a)
    staff = D(145_000) / 12
    updates = D(12_000) * D("7.43") / 12
    assert cost.total == D(10_000) + staff + updates
    assert cost.multiple_of_gpu_rent == cost.total / D(10_000)


def _workload(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "t",
        "tasks": [
            {
                "name": "bulk",
                "tier": "simple",
                "requests_per_day": 200_000,
                "input_tokens": 600,
                "output_tokens": 100,
                "quality": {"open_weight_score": 0.9, "required_score": 0.85},
            },
            {
                "name": "hard",
                "tier": "frontier",
                "requests_per_day": 1000,
                "input_tokens": 4000,
                "output_tokens": 800,
                "needs": ["frontier_reasoning"],
            },
        ],
        "traffic": {"peak_to_mean": 1.5},
        "ops_capacity": "full",
    }
    base.update(overrides)
    return base


def _gates(data: dict[str, Any]) -> dict[str, Any]:
    return {g["name"]: g for g in data["gates"]}


def _tiers(data: dict[str, Any]) -> dict[str, Any]:
    return {t["tier"]: t for t in data["recommendation"]["tiers"]}


def test_two_lane_default_and_frontier_closed() -> None:
    data = advice_to_json(advise(workload_from_dict(_workload())))
    tiers = _tiers(data)
    assert tiers["frontier"]["path"] == "closed_api"
    assert tiers["simple"]["path"] == "serverless_open"
    assert data["recommendation"]["summary"].startswith("two lanes")
    gates = _gates(data)
    assert gates["volume"]["passed"] is False
    assert "below the crossover" in gates["volume"]["reason"]
    assert [q["number"] for q in data["questions"]] == [1, 2, 3, 4, 5, 6]
    assert data["questions"][0]["answer"] == "yes: hard"
    assert data["schema"] == "laneway.advice/3"
    assert all(isinstance(x["source"], str) and x["source"] for x in data["assumptions"])


def test_compliance_overrides_cost() -> None:
    data = advice_to_json(advise(workload_from_dict(_workload(data_sensitivity="on_prem"))))
    gate = _gates(data)["data_and_compliance"]
    assert gate["passed"] is False
    assert "whatever the price" in gate["reason"]
    assert {t["path"] for t in data["recommendation"]["tiers"]} == {"self_hosted"}
    assert data["recommendation"]["summary"].startswith("self-hosted only")
    closed = [p for p in data["paths"] if p["name"] == "closed_api"]
    assert all(not p["admissible"] for p in closed)


def test_volume_gate_passes_at_high_volume_and_self_hosts() -> None:
    big = _workload(
        tasks=[
            {
                "name": "bulk",
                "tier": "complex",
                "requests_per_day": 2_000_000,
                "input_tokens": 3000,
                "output_tokens": 1000,
                "models": ["gpt-5.4", "llama-3.3-70b-instruct"],
                "quality": {"open_weight_score": 0.9, "required_score": 0.85},
            }
        ],
        data_sensitivity="regulated",  # no open-weight vendor API: closed vs self-hosted
    )
    data = advice_to_json(advise(workload_from_dict(big)))
    gates = _gates(data)
    assert gates["volume"]["passed"] is True, gates["volume"]["reason"]
    assert _tiers(data)["complex"]["path"] == "self_hosted"
    no_ops = advice_to_json(advise(workload_from_dict({**big, "ops_capacity": "partial"})))
    assert _gates(no_ops)["operations_capacity"]["passed"] is False
    assert _tiers(no_ops)["complex"]["path"] == "closed_api"
    assert "blocked by: operations_capacity" in _tiers(no_ops)["complex"]["reason"]


@pytest.mark.parametrize(
    ("quality", "passed", "words"),
    [
        ({"open_weight_score": 0.9, "required_score": 0.85}, True, "passed the team's eval"),
        ({"open_weight_score": 0.7, "required_score": 0.85}, False, "failed the bar"),
        (None, False, "needs eval"),
    ],
)
def test_task_tolerance_gate(quality: Any, passed: bool, words: str) -> None:
    w = _workload()
    w["tasks"][0]["quality"] = quality
    gate = _gates(advice_to_json(advise(workload_from_dict(w))))["task_tolerance"]
    assert gate["passed"] is passed
    assert words in gate["reason"]


@pytest.mark.parametrize(("ops", "passed"), [("none", False), ("partial", False), ("full", True)])
def test_ops_gate(ops: str, passed: bool) -> None:
    gate = _gates(advice_to_json(advise(workload_from_dict(_workload(ops_capacity=ops)))))
    assert gate["operations_capacity"]["passed"] is passed


@pytest.mark.parametrize(("ops", "warned"), [("none", True), ("partial", False)])
def test_serverless_open_weight_without_mlops_is_flagged(ops: str, warned: bool) -> None:
    """RTSN: 'No MLOps capability: closed API only'; managed open-weight at partial."""
    advice = advice_to_json(advise(workload_from_dict(_workload(ops_capacity=ops))))
    paths = {t["tier"]: t["path"] for t in advice["recommendation"]["tiers"]}
    assert paths["simple"] == "serverless_open"
    flagged = [w for w in advice["warnings"] if "closed API only" in w]
    assert bool(flagged) is warned
    if warned:
        assert flagged[0].startswith("simple on serverless open-weight")


def test_questions_origin_coding_video_and_volume_bands() -> None:
    w = _workload(constraints={"denied_origins": ["CN"]})
    w["tasks"][0]["category"] = "coding"
    w["tasks"].append(
        {
            "name": "clips",
            "tier": "standard",
            "requests_per_day": 10,
            "input_tokens": 100,
            "output_tokens": 10,
            "needs": ["video"],
        }
    )
    data = advice_to_json(advise(workload_from_dict(w)))
    q = {x["number"]: x for x in data["questions"]}
    assert q[2]["answer"] == "yes: clips" and q[3]["answer"] == "yes: bulk"
    assert "CN" in q[4]["answer"]
    assert "500M" in q[5]["effect"]
    models = {p["model"] for p in data["paths"] if p["model"]}
    from laneway.catalog import default_catalog

    assert all(default_catalog().require(m).origin != "CN" for m in models)
    video = next(p for p in data["paths"] if p["tier"] == "standard" and p["name"] == "closed_api")
    assert "video" in default_catalog().require(video["model"]).modalities
    small = _workload(
        tasks=[{"name": "s", "requests_per_day": 10, "input_tokens": 100, "output_tokens": 10}]
    )
    assert "under 5M" in advice_to_json(advise(workload_from_dict(small)))["questions"][4]["effect"]


def test_fine_tune_question() -> None:
    w = _workload()
    w["tasks"][0].update(narrow=True, quality={"open_weight_score": 0.8, "required_score": 0.85})
    data = advice_to_json(advise(workload_from_dict(w)))
    (ft,) = data["fine_tune"]
    assert ft["task"] == "bulk" and ft["winner"] == "fine-tune"
    assert D(ft["open_monthly_usd"]) + D(ft["fine_tune_monthly_usd"]) < D(ft["current_monthly_usd"])
    simple = _tiers(data)["simple"]
    assert simple["path"] == "serverless_open" and simple["model"] == ft["model"]
    assert D(simple["monthly_usd"]) == D(ft["open_monthly_usd"]) + D(ft["fine_tune_monthly_usd"])
    tiny = _workload()
    tiny["tasks"][0].update(
        narrow=True, requests_per_day=10, quality={"open_weight_score": 0.8, "required_score": 0.85}
    )
    (ft,) = advice_to_json(advise(workload_from_dict(tiny)))["fine_tune"]
    assert ft["winner"] == "stay"


def test_workload_validation_errors() -> None:
    with pytest.raises(InvalidRequest, match="tasks"):
        workload_from_dict({"tasks": []})
    with pytest.raises(InvalidRequest, match="unknown key 'colour'"):
        workload_from_dict({**_workload(), "colour": 1})
    with pytest.raises(InvalidRequest, match="peak cannot be below"):
        workload_from_dict(_workload(traffic={"peak_to_mean": 0.5}))
    hourly = workload_from_dict(_workload(traffic={"hourly": [1] * 12 + [3] * 12}))
    assert hourly.traffic.peak_to_mean == D(3) / D(2)


def test_seed_checks_verdicts() -> None:
    checks = {c.id: c for c in seed_checks()}
    assert set(checks) == {
        "1m-tokens-358x",
        "crossover-500m",
        "tco-3-5x-gpu-rent",
        "10b-opus-vs-deepseek",
        "8xh100-100b-moe",
        "m27-50x-opus",
        "llama4-scout-self-hosted",
        "routing-80-15-5",
        "volume-bands-5-30m",
        "crossover-10m-100m-day",
        "ops-1-3-fte",
        "vpc-latency-50-200ms",
    }
    assert checks["m27-50x-opus"].verdict == "does not hold"
    assert "20.8x" in checks["m27-50x-opus"].figure
    assert "$5.44–$5.60/M" in checks["routing-80-15-5"].figure
    assert checks["1m-tokens-358x"].verdict == "holds"
    assert "358.3x" in checks["1m-tokens-358x"].figure
    assert checks["crossover-500m"].verdict == "does not hold"
    assert "$0.43/M" in checks["crossover-500m"].why
    assert checks["10b-opus-vs-deepseek"].verdict == "does not hold"
    assert "$1,000,000 (all output)" in checks["10b-opus-vs-deepseek"].figure
    assert checks["tco-3-5x-gpu-rent"].verdict == "holds only if"
    assert checks["8xh100-100b-moe"].verdict == "holds only if"
    assert "5,556–8,889" in checks["8xh100-100b-moe"].figure
