from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from laneway.errors import ConfigError, ModelNotFound
from laneway.router import Profile, Router, default_router_dir, load_router

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "A train travels 120 km in 1.5 h, then 80 km in 1 h. "
     "Calculate its average speed, step by step."},
]  # fmt: skip


@pytest.fixture(scope="module")
def router() -> Router:
    return load_router()


def test_shipped_router_has_tiers_and_calibrated_profiles(router: Router) -> None:
    assert router.tiers == ("simple", "standard", "complex", "frontier")
    assert {"default", "economy", "quality"} <= set(router.profiles())


def test_scoring_is_deterministic_and_probabilities(router: Router) -> None:
    a = router.route(MESSAGES)
    b = load_router().route(MESSAGES)
    assert a == b
    est = a.estimates
    assert a.score == pytest.approx(est["frontier"] - est["simple"])  # the gain of escalating
    assert a.difficulty == pytest.approx(1 - sum(est.values()) / 4)
    assert all(0.0 < v < 1.0 for v in a.estimates.values())
    assert a.profile == "default"
    assert a.tier in router.tiers
    assert a.reason.startswith(a.tier)


def test_latency_budget_sanity(router: Router) -> None:
    router.route(MESSAGES)
    start = time.perf_counter()
    for _ in range(50):
        router.route(MESSAGES)
    assert (time.perf_counter() - start) / 50 < 0.010


def test_unknown_profile_raises_model_not_found(router: Router) -> None:
    with pytest.raises(ModelNotFound, match="auto:nope"):
        router.route(MESSAGES, "nope")


def _with_profile(router: Router, max_loss: float) -> Router:
    return Router(router.scorer, {"default": Profile("default", max_loss)})


def test_route_picks_cheapest_tier_within_the_loss_limit(router: Router) -> None:
    est = router.route(MESSAGES).estimates
    loss = {t: est["frontier"] - v for t, v in est.items()}
    assert loss["simple"] > 0  # the prompt is one where escalating buys something
    limit = loss["simple"] - 1e-6  # simple just misses
    decision = _with_profile(router, limit).route(MESSAGES)
    assert decision.tier != "simple"
    assert loss[decision.tier] <= limit
    cheaper = router.tiers[: router.tiers.index(decision.tier)]
    assert all(loss[t] > limit for t in cheaper)
    assert "simple loss" in decision.reason
    assert _with_profile(router, -1.0).route(MESSAGES).tier == "frontier"
    assert _with_profile(router, 1.0).route(MESSAGES).tier == "simple"


def test_missing_configured_tier_maps_upward(router: Router) -> None:
    limited = _with_profile(router, 1.0).with_tiers(["standard", "frontier"])
    decision = limited.route(MESSAGES)
    assert decision.tier == "standard"
    assert "simple not configured" in decision.reason
    assert limited.tiers == ("standard", "frontier")
    only_cheap = _with_profile(router, -1.0).with_tiers(["simple"])
    assert only_cheap.route(MESSAGES).tier == "simple"


def test_a_router_built_for_other_signals_is_refused_with_what_to_do(tmp_path: Path) -> None:
    shutil.copytree(default_router_dir(), tmp_path / "old")
    meta_path = tmp_path / "old" / "router.json"
    meta = json.loads(meta_path.read_text())
    meta["structural"] = meta["structural"][:21]  # a router from an older feature set
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"21 signals.*laneway router train"):
        load_router(tmp_path / "old")
