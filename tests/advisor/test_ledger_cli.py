"""--from-ledger on a ledger filled by the real gateway, and the CLI commands."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from laneway.advisor import workload_from_ledger
from laneway.cli._advise import register
from laneway.cli._app import build_app
from laneway.ledger import open_database
from laneway.providers import ChatRequest
from laneway.settings import Settings
from laneway.testing import FakeOpenAI

ENV = {"FAKE_KEY": "sk-upstream-secret"}


def _rows(tmp_path: Path) -> list[dict[str, object]]:
    import sqlalchemy as sa

    engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM ledger ORDER BY id")).mappings().all()
    engine.dispose()
    return [dict(r) for r in rows]


EXAMPLE = Path(__file__).parents[2] / "examples" / "workload.yaml"


async def _fill(tmp_path: Path) -> None:
    from laneway.server import build_gateway, run_request

    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        settings = Settings.model_validate(
            {
                "deployments": [
                    {
                        "name": "gpt",
                        "model": "gpt-4o",
                        "provider": "openai",
                        "api_base": fake.url + "/v1",
                        "api_key": "env:FAKE_KEY",
                        "price": {"input_per_mtok": "1", "output_per_mtok": "2"},
                    }
                ],
                "tiers": {"frontier": ["gpt"], "simple": ["gpt"]},
            }
        )
        engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
        gateway = build_gateway(settings, env=ENV, engine=engine)
        await gateway.start()
        try:
            for i, tier in enumerate(["simple"] * 5 + ["frontier"] * 2):
                text = "word " * (3 + i)
                messages = ({"role": "user", "content": text},)
                await run_request(gateway, ChatRequest(model=f"tier:{tier}", messages=messages))
            for _ in range(3):
                messages = ({"role": "user", "content": "eval only " * 40},)
                await run_request(
                    gateway, ChatRequest(model="tier:simple", messages=messages), source="eval"
                )
        finally:
            await gateway.aclose()
        engine.dispose()


async def test_from_ledger_matches_ledger_volume_and_mix(tmp_path: Path) -> None:
    await _fill(tmp_path)
    rows: list[dict[str, Any]] = _rows(tmp_path)
    # the rows that carry tokens: attempt rows, or the summary of a request without any
    with_attempts = {r["request_id"] for r in rows if r["attempt"] >= 1}
    api_attempts = [
        r
        for r in rows
        if r["source"] == "api" and (r["attempt"] >= 1 or r["request_id"] not in with_attempts)
    ]
    assert any(r["source"] == "eval" for r in rows)
    engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        w = workload_from_ledger(engine)
    finally:
        engine.dispose()
    days = Decimal(str(w.observed["days"]))
    by_tier = {t.tier: t for t in w.tasks}
    assert set(by_tier) == {"simple", "frontier"}
    for tier, n in (("simple", 5), ("frontier", 2)):
        attempts = [r for r in api_attempts if r["tier"] == tier]
        task = by_tier[tier]
        assert round(task.requests_per_day * days, 9) == n
        assert round(task.input_tokens * n) == sum(r["prompt_tokens"] for r in attempts)
        assert round(task.output_tokens * n) == sum(r["completion_tokens"] for r in attempts)
    total = sum(r["prompt_tokens"] + r["completion_tokens"] for r in api_attempts)
    assert round(w.tokens_per_day * days) == total
    assert w.observed["requests"] == 7
    assert Decimal(str(w.observed["escalation_rate"])) == Decimal(2) / 7
    assert "frontier_reasoning" in by_tier["frontier"].needs


def test_cli_advise_json_schema() -> None:
    result = CliRunner().invoke(build_app_with_advise(), ["advise", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("recommendation", "gates", "paths", "crossovers", "totals", "assumptions"):
        assert key in data
    assert [g["name"] for g in data["gates"]] == [
        "volume",
        "task_tolerance",
        "operations_capacity",
        "data_and_compliance",
    ]
    for path in data["paths"]:
        assert path["monthly_usd"] is None or isinstance(path["monthly_usd"], str)


def test_cli_seed_check_and_errors(tmp_path: Path) -> None:
    app = build_app_with_advise()
    result = CliRunner().invoke(app, ["advise", "--seed-check"])
    assert result.exit_code == 0
    assert "does not hold" in result.output and "holds only if" in result.output
    missing = CliRunner().invoke(app, ["advise"])
    assert missing.exit_code == 2
    assert "one of them" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: []\n")
    failed = CliRunner().invoke(app, ["advise", str(bad)])
    assert failed.exit_code == 1  # a workload file that cannot be used
    assert "at least one task" in failed.output


def test_cli_tco_and_html(tmp_path: Path) -> None:
    app = build_app_with_advise()
    result = CliRunner().invoke(
        app,
        [
            "tco",
            "--tokens-per-day",
            "1000000000",
            "--model",
            "llama-3.3-70b-instruct",
            "--gpu-hourly",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["gpus"] >= 2 and Decimal(data["monthly_usd"]["total"]) > 0
    a100 = CliRunner().invoke(
        app,
        ["tco", "--tokens-per-day", "1e6", "--model", "llama-3.3-70b-instruct", "--gpu", "a100"],
    )
    assert a100.exit_code == 0 and "× a100" in a100.output, a100.output
    closed = CliRunner().invoke(app, ["tco", "--tokens-per-day", "1e6", "--model", "gpt-5.4"])
    assert closed.exit_code == 1 and "closed weights" in closed.output
    assert "parameter count" not in closed.output
    typo = CliRunner().invoke(
        app, ["tco", "--tokens-per-day", "1e6", "--model", "llama-3.3-70b", "--gpu", "h10"]
    )
    assert typo.exit_code == 1 and "did you mean 'h100'" in typo.output
    out = tmp_path / "r.html"
    html = CliRunner().invoke(app, ["advise", str(EXAMPLE), "--out", str(out)])
    assert html.exit_code == 0, html.output
    text = out.read_text()
    assert "data:image/png;base64," in text and "four gates" in text
    assert "None" not in text and "False" not in text and "laneway[" not in text


def build_app_with_advise() -> object:
    app = build_app()
    if not any(c.name == "advise" for c in app.registered_commands):
        register(app)
    return app


def _insert(tmp_path: Path, rows: list[dict[str, Any]]) -> Any:
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from laneway.ledger import LEDGER

    engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    base = {
        "attempt": 0,
        "source": "api",
        "requested_model": "auto",
        "deployment": "llama",
        "hosting": "api",
        "model_id": "llama-3.1-8b-instruct",
        "stream": False,
        "status": 200,
        "fallbacks": 0,
        "partial": False,
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "cached_tokens": 0,
        "cost_nusd": 66_000,  # $0.000066: 1,000 x $0.05/M + 200 x $0.08/M
    }
    with engine.begin() as conn:
        for i, row in enumerate(rows):
            conn.execute(
                sa.insert(LEDGER).values(
                    **base, request_id=f"r{i}", ts=start + timedelta(minutes=10 * i), **row
                )
            )
    return engine


def test_from_ledger_sensitive_traffic_gets_its_own_self_hosted_lane(tmp_path: Path) -> None:
    from laneway.advisor import advise

    rows = [{"tier": "simple"} for _ in range(8)] + [
        {"tier": "simple", "audit": {"sensitive": True}} for _ in range(2)
    ]
    engine = _insert(tmp_path, rows)
    try:
        w = workload_from_ledger(engine)
    finally:
        engine.dispose()
    lanes = {t.name: t for t in w.tasks}
    assert set(lanes) == {"ledger:simple", "ledger:simple:sensitive"}
    assert lanes["ledger:simple:sensitive"].sensitive
    share = lanes["ledger:simple:sensitive"].requests_per_day / (
        lanes["ledger:simple"].requests_per_day + lanes["ledger:simple:sensitive"].requests_per_day
    )
    assert share == Decimal("0.2")
    # the ledger's cost equals tokens x the Groq price of the model it used
    observed = Decimal(str(w.observed["observed_monthly_usd"]))
    estimated = Decimal(str(w.observed["estimated_monthly_usd"]))
    assert observed == estimated and observed > 0
    advice = advise(w)
    tiers = {t.tier: t.path for t in advice.choice.tiers}
    assert tiers["simple:sensitive"] == "self_hosted"
    assert tiers["simple"] != "self_hosted"
    assert w.data_sensitivity == "none"  # the rest of the traffic is not forced on-prem
    from laneway.advisor import render_html

    html = render_html(advice)
    assert "From the ledger: observed $0.02/month vs the model" in html


async def test_cli_from_ledger_reads_the_configs_database(tmp_path: Path, monkeypatch: Any) -> None:
    # It read ./laneway.db whatever the config's database.url said (and had no --config):
    # with the gateway's ledger elsewhere, "no ledger database at 'laneway.db'".
    await _fill(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LANEWAY_DATABASE_URL", raising=False)
    config = tmp_path / "gw.yaml"
    config.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'ledger.db'}'}}\n", "utf-8")
    app = build_app()
    for args in (["-c", str(config)], ["--db", f"sqlite:///{tmp_path / 'ledger.db'}"]):
        result = CliRunner().invoke(app, ["advise", "--from-ledger", "--json", *args])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["workload"]["name"]
    monkeypatch.setenv("LANEWAY_CONFIG", str(config))
    assert CliRunner().invoke(app, ["advise", "--from-ledger"]).exit_code == 0
