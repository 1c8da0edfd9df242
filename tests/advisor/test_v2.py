"""Advisor v2 mechanics: one fleet, sizing, evidence per model, data rules, validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from laneway.advisor import (
    Load,
    ModelSize,
    advice_to_json,
    advise,
    default_assumptions,
    human_tokens,
    model_size,
    size_gpus,
    workload_from_dict,
)
from laneway.catalog import default_catalog
from laneway.errors import InvalidRequest

D = Decimal


def _task(name: str, tier: str, rpd: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "tier": tier,
        "requests_per_day": rpd,
        "input_tokens": 1600,
        "output_tokens": 400,
        **extra,
    }


def _bank(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "bank",
        "data_sensitivity": "regulated",
        "ops_capacity": "full",
        "tasks": tasks,
        "evals": [{"model": "nemotron-3-super-120b", "score": 0.95, "required_score": 0.9}],
    }


def test_relabelling_tiers_does_not_change_the_fleet_or_the_decision() -> None:
    """Ops staff and update cycles are charged once per fleet, not once per tier."""
    one = advise(workload_from_dict(_bank([_task("all", "standard", 300_000)])))
    three = advise(
        workload_from_dict(
            _bank(
                [
                    _task("a", "simple", 100_000),
                    _task("b", "standard", 100_000),
                    _task("c", "complex", 100_000),
                ]
            )
        )
    )
    assert one.fleet is not None and three.fleet is not None
    assert {t.path for t in one.choice.tiers} == {t.path for t in three.choice.tiers}
    assert one.fleet.total == three.fleet.total
    assert one.fleet.ops_staff == three.fleet.ops_staff  # once, not three times
    assert len(three.fleet.deployments) == 1 and three.fleet.deployments[0].tiers == (
        "simple",
        "standard",
        "complex",
    )


def test_replicas_are_1_2_4_8_gpus_or_whole_nodes() -> None:
    a = default_assumptions()
    seen = set()
    for total in (7, 31, 70, 120, 235, 400, 685, 1000):
        for tokens in (10**6, 10**9, 10**11):
            load = Load(D(tokens) / 1000, D(tokens) * 3 / 4, D(tokens) / 4, D(0), D(2), D(30))
            sizing = size_gpus(load, ModelSize(D(total), D(min(total, 37))), a)
            per = sizing.gpus_per_replica
            assert per in (1, 2, 4, 8) or per % 8 == 0, (total, per)
            assert sizing.gpus == per * sizing.replicas
            seen.add(per)
    assert {5, 13, 15}.isdisjoint(seen)


def test_moe_without_active_parameters_is_never_sized_as_dense() -> None:
    catalog = default_catalog()
    assert isinstance(model_size(catalog.require("minimax-m2.7")), str)
    v32 = model_size(catalog.require("deepseek-v3.2"))
    assert not isinstance(v32, str)
    assert v32.active_b == 37 and v32.total_b == 685
    # DeepSeek's MLA cache is ~7x smaller per token than a Llama-70B-shaped guess
    assert v32.kv_bytes_per_token is not None and v32.kv_bytes_per_token < D(327_680) / 4


def test_kv_cache_comes_from_the_model_geometry() -> None:
    a = default_assumptions()
    load = Load(D(5_000_000), D(10**10), D(10**9), D(0), D(3), D(60))
    latent = size_gpus(load, ModelSize(D(70), D(70), D(61 * 576 * 2)), a)
    default = size_gpus(load, ModelSize(D(70), D(70)), a)
    assert latent.kv_cache_gb < default.kv_cache_gb / 4


def test_a_failed_model_is_recommended_on_no_path() -> None:
    w = {
        "name": "x",
        "ops_capacity": "full",
        "tasks": [_task("t", "standard", 50_000)],
        "evals": [{"model": "step-3.5-flash", "score": 0.7, "required_score": 0.9}],
    }
    data = advice_to_json(advise(workload_from_dict(w)))
    assert all(p["model"] != "step-3.5-flash" for p in data["paths"])
    (excluded,) = data["constraints"]
    assert any(
        e["model"] == "step-3.5-flash" and "failed" in e["why"] for e in excluded["excluded"]
    )


def test_evidence_is_attached_to_the_model_it_measured() -> None:
    w = {
        "name": "x",
        "tasks": [_task("t", "standard", 50_000)],
        "evals": [{"model": "gemma-4-31b", "score": 0.95, "required_score": 0.9}],
    }
    advice = advise(workload_from_dict(w))
    hosted = advice.plans[0].path("self_hosted")
    assert hosted.model is not None and hosted.model.id == "gemma-4-31b"
    assert hosted.evidence == "passes"
    server = advice.plans[0].path("serverless_open")
    assert server.model is not None and server.model.id != "gemma-4-31b"
    assert server.evidence == "needs eval"  # the pass is not inherited


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"constraints": {"denied_origins": ["China"]}}, "did you mean 'CN'"),
        ({"constraints": {"denied_origins": ["XX"]}}, "not an ISO 3166-1"),
        ({"residency": ["Germany"]}, "did you mean 'DE'"),
        ({"constraints": {"allowed_licenses": ["apache2.0"]}}, "did you mean 'apache-2.0'"),
        ({"evals": [{"model": "gpt-4.0", "score": 1, "required_score": 1}]}, "not in the catalog"),
        ({"compliance_documented": "yes"}, "true or false"),
    ],
)
def test_inputs_are_validated_with_suggestions(changes: dict[str, Any], message: str) -> None:
    w = {"name": "x", "tasks": [_task("t", "simple", 100)], **changes}
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(".", r"\.")):
        workload_from_dict(w)


def test_regulated_data_never_goes_to_a_chinese_vendor_api() -> None:
    w = {"name": "bank", "data_sensitivity": "regulated", "tasks": [_task("t", "simple", 50_000)]}
    advice = advise(workload_from_dict(w))
    for t in advice.choice.tiers:
        assert t.cost is not None and t.cost.price is not None
        assert t.cost.price.provider in {"anthropic", "openai", "gemini"}
    serverless = advice.plans[0].path("serverless_open")
    assert not serverless.admissible and "compliance documentation" in serverless.reason


def test_revisit_threshold_is_never_below_todays_volume() -> None:
    for rpd in (1_000, 100_000, 1_000_000, 5_000_000):
        advice = advise(workload_from_dict({"name": "x", "tasks": [_task("t", "standard", rpd)]}))
        for c in advice.crossovers:
            if c.message.startswith("revisit"):
                assert c.tokens_per_day is not None
                assert c.tokens_per_day > advice.workload.tokens_per_day
        assert "revisit" not in advice.summary or advice.fleet is None


def test_human_numbers() -> None:
    assert human_tokens(D(288_350_000)) == "288M"
    assert human_tokens(D(1_500)) == "1.5k"
    assert human_tokens(D(2_000_000_000)) == "2B"
    assert human_tokens(None) == "unknown"


def test_on_prem_sensitive_lane_and_frontier_relaxed() -> None:
    w = {
        "name": "x",
        "tasks": [
            _task("public", "standard", 10_000),
            _task("private", "standard", 1_000, sensitive=True),
        ],
    }
    advice = advise(workload_from_dict(w))
    tiers = {t.tier: t for t in advice.choice.tiers}
    assert tiers["standard:sensitive"].path == "self_hosted"
    assert tiers["standard"].path != "self_hosted"


def test_a_tier_nothing_can_serve_is_an_error_that_says_why() -> None:
    w = {
        "name": "x",
        "residency": ["IN"],  # no catalog provider runs inference in India
        "tasks": [_task("t", "frontier", 100, needs=["frontier_reasoning"])],
    }
    with pytest.raises(InvalidRequest, match=r"tier frontier: no admissible path.*IN"):
        advise(workload_from_dict(w))


def test_a_compliance_forced_lane_does_not_pass_the_volume_gate_by_itself() -> None:
    """A sensitive lane must be self-hosted whatever the volume; that alone is no evidence
    that volume pays for self-hosting the rest (it is in the fleet on both sides)."""
    w = {
        "name": "x",
        "ops_capacity": "full",
        "tasks": [
            _task("public", "standard", 200),
            _task("private", "standard", 20, sensitive=True),
        ],
    }
    advice = advise(workload_from_dict(w))
    volume = next(g for g in advice.gates if g.name == "volume")
    assert "vs no API path" not in volume.reason
    tiers = {t.tier: t for t in advice.choice.tiers}
    assert tiers["standard:sensitive"].path == "self_hosted"
    assert "audit marked this traffic sensitive" in tiers["standard:sensitive"].reason
