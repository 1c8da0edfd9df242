from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from laneway.cli._router import register
from laneway.router import conversation_from_prompt, load_router
from laneway.router._features import STRUCTURAL_NAMES

TIERS = "cheap=weak-a,weak-b;pricey=strong-a"


def app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


def run(*args: str) -> str:
    result = CliRunner().invoke(app(), list(args))
    assert result.exit_code == 0, result.output
    return result.output


def synthetic_outcomes(path: Path, n: int = 120) -> None:
    """Long, numeric prompts are hard for the weak models; short chat is easy."""
    with path.open("w") as f:
        for i in range(n):
            hard = i % 2 == 0
            prompt = (
                f"Calculate the energy of a {i} kg mass at {i + 3} m/s, then derive step by step "
                f"the momentum and show that p = m v holds for case {i}."
                if hard
                else f"hi there, how are you {i}?"
            )
            weak = 0 if hard else 1
            outcomes = {"weak-a": weak, "weak-b": weak if i % 3 else 1 - weak, "strong-a": 1}
            f.write(json.dumps({"id": f"q{i}", "prompt": prompt, "outcomes": outcomes}) + "\n")


def test_route_json() -> None:
    body = json.loads(run("route", "What is 2 + 2?", "--json"))
    assert set(body) == {
        "tier",
        "score",
        "difficulty",
        "estimates",
        "reason",
        "profile",
        "task",
        "task_known",
    }
    assert list(body["estimates"]) == ["simple", "standard", "complex", "frontier"]


def test_score_passes_ids_through_and_reports_bad_lines(tmp_path: Path) -> None:
    src = tmp_path / "prompts.jsonl"
    src.write_text(
        "\n".join(
            [
                json.dumps({"id": 7, "prompt": "hello"}),
                "{not json",
                json.dumps({"id": "m", "messages": [{"role": "user", "content": "hi"}]}),
                json.dumps({"id": "x", "nothing": True}),
                json.dumps({"prompt": "no id"}),
            ]
        )
        + "\n"
    )
    out = tmp_path / "scores.jsonl"
    run("router", "score", "--input", str(src), "--output", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == [7, None, "m", "x", None]
    assert set(lines[1]) == {"id", "error"}
    assert set(lines[3]) == {"id", "error"}
    assert {"score", "tier", "estimates"} <= set(lines[0])
    assert lines[2]["tier"] in ("simple", "standard", "complex", "frontier")


def test_train_calibrate_and_use_profile(tmp_path: Path) -> None:
    data = tmp_path / "outcomes.jsonl"
    synthetic_outcomes(data)
    out = tmp_path / "router"
    run("router", "train", "--data", str(data), "--out", str(out), "--tiers", TIERS)
    trained = load_router(out)
    assert trained.tiers == ("cheap", "pricey")
    easy = trained.route([{"role": "user", "content": "hi there, how are you?"}])
    hard = trained.route(
        [{"role": "user", "content": "Calculate the energy of a 9 kg mass at 4 m/s, then "
          "derive step by step the momentum and show that p = m v holds."}]
    )  # fmt: skip
    assert hard.score > easy.score
    assert hard.estimates["cheap"] < easy.estimates["cheap"]

    run(
        "router", "calibrate", "--router", str(out), "--data", str(data),
        "--target-strong-share", "0.5", "--profile", "half",
    )  # fmt: skip
    profile = json.loads((out / "profiles" / "half.json").read_text())
    assert profile["calibration"]["tier_shares"]["pricey"] <= 0.5
    reloaded = load_router(out)
    assert "half" in reloaded.profiles()
    assert reloaded.route([{"role": "user", "content": "hi"}], "half").profile == "half"


def test_calibrate_needs_exactly_one_goal(tmp_path: Path) -> None:
    result = CliRunner().invoke(app(), ["router", "calibrate", "--profile", "x"])
    assert result.exit_code != 0


def test_calibrate_by_cost_needs_tier_costs(tmp_path: Path) -> None:
    data = tmp_path / "outcomes.jsonl"
    synthetic_outcomes(data)
    out = tmp_path / "router"
    run("router", "train", "--data", str(data), "--out", str(out), "--tiers", TIERS)
    bad = CliRunner().invoke(
        app(), ["router", "calibrate", "--router", str(out), "--data", str(data),
                "--max-cost-per-1k-requests", "1", "--profile", "c"],
    )  # fmt: skip
    assert bad.exit_code == 2
    run(
        "router", "calibrate", "--router", str(out), "--data", str(data),
        "--max-cost-per-1k-requests", "1.5", "--tier-costs", "cheap=0.5,pricey=3",
        "--profile", "budget",
    )  # fmt: skip
    report = json.loads((out / "profiles" / "budget.json").read_text())["calibration"]
    assert report["cost_per_1k_requests"] <= 1.5


def test_eval_reports_baselines(tmp_path: Path) -> None:
    data = tmp_path / "outcomes.jsonl"
    synthetic_outcomes(data)
    out = tmp_path / "router"
    run("router", "train", "--data", str(data), "--out", str(out), "--tiers", TIERS)
    body = json.loads(
        run(
            "router", "eval", "--router", str(out), "--data", str(data),
            "--strong", "strong-a", "--weak", "weak-a", "--json", "--rounds", "50",
        )
    )  # fmt: skip
    methods = body["methods"]
    assert set(methods) == {"router", "random", "prompt-length", "oracle"}
    assert methods["random"]["apgr"] == pytest.approx(0.5)
    assert methods["oracle"]["apgr"] > methods["random"]["apgr"]
    assert methods["router"]["apgr"] > 0.6


def _ledger(tmp_path: Path, prompts: list[tuple[str, bool]]) -> str:
    """A migrated ledger with one logged API request per prompt (flag: sensitive)."""
    from datetime import UTC, datetime

    from laneway.ledger import LEDGER, open_database

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = open_database(url)
    with engine.begin() as conn:
        for i, (prompt, sensitive) in enumerate(prompts):
            base = {"request_id": f"r{i}", "ts": datetime.now(UTC), "source": "api",
                    "requested_model": "auto", "tier": "cheap", "stream": False,
                    "status": 200, "fallbacks": 0, "partial": False,
                    "prompt_tokens": 100, "completion_tokens": 50}  # fmt: skip
            messages = json.dumps([{"role": "user", "content": prompt}])
            audit = {"sensitive": sensitive}
            conn.execute(LEDGER.insert().values(attempt=0, prompt=messages, audit=audit, **base))
            conn.execute(LEDGER.insert().values(attempt=1, cost_nusd=1000, **base))
    engine.dispose()
    return url


def _config(tmp_path: Path) -> Path:
    import yaml

    deployments = [
        {"name": name, "model": model, "provider": "openai",
         "price": {"input_per_mtok": price, "output_per_mtok": price}}
        for name, model, price in (("c1", "weak-a", "1"), ("c2", "weak-b", "1"),
                                   ("p1", "strong-a", "10"))
    ]  # fmt: skip
    body = {"deployments": deployments, "tiers": {"cheap": ["c1", "c2"], "pricey": ["p1"]}}
    path = tmp_path / "laneway.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def test_train_takes_tiers_from_config_and_calibrate_defaults_to_ledger_prompts(
    tmp_path: Path,
) -> None:
    data, out = tmp_path / "outcomes.jsonl", tmp_path / "r"
    synthetic_outcomes(data)
    config = _config(tmp_path)
    run("router", "train", "--data", str(data), "--out", str(out), "--config", str(config))
    meta = json.loads((out / "router.json").read_text())
    assert meta["tiers"] == ["cheap", "pricey"]
    assert meta["tier_models"] == {"cheap": ["weak-a", "weak-b"], "pricey": ["strong-a"]}

    prompts = [(f"hi there number {i}", False) for i in range(40)]
    prompts += [(f"Derive step by step the energy of a {i} kg mass at {i} m/s.", False)
                for i in range(20)]  # fmt: skip
    prompts.append(("my card is 4111 1111 1111 1111", True))
    db = _ledger(tmp_path, prompts)
    args = ("router", "calibrate", "--router", str(out), "--database", db, "--config", str(config))
    first = json.loads(run(*args, "--profile", "share", "--target-strong-share", "0.4")
                       .splitlines()[0])  # fmt: skip
    assert first["calibration_set"] == "60 prompt(s) logged in the ledger"
    assert first["rows"] == 60 and first["quality_source"] == "router estimates"
    assert first["tier_shares"]["pricey"] <= 0.4

    # Costs from the config's prices at the ledger's tokens per request:
    # cheap (100 + 50) tokens × $1/M = $0.15 per 1k requests; pricey $1.50.
    report = json.loads(run(*args, "--profile", "cost", "--max-cost-per-1k-requests", "0.9")
                        .splitlines()[0])  # fmt: skip
    assert report["cost_per_1k_requests"] <= 0.9
    shares = report["tier_shares"]
    assert (
        abs(0.15 * shares["cheap"] + 1.5 * shares["pricey"] - report["cost_per_1k_requests"]) < 1e-9
    )


def test_calibrate_uses_shipped_set_when_ledger_has_few_prompts(tmp_path: Path) -> None:
    db = _ledger(tmp_path, [("hello", False)] * 3)
    router_dir = tmp_path / "r"
    import shutil

    from laneway.router import default_router_dir

    shutil.copytree(default_router_dir(), router_dir)
    (router_dir / "calibration.json").unlink()
    line = run("router", "calibrate", "--router", str(router_dir), "--database", db,
               "--profile", "x", "--target-strong-share", "0.3").splitlines()[0]  # fmt: skip
    report = json.loads(line)
    assert report["calibration_set"].endswith("default/calibration.json")
    assert report["quality_source"] == "observed outcomes"


def fails(*args: str) -> str:
    """Run a command that must fail cleanly: exit 1 with a message, no traceback."""
    result = CliRunner().invoke(app(), list(args))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    return result.output


def test_unreadable_files_fail_with_a_message(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.jsonl")
    scored = tmp_path / "scored.jsonl"
    assert "cannot read" in fails("router", "score", "--input", missing, "--output", str(scored))
    assert not scored.exists()
    train = ("router", "train", "--data", missing, "--out", "r", "--tiers", TIERS)
    assert "cannot read" in fails(*train)
    evaluate = ("router", "eval", "--data", missing, "--strong", "a", "--weak", "b")
    assert "cannot read" in fails(*evaluate)
    src = tmp_path / "p.jsonl"
    src.write_text(json.dumps({"prompt": "hi"}) + "\n")
    out = str(tmp_path / "no-such-dir" / "o.jsonl")
    assert "cannot write" in fails("router", "score", "--input", str(src), "--output", out)


def test_truncated_gzip_fails_naming_the_last_line_read(tmp_path: Path) -> None:
    import gzip

    rows = "".join(
        json.dumps({"id": i, "prompt": f"question {i} " * 5, "outcomes": {"a": 1}}) + "\n"
        for i in range(3000)
    )
    data = tmp_path / "out.jsonl.gz"
    data.write_bytes(gzip.compress(rows.encode())[:4000])
    output = fails("router", "eval", "--data", str(data), "--strong", "a", "--weak", "b")
    assert "after line" in output


def test_score_survives_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    src = tmp_path / "p.jsonl"
    src.write_bytes(b'\xff\xfe{"id": 1}\n' + json.dumps({"id": 2, "prompt": "ok"}).encode() + b"\n")
    run("router", "score", "--input", str(src), "--output", str(tmp_path / "s.jsonl"))
    lines = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert "error" in lines[0] and lines[0]["id"] is None
    assert lines[1]["id"] == 2 and "score" in lines[1]


def test_score_says_which_field_is_wrong(tmp_path: Path) -> None:
    src = tmp_path / "p.jsonl"
    src.write_text(
        json.dumps({"id": 1, "prompt": 5}) + "\n" + json.dumps({"id": 2, "messages": "x"}) + "\n"
    )
    run("router", "score", "--input", str(src), "--output", str(tmp_path / "s.jsonl"))
    errors = [json.loads(x)["error"] for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert "'prompt' must be a string" in errors[0]
    assert "'messages' must be a non-empty list" in errors[1]


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "x" * 65, "a.b"])
def test_calibrate_rejects_profile_names_that_are_not_plain(tmp_path: Path, name: str) -> None:
    output = fails("router", "calibrate", "--quality-floor", "0.9", "--profile", name,
                   "--router", str(tmp_path))  # fmt: skip
    assert "invalid profile name" in output
    assert not list(tmp_path.rglob("*.json"))


def test_bad_tiers_json_is_a_usage_error(tmp_path: Path) -> None:
    data = tmp_path / "o.jsonl"
    synthetic_outcomes(data, 20)
    for spec in ("{bad", '{"cheap": 1, "pricey": 2}'):
        result = CliRunner().invoke(
            app(), ["router", "train", "--data", str(data), "--out", "r", "--tiers", spec]
        )
        assert result.exit_code == 2 and "--tiers" in result.output, result.output


def test_token_table_is_loaded_only_by_a_router_that_uses_the_embedding(tmp_path: Path) -> None:
    shipped = load_router()
    assert not shipped.scorer.use_embedding and shipped.scorer.embedder is None
    data = tmp_path / "outcomes.jsonl"
    synthetic_outcomes(data)
    out = tmp_path / "router"
    run("router", "train", "--data", str(data), "--out", str(out), "--tiers", TIERS, "--embedding")
    trained = load_router(out).scorer
    assert trained.use_embedding and trained.embedder is not None
    conv = conversation_from_prompt("Calculate the momentum of a 3 kg mass at 2 m/s.")
    assert trained.features(conv).shape == (len(STRUCTURAL_NAMES) + trained.embedder.dim,)
    assert shipped.scorer.features(conv).shape == (len(STRUCTURAL_NAMES),)


def test_train_from_config_reads_split_columns_of_one_model_on_two_deployments(
    tmp_path: Path,
) -> None:
    """An outcome export writes ``MODEL@DEPLOYMENT`` columns where two deployments of one
    catalog model answered (self-hosted in the cheap tier, a serverless API in the pricey
    one); ``router train`` with the config and no ``--tiers`` maps them to their tiers."""
    import yaml

    deployments = [
        {"name": name, "model": "llama-3.1-70b-instruct", "provider": "openai",
         "price": {"input_per_mtok": price, "output_per_mtok": price}}
        for name, price in (("local", "0.1"), ("api", "1"))
    ]  # fmt: skip
    config = tmp_path / "laneway.yaml"
    body = {"deployments": deployments, "tiers": {"cheap": ["local"], "pricey": ["api"]}}
    config.write_text(yaml.safe_dump(body), encoding="utf-8")
    plain, data, out = tmp_path / "plain.jsonl", tmp_path / "split.jsonl", tmp_path / "r"
    synthetic_outcomes(plain)
    with data.open("w") as f:
        for line in plain.read_text().splitlines():
            row = json.loads(line)
            o = row["outcomes"]
            row["outcomes"] = {"llama-3.1-70b-instruct@local": o["weak-a"],
                               "llama-3.1-70b-instruct@api": o["strong-a"]}  # fmt: skip
            f.write(json.dumps(row) + "\n")
    run("router", "train", "--data", str(data), "--out", str(out), "--config", str(config))
    meta = json.loads((out / "router.json").read_text())
    assert meta["tier_models"] == {
        "cheap": ["llama-3.1-70b-instruct", "llama-3.1-70b-instruct@local"],
        "pricey": ["llama-3.1-70b-instruct", "llama-3.1-70b-instruct@api"],
    }
    hard = "Calculate the energy of a 7 kg mass at 9 m/s, then derive step by step the momentum."
    router = load_router(out, environ={})
    easy_score = router.route_conversation(conversation_from_prompt("hi there, how are you?"))
    hard_score = router.route_conversation(conversation_from_prompt(hard))
    assert hard_score.score > easy_score.score + 0.2
