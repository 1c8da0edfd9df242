"""``laneway router``: train with tasks and answers, promote, calibrate into the state
directory, report per task and per profile, help everywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from typer.main import get_command
from typer.testing import CliRunner

from laneway.cli._router import register
from laneway.router import active_router_dir, default_router_dir, load_router


def app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app(), list(args))


def outcomes_file(path: Path, n: int = 300, invert: bool = False) -> Path:
    """Tasks 'math' (weak fails) and 'chat' (weak succeeds); answers of the weak model."""
    with path.open("w") as f:
        for i in range(n):
            hard = i % 2 == 0
            task = "math" if hard else "chat"
            prompt = (f"Compute step by step {i} * {i + 7} and explain." if hard
                      else f"hello, how are you doing {i}?")  # fmt: skip
            weak = 0 if hard else 1
            if invert:
                weak = 1 - weak
            answer = "" if weak == 0 else "Fine, thanks!"
            row = {"id": f"q{i}", "prompt": prompt, "task": task,
                   "outcomes": {"weak-a": weak, "strong-a": 1},
                   "answers": {"weak-a": answer}}  # fmt: skip
            f.write(json.dumps(row) + "\n")
    return path


TIERS = "cheap=weak-a;pricey=strong-a"


def train(tmp_path: Path, name: str, *data: Path) -> Path:
    out = tmp_path / name
    args = ["router", "train", "--out", str(out), "--tiers", TIERS]
    for d in data:
        args += ["--data", str(d)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "held-out rows:" in result.output and "candidate - length" in result.output
    return out


def test_router_alone_prints_its_help() -> None:
    result = invoke("router")
    assert "Usage" in result.output and "promote" in result.output
    assert "Missing command" not in result.output


def test_every_router_option_has_help() -> None:
    group: Any = get_command(app())  # typer bundles its own click: no isinstance check
    commands = [group.commands["route"], *group.commands["router"].commands.values()]
    assert len(commands) == 7  # route + score, train, promote, calibrate, eval, report
    missing = [
        f"{c.name} {p.name}"
        for c in commands
        for p in c.params
        if p.name != "help" and not (getattr(p, "help", None) or "").strip()
    ]
    assert missing == []


def test_train_reads_several_files_with_tasks_and_answers(tmp_path: Path) -> None:
    # 400 + 100 rows: the held-out check needs 10 rows where the tiers differ (about 20 here)
    a, b = outcomes_file(tmp_path / "a.jsonl", 400), outcomes_file(tmp_path / "b.jsonl", 100)
    out = train(tmp_path, "r", a, b)
    meta = json.loads((out / "router.json").read_text())
    assert meta["tasks"] == ["chat", "math"] and meta["verifier"] is True
    assert meta["holdout"]["modulus"] == 10
    assert {p.name for p in (out / "profiles").glob("*.json")} == {
        "economy.json",
        "default.json",
        "quality.json",
    }
    scored = tmp_path / "scored.jsonl"
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"id": 1, "prompt": "hello there", "task": "chat", "answer": ""})
        + "\n"
        + json.dumps({"id": 2, "prompt": "hello there"})
        + "\n"
    )
    result = invoke("router", "score", "--router", str(out), "--input", str(src),
                    "--output", str(scored))  # fmt: skip
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in scored.read_text().splitlines())
    assert first["task"] == "chat" and first["task_known"] is True
    assert 0.0 <= first["escalation"] <= 1.0
    assert "escalation" not in second and {"score", "difficulty"} <= set(second)


def test_promote_installs_a_better_router_and_refuses_a_worse_one(tmp_path: Path) -> None:
    data = outcomes_file(tmp_path / "o.jsonl")
    good = train(tmp_path, "good", data)
    bad = train(tmp_path, "bad", outcomes_file(tmp_path / "inv.jsonl", invert=True))
    refused = invoke("router", "promote", str(bad), "--data", str(data))
    assert refused.exit_code == 1
    assert "refused" in refused.output and "candidate - length" in refused.output
    assert not (active_router_dir() / "router.json").exists()
    ok = invoke("router", "promote", str(good), "--data", str(data))
    assert ok.exit_code == 0, ok.output
    assert "candidate - active" in ok.output
    assert load_router().tiers == ("cheap", "pricey")  # the active router now
    again = invoke("router", "promote", str(bad), "--data", str(data))
    assert again.exit_code == 1
    hard = [{"role": "user", "content": "Compute step by step 4 * 11 and explain."}]
    assert load_router().route(hard, "quality", task="math").tier == "pricey"  # still good


def test_calibrate_without_router_writes_to_the_state_dir_not_the_package(
    tmp_path: Path,
) -> None:
    shipped = sorted(p.name for p in (default_router_dir() / "profiles").iterdir())
    result = invoke("router", "calibrate", "--profile", "mine", "--target-strong-share", "0.2",
                    "--database", f"sqlite:///{tmp_path / 'none.db'}")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (active_router_dir() / "profiles" / "mine.json").is_file()
    assert sorted(p.name for p in (default_router_dir() / "profiles").iterdir()) == shipped
    assert "auto:mine" in result.output
    assert load_router().route([{"role": "user", "content": "hi"}], "mine").profile == "mine"


def test_report_shows_profiles_and_per_task_gains(tmp_path: Path) -> None:
    from laneway.ledger import LEDGER, open_database

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = open_database(url)
    with engine.begin() as conn:
        for i, (task, tier, score) in enumerate(
            [("triage", "simple", 0.1), ("triage", "simple", 0.2), ("legal", "frontier", 0.5)]
        ):
            conn.execute(LEDGER.insert().values(
                request_id=f"r{i}", ts=datetime.now(UTC), source="api", requested_model="auto",
                tier=tier, stream=False, status=200, fallbacks=0, partial=False, attempt=0,
                prompt_tokens=10, completion_tokens=5, task=task, route_score=score))  # fmt: skip
    engine.dispose()
    config = tmp_path / "laneway.yaml"
    config.write_text("deployments: []\n")
    result = invoke("router", "report", "--json", "--database", url, "--config", str(config),
                    "--since", "all")  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    shares = {p["name"]: p["frontier_share"] for p in body["profiles"]}
    assert shares["economy"] < shares["default"] < shares["quality"]
    tasks = {t["task"]: t for t in body["tasks"]}
    assert tasks["triage"]["requests"] == 2
    assert abs(tasks["triage"]["mean_gain"] - 0.15) < 1e-9
    assert tasks["legal"]["tier_shares"] == {"frontier": 1.0}
    assert "baseline" not in body and "savings unknown" in body["savings_note"]
    text = invoke("router", "report", "--database", url, "--config", str(config), "--since", "all")
    assert text.exit_code == 0, text.output
    assert "auto:economy" in text.output and "triage" in text.output


def test_ledger_calibration_rows_carry_the_task(tmp_path: Path) -> None:
    from laneway.ledger import LEDGER, open_database
    from laneway.router import ledger_prompt_rows

    engine = open_database(f"sqlite:///{tmp_path / 'l.db'}")
    with engine.begin() as conn:
        for i, task in enumerate(["triage", None]):
            prompt = json.dumps([{"role": "user", "content": f"hi {i}"}])
            conn.execute(LEDGER.insert().values(
                request_id=f"r{i}", ts=datetime.now(UTC), source="api", requested_model="auto",
                tier="simple", stream=False, status=200, fallbacks=0, partial=False, attempt=0,
                task=task, prompt=prompt))  # fmt: skip
    rows = ledger_prompt_rows(engine)
    engine.dispose()
    assert sorted((r["task"] or "-") for r in rows) == ["-", "triage"]
