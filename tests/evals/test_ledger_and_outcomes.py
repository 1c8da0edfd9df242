"""Suites from logged traffic (opted-in prompts only, sensitive rows left out) and
outcomes in the router's training format; the CLI end to end over fake upstreams."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from laneway.evals import load_run, load_suite, outcome_rows, suite_from_ledger
from laneway.ledger import LEDGER
from tests.evals._cli import eval_cli
from tests.evals.conftest import ENV, Plan, PlantedFake, deployment, planted_suite_yaml


def _ledger_row(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": f"req{i}",
        "attempt": 0,
        "ts": datetime(2026, 1, 1, tzinfo=UTC),
        "source": "api",
        "requested_model": "gpt",
        "deployment": "gpt",
        "stream": False,
        "status": 200,
        "fallbacks": 0,
        "partial": False,
        "prompt": orjson.dumps([{"role": "user", "content": f"prompt {i}"}]).decode(),
        "audit": None,
        **extra,
    }


def test_from_ledger_takes_only_logged_non_sensitive_client_traffic(engine: sa.Engine) -> None:
    rows = [_ledger_row(i) for i in range(6)]
    rows += [
        _ledger_row(10, prompt=None),  # prompt logging was off
        _ledger_row(11, audit={"sensitive": True}),  # governance marked it sensitive
        _ledger_row(12, source="eval"),  # our own eval traffic
        _ledger_row(13, status=500),
        _ledger_row(14, attempt=1),  # an upstream attempt, not a request
        _ledger_row(15, prompt=rows[0]["prompt"]),  # a duplicate prompt
        _ledger_row(16, deployment="other", audit={"sensitive": False}),
    ]
    with engine.begin() as conn:
        conn.execute(LEDGER.insert(), rows)
    data = suite_from_ledger(engine, sample=300, name="from-ledger")
    ids = sorted(c["id"] for c in data["cases"])
    assert ids == sorted([f"ledger-req{i}" for i in range(6)] + ["ledger-req16"])
    sampled = suite_from_ledger(engine, sample=3, where=["deployment=gpt"], name="x")
    assert len(sampled["cases"]) == 3
    assert "ledger-req16" not in {c["id"] for c in sampled["cases"]}
    assert sampled == suite_from_ledger(engine, sample=3, where=["deployment=gpt"], name="x")


def test_cli_init_run_show_export_and_from_ledger(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    app = eval_cli()
    result = runner.invoke(app, ["eval", "init", "example.yaml"])
    assert result.exit_code == 0, result.output
    assert len(load_suite(tmp_path / "example.yaml").cases) >= 5
    # Its "Run it with" line names the file written (it named eval-suite.yaml).
    header = (tmp_path / "example.yaml").read_text("utf-8").splitlines()[1]
    assert header.startswith("#   laneway eval run example.yaml --models"), header
    assert runner.invoke(app, ["eval", "init", "example.yaml"]).exit_code == 1
    (tmp_path / "suite.yaml").write_text(planted_suite_yaml(10), "utf-8")
    with PlantedFake(Plan(wrong=frozenset({1, 3}))) as fake:
        config = {
            "database": {"url": f"sqlite:///{tmp_path / 'cli.db'}"},
            "ledger": {"log_prompts": True},
            "deployments": [deployment("cand", fake.url)],
        }
        (tmp_path / "laneway.yaml").write_text(yaml.safe_dump(config), "utf-8")
        args = ["eval", "run", "suite.yaml", "--models", "cand", "--run-id", "r1", "--out", "out"]
        result = runner.invoke(app, [*args, "--repeats", "2", "--tokens-per-day", "1000000"])
    assert result.exit_code == 0, result.output
    assert "status complete: 20 calls" in result.output
    assert (tmp_path / "out" / "r1.html").is_file()
    run = load_run(str(tmp_path / "out" / "r1.json"), None)
    assert run.info.repeats == 2 and len(run.results) == 20
    result = runner.invoke(app, ["eval", "show", "r1", "--json", "--tokens-per-day", "1000000"])
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert shown[0]["pass_rate"] == 0.8
    assert shown[0]["monthly_cost_usd"] is not None
    result = runner.invoke(app, ["eval", "export-outcomes", "r1", "--out", "o.jsonl"])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert lines == outcome_rows(run)
    assert len(lines) == 10
    assert lines[0]["prompt"].startswith("Q0:")
    model_id = run.results[0].model_id
    assert model_id is not None and model_id.startswith("gpt-4o")  # the catalog id
    assert lines[0]["outcomes"] == {model_id: 1.0}
    assert next(x["outcomes"] for x in lines if x["id"] == "q001") == {model_id: 0.0}
    result = runner.invoke(app, ["eval", "from-ledger", "--sample", "5", "--out", "ledger.yaml"])
    assert "no usable requests" in result.output  # eval traffic is never sampled
    result = runner.invoke(app, ["eval", "run", "missing.yaml", "--models", "cand"])
    assert result.exit_code == 1
    assert "suite file not found" in result.output
