"""``eval export-outcomes``: two deployments of one catalog model (two providers of one
model, or one self-hosted and one serverless) each keep their outcomes. They shared one
column, the mean of both: a deployment right on every case and one wrong on a third of
them were exported as one model right on two thirds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from typer.testing import CliRunner

from laneway.evals import LoadedRun, ResultRow, RunInfo, outcome_rows
from laneway.evals._outcomes import outcome_columns
from tests.evals._cli import eval_cli
from tests.evals.conftest import ENV, Plan, PlantedFake, deployment, planted_suite_yaml


def _run(*answers: tuple[str, str, str | None, float]) -> LoadedRun:
    """A run of cases q0, q1 answered by (case, catalog model, deployment, score)."""
    cases = [{"id": f"q{i}", "prompt": f"question {i}"} for i in range(2)]
    info = RunInfo("r", datetime.now(UTC), "complete", {"cases": cases}, "d", ("x",), 1, {})
    results = tuple(
        ResultRow(
            case,
            deployment or "?",
            0,
            "out",
            score > 0.5,
            score,
            deployment=deployment,
            model_id=model,
        )
        for case, model, deployment, score in answers
    )
    return LoadedRun(info, results, ())


def test_one_deployment_per_model_keeps_the_catalog_id() -> None:
    columns, notes = outcome_columns([("llama", "groq"), ("gpt-4o", "openai"), ("llama", "groq")])
    assert columns == {("llama", "groq"): "llama", ("gpt-4o", "openai"): "gpt-4o"}
    assert notes == ()


def test_two_deployments_of_one_model_get_a_column_each_and_a_note() -> None:
    served = [("llama", "groq"), ("llama", "local"), ("gpt-4o", "openai"), ("llama", None)]
    columns, notes = outcome_columns(served)
    assert columns == {
        ("llama", "groq"): "llama@groq",
        ("llama", "local"): "llama@local",
        ("gpt-4o", "openai"): "gpt-4o",
        ("llama", None): "llama",  # not recorded: never merged into a deployment's column
    }
    assert len(notes) == 1
    assert notes[0].startswith(
        "catalog model llama was served by 2 deployments: one column each (llama@groq, llama@local)"
    )
    assert "--tiers 'simple=llama@groq;complex=llama@local'" in notes[0]


def test_outcomes_of_two_deployments_are_not_mixed() -> None:
    run = _run(
        ("q0", "llama", "groq", 1.0),
        ("q0", "llama", "local", 0.0),
        ("q1", "llama", "groq", 1.0),
        ("q1", "llama", "local", 1.0),
        ("q1", "gpt-4o", "openai", 0.0),
    )
    rows = {r["id"]: r["outcomes"] for r in outcome_rows(run)}
    # It was {"llama": 0.5} and {"llama": 1.0, ...}: groq's and local's answers averaged.
    assert rows == {
        "q0": {"llama@groq": 1.0, "llama@local": 0.0},
        "q1": {"gpt-4o": 0.0, "llama@groq": 1.0, "llama@local": 1.0},
    }


def test_the_cli_exports_a_column_per_deployment_and_says_why(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "suite.yaml").write_text(planted_suite_yaml(6), "utf-8")
    runner = CliRunner()
    app = eval_cli()
    # Both deployments serve catalog model gpt-4o; the second gets cases 1 and 3 wrong.
    with PlantedFake(Plan()) as right, PlantedFake(Plan(wrong=frozenset({1, 3}))) as wrong:
        config = {
            "database": {"url": f"sqlite:///{tmp_path / 'cli.db'}"},
            "deployments": [deployment("east", right.url), deployment("west", wrong.url)],
        }
        (tmp_path / "laneway.yaml").write_text(yaml.safe_dump(config), "utf-8")
        args = ["eval", "run", "suite.yaml", "--models", "east,west", "--run-id", "r1"]
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["eval", "export-outcomes", "r1", "--out", "o.jsonl"])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    model = next(iter(lines[0]["outcomes"])).split("@")[0]
    assert model.startswith("gpt-4o")  # the catalog id
    east, west = f"{model}@east", f"{model}@west"
    outcomes = {line["id"]: line["outcomes"] for line in lines}
    assert outcomes["q000"] == {east: 1.0, west: 1.0}
    assert outcomes["q001"] == {east: 1.0, west: 0.0}  # it was {gpt-4o: 0.5}
    assert outcomes["q003"] == {east: 1.0, west: 0.0}
    note = result.stderr.splitlines()
    assert len(note) == 1 and note[0].startswith(
        f"note: catalog model {model} was served by 2 deployments: one column each ({east}, {west})"
    )
    assert result.stdout == "wrote 6 prompts to o.jsonl\n"
