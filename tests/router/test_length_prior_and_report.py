"""The gain's length prior, the $0 price of a free local tier, and `router report`
on the built-in defaults."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from laneway.catalog import default_catalog
from laneway.cli._router import register
from laneway.errors import ConfigError
from laneway.router import (
    DEFAULT_TIERS,
    baseline_price,
    conversation_from_prompt,
    length_prior_weights,
    train_scorer,
)
from laneway.router._linear import LinearHeads
from laneway.settings import load_settings

TIERS = ("cheap", "mid", "pricey")
MAPPING = {"cheap": ("w",), "mid": ("m",), "pricey": ("s",)}


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Outcomes unrelated to the prompt: only a prior can make length matter."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = " ".join(["word"] * int(rng.integers(2, 200)))
        rows.append({
            "conversation": conversation_from_prompt(f"Question {i}: {words}?"),
            "outcomes": {"w": float(rng.random() < 0.4), "m": float(rng.random() < 0.6),
                         "s": float(rng.random() < 0.8)},
        })  # fmt: skip
    return rows


def test_prior_centre_rises_with_tier_on_the_length_coefficient_only() -> None:
    centre = length_prior_weights(24, 3, 1.2)
    assert centre[0].tolist() == pytest.approx([-0.6, 0.0, 0.6])
    assert not centre[1:].any()
    assert not length_prior_weights(24, 1, 1.2).any()
    assert not length_prior_weights(24, 3, 0.0).any()


def test_heads_fit_around_the_prior_centre() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = np.full((400, 1), 0.5)  # no signal: the penalty alone decides
    centre = np.array([[2.0], [0.0]])
    heads = LinearHeads.fit(x, y, 1e6, prior=centre)
    assert heads.weights[:, 0] == pytest.approx([2.0, 0.0], abs=1e-3)
    assert LinearHeads.fit(x, y, 1e6).weights[:, 0] == pytest.approx([0.0, 0.0], abs=1e-3)


def test_length_prior_makes_the_gain_grow_with_length_and_is_recorded() -> None:
    rows = _rows(300, 1)
    plain = train_scorer(rows, TIERS, MAPPING, None, use_embedding=False)
    prior = train_scorer(rows, TIERS, MAPPING, None, use_embedding=False, length_prior=2.0)
    short = conversation_from_prompt("Question: word word?")
    long = conversation_from_prompt("Question: " + " ".join(["word"] * 180) + "?")

    def gain(scorer: Any, conv: Any) -> float:
        est = scorer.predict(conv)
        return est["pricey"] - est["cheap"]

    assert gain(prior, long) - gain(prior, short) > gain(plain, long) - gain(plain, short) + 0.1
    assert prior.meta["length_prior"] == 2.0 and plain.meta["length_prior"] == 0.0
    # Refitted around the prior: the mean estimate per tier still matches the data.
    x = np.array([prior.features(r["conversation"]) for r in rows])
    mean = prior.predict_matrix(x).mean(axis=0)
    observed = [np.mean([r["outcomes"][m] for r in rows]) for m in ("w", "m", "s")]
    assert mean == pytest.approx(observed, abs=0.03)


def test_features_given_must_match_the_rows() -> None:
    from laneway.errors import InvalidRequest

    rows = _rows(20, 2)
    with pytest.raises(InvalidRequest, match="one row per outcome row"):
        train_scorer(rows, TIERS, MAPPING, None, use_embedding=False, features=np.zeros((3, 24)))


def test_a_free_local_tier_has_a_known_price_of_zero() -> None:
    settings = load_settings(None, {})  # the built-in defaults: the embedded model only
    price = baseline_price(settings, default_catalog(), None, DEFAULT_TIERS)
    assert (price.tier, price.deployment) == ("simple", "local")
    assert price.input_per_mtok == price.output_per_mtok == Decimal(0)


def test_a_self_hosted_tier_with_an_hourly_cost_has_no_per_token_price(tmp_path: Path) -> None:
    config = tmp_path / "laneway.yaml"
    config.write_text(
        "deployments:\n"
        "  - {name: box, model: my-model, provider: openai_compatible,\n"
        "     api_base: 'http://127.0.0.1:9/v1', hosting: self_hosted, hourly_cost_usd: 2}\n"
        "tiers: {frontier: [box]}\n"
    )
    settings = load_settings(config, {})
    with pytest.raises(ConfigError, match="known price"):
        baseline_price(settings, default_catalog(), None, DEFAULT_TIERS)


def _app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


def test_report_on_the_defaults_without_a_ledger_shows_the_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no laneway.yaml, no laneway.db
    monkeypatch.delenv("LANEWAY_DATABASE_URL", raising=False)
    monkeypatch.delenv("LANEWAY_CONFIG", raising=False)
    result = CliRunner().invoke(_app(), ["router", "report"])
    assert result.exit_code == 0, result.output
    assert "auto:economy" in result.output and "auto:quality" in result.output
    assert "no traffic to report" in result.output
    missing = CliRunner().invoke(_app(), ["router", "report", "--database",
                                          f"sqlite:///{tmp_path / 'missing.db'}"])  # fmt: skip
    assert missing.exit_code == 1
    assert "error: no ledger database" in missing.output


def test_report_on_the_defaults_prices_local_answers_at_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from laneway.ledger import LEDGER, open_database

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LANEWAY_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = open_database(url)
    with engine.begin() as conn:
        for i in range(3):
            conn.execute(LEDGER.insert().values(
                request_id=f"r{i}", ts=datetime.now(UTC), source="api", requested_model="auto",
                deployment="local", tier="simple", stream=False, status=200, fallbacks=0,
                partial=False, attempt=0, prompt_tokens=10, completion_tokens=5, cost_nusd=0,
                route_score=0.1))  # fmt: skip
    engine.dispose()
    result = CliRunner().invoke(_app(), ["router", "report", "--json", "--database", url,
                                         "--since", "all"])  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["savings_note"] is None
    assert body["baseline"]["deployment"] == "local" and body["cost_usd"] == "0"
    assert body["saved_usd"] == "0" and body["tiers"][0]["requests"] == 3
    profiles = {p["name"]: p for p in body["profiles"]}
    assert set(profiles) == {"economy", "default", "quality"}
    shares = [profiles[n]["frontier_share"] for n in ("economy", "default", "quality")]
    quality = [profiles[n]["quality_ratio"] for n in ("economy", "default", "quality")]
    assert shares == sorted(shares) and quality == sorted(quality)


def test_router_train_takes_a_length_prior(tmp_path: Path) -> None:
    data = tmp_path / "o.jsonl"
    with data.open("w") as f:
        for row in _rows(120, 3):
            text = row["conversation"].last_user
            f.write(json.dumps({"prompt": text, "outcomes": row["outcomes"]}) + "\n")
    out = tmp_path / "r"
    result = CliRunner().invoke(_app(), ["router", "train", "--data", str(data), "--out",
                                         str(out), "--tiers", "cheap=w;mid=m;pricey=s",
                                         "--length-prior", "1.5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "router.json").read_text())["length_prior"] == 1.5
    bad = CliRunner().invoke(_app(), ["router", "train", "--data", str(data), "--out", str(out),
                                      "--length-prior", "steep"])  # fmt: skip
    assert bad.exit_code == 2


def test_router_alone_prints_help_and_exits_like_the_other_groups() -> None:
    from laneway.cli._app import build_app

    app = build_app()
    router = CliRunner().invoke(app, ["router"])
    evals = CliRunner().invoke(app, ["eval"])
    assert "Usage" in router.output and "report" in router.output
    assert "Missing command" not in router.output
    assert router.exit_code == evals.exit_code
