"""``model: "auto"`` end to end: the shipped router picks among four priced tiers of fake
upstreams, the ledger records tier, reason and score, and ``laneway router report``
shows the split and the cost saved against sending everything to the frontier tier."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from openai import OpenAI
from typer.testing import CliRunner

from laneway.cli import build_app
from laneway.router import default_router_dir
from laneway.testing import FakeOpenAI
from tests.e2e.conftest import GatewayFactory, ledger_rows, openai_deployment

PRICES = {  # USD per million tokens, cheap → expensive
    "simple": ("0.10", "0.40"),
    "standard": ("0.50", "1.50"),
    "complex": ("2.00", "8.00"),
    "frontier": ("5.00", "20.00"),
}
EASY = (
    "hi! what's a good name for a cat?",
    "thanks so much, have a nice day!",
    "Can you recommend a good book for a long flight?",
)
HARD = (
    "Prove that the square root of 2 is irrational, then generalise the proof to show that "
    "the square root of any non-square integer is irrational.",
    "Design a consensus protocol for a replicated key-value store that tolerates f Byzantine "
    "faults among 3f+1 nodes, prove safety and liveness under partial synchrony, and analyse "
    "its message complexity.",
)


def _config(url: str, tiers: Sequence[str] = tuple(PRICES), **extra: Any) -> dict[str, Any]:
    deployments = [
        openai_deployment(
            f"{tier}-dep", url, price={"input_per_mtok": PRICES[tier][0],
                                       "output_per_mtok": PRICES[tier][1]}
        )
        for tier in tiers
    ]  # fmt: skip
    return {
        "deployments": deployments,
        "tiers": {tier: [f"{tier}-dep"] for tier in tiers},
        "default_tier": tiers[0],
        "ledger": {"log_prompts": True},
        **extra,
    }


def _ask(client: OpenAI, model: str, prompt: str) -> Mapping[str, str]:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}]
    )
    assert raw.parse().choices[0].message.content == f"Echo: {prompt}"
    return raw.headers


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_auto_routes_easy_cheap_and_hard_frontier_and_reports_savings(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path, client_factory: Any
) -> None:
    config = _config(fake_openai.url)
    gw = start_gateway(config)
    client = client_factory(gw.base_url)
    seen: dict[str, str] = {}
    for prompt in EASY + HARD:
        # Router v2: the default profile sends small talk to 'standard'; economy to 'simple'.
        profile = "economy" if prompt in EASY else "default"
        headers = _ask(client, "auto" if profile == "default" else f"auto:{profile}", prompt)
        seen[prompt] = headers["x-laneway-tier"]
        assert headers["x-laneway-deployment"] == f"{headers['x-laneway-tier']}-dep"
        assert headers["x-laneway-route-reason"].startswith(f"auto:{profile}:")
        assert -1.0 <= float(headers["x-laneway-route-score"]) <= 1.0  # the gain of escalating
    assert [seen[p] for p in EASY] == ["simple"] * len(EASY)
    assert [seen[p] for p in HARD] == ["frontier"] * len(HARD)
    # A named profile routes too, and says which profile decided.
    headers = _ask(client, "auto:economy", HARD[0])
    assert headers["x-laneway-tier"] == "frontier"
    assert headers["x-laneway-route-reason"].startswith("auto:economy:")
    gw.stop()

    summary = [r for r in ledger_rows(tmp_path) if r["attempt"] == 0]
    assert len(summary) == len(EASY) + len(HARD) + 1
    assert all(r["route_score"] is not None and r["tier"] for r in summary)
    easy_scores = [r["route_score"] for r in summary if json.loads(r["prompt"])[0]["content"]
                   in EASY]  # fmt: skip
    hard_scores = [r["route_score"] for r in summary[: len(EASY) + len(HARD)]
                   if json.loads(r["prompt"])[0]["content"] in HARD]  # fmt: skip
    assert max(easy_scores) < min(hard_scores)

    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    usage = {g["key"]: g for g in _cli("usage", "--by", "tier", "--json", "--database", db)}
    assert usage["simple"]["requests"] == len(EASY)
    assert usage["frontier"]["requests"] == len(HARD) + 1
    config_file = tmp_path / "laneway.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    report = _cli("router", "report", "--json", "--since", "all", "--database", db,
                  "--config", str(config_file))  # fmt: skip
    assert report["baseline"] == {"tier": "frontier", "deployment": "frontier-dep",
                                  "price_source": "config"}  # fmt: skip
    tiers = {t["tier"]: t for t in report["tiers"]}
    assert tiers["simple"]["requests"] == len(EASY)
    # The counterfactual: every tier's tokens at the frontier deployment's price.
    frontier_in, frontier_out = (Decimal(p) for p in PRICES["frontier"])
    expected_all = sum(
        (Decimal(g["prompt_tokens"]) * frontier_in + Decimal(g["completion_tokens"]) * frontier_out)
        / 1_000_000
        for g in usage.values()
    )
    actual = sum(Decimal(g["cost_usd"]) for g in usage.values())
    assert Decimal(report["all_baseline_usd"]) == expected_all
    assert Decimal(report["cost_usd"]) == actual
    assert Decimal(report["saved_usd"]) == expected_all - actual > 0
    assert 0 < report["saved_fraction"] < 1
    # `laneway usage --by tier` shows the same split and saving, priced from the config.
    priced = _cli("usage", "--by", "tier", "--json", "--since", "all", "--database", db,
                  "--config", str(config_file))  # fmt: skip
    assert {g["key"]: g["baseline_tier"] for g in priced} == dict.fromkeys(usage, "frontier")
    assert sum(Decimal(g["baseline_cost_usd"]) for g in priced) == expected_all
    args = ["usage", "--by", "tier", "--since", "all", "--database", db]
    table = CliRunner().invoke(build_app(), [*args, "--config", str(config_file)])
    assert table.exit_code == 0, table.output
    assert f"saved ${report['saved_usd']}" in table.output
    assert "on tier frontier (frontier-dep)" in table.output


def test_auto_with_three_tiers_maps_unconfigured_choice_upward(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, client_factory: Any
) -> None:
    gw = start_gateway(_config(fake_openai.url, ("simple", "complex", "frontier")))
    client = client_factory(gw.base_url)
    assert _ask(client, "auto:economy", EASY[0])["x-laneway-tier"] == "simple"
    assert _ask(client, "auto", HARD[1])["x-laneway-tier"] == "frontier"
    # A prompt the router gives to 'standard' is served by the next tier up.
    headers = _ask(client, "auto:economy", "Write a Python function to check whether a "
                   "string is a palindrome.")  # fmt: skip
    assert headers["x-laneway-tier"] == "complex"
    assert "standard not configured, using complex" in headers["x-laneway-route-reason"]


def test_unknown_profile_is_model_not_found(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, client_factory: Any
) -> None:
    gw = start_gateway(_config(fake_openai.url))
    client = client_factory(gw.base_url)
    with pytest.raises(openai.NotFoundError) as info:
        _ask(client, "auto:nonexistent", "hello")
    assert info.value.code == "model_not_found"
    assert "auto:default" in info.value.message
    assert fake_openai.received == []


def _expect_default_tier(client: OpenAI, tmp_path: Path, gw: Any, reason: str) -> None:
    headers = _ask(client, "auto", HARD[0])
    assert headers["x-laneway-tier"] == "simple"
    assert headers["x-laneway-route-reason"] == reason
    assert "x-laneway-route-score" not in headers
    gw.stop()
    row = [r for r in ledger_rows(tmp_path) if r["attempt"] == 0][-1]
    assert (row["tier"], row["route_reason"], row["route_score"]) == ("simple", reason, None)


def test_corrupt_router_directory_falls_back_to_the_default_tier(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path, client_factory: Any
) -> None:
    broken = tmp_path / "router"
    shutil.copytree(default_router_dir(), broken)
    (broken / "model.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    gw = start_gateway(_config(fake_openai.url, router={"path": str(broken)}))
    _expect_default_tier(client_factory(gw.base_url), tmp_path, gw,
                         "auto:router_error:RuntimeError")  # fmt: skip


class _FailingRouter:
    def profiles(self) -> tuple[str, ...]:
        return ("default",)

    def route(self, messages: Any, profile: str | None = None, task: str | None = None) -> Any:
        raise FloatingPointError("scorer blew up")


def test_router_raising_at_request_time_falls_back_to_the_default_tier(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path, client_factory: Any
) -> None:
    gw = start_gateway(_config(fake_openai.url))
    gw.app.state.gateway.router = _FailingRouter()
    _expect_default_tier(client_factory(gw.base_url), tmp_path, gw,
                         "auto:router_error:FloatingPointError")  # fmt: skip


def test_a_prompt_over_32_kb_is_routed_off_the_event_loop_like_any_other(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, client_factory: Any
) -> None:
    gw = start_gateway(_config(fake_openai.url))
    client = client_factory(gw.base_url)
    long_prompt = HARD[1] + "\n\n" + "Notes from the design review follow. " * 1000
    assert len(long_prompt) > 32_768  # the gateway's offload threshold
    headers = _ask(client, "auto", long_prompt)
    assert headers["x-laneway-route-reason"].startswith("auto:default:")  # scored, no error
    assert headers["x-laneway-tier"] in PRICES
    assert -1.0 <= float(headers["x-laneway-route-score"]) <= 1.0
    short = _ask(client, "auto:economy", EASY[0])  # the loop is free for the next request
    assert short["x-laneway-tier"] == "simple"
    gw.stop()
