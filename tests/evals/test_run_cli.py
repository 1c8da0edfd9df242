"""``laneway eval run`` end to end against fake upstreams: progress as plain lines without
a terminal (judge phase included), exit 1 on an incomplete run, ``--min-pass``, resume
keeps the judge, and a broken scorer is one ``error:`` line and never a complete run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner, Result

from laneway import evals
from laneway.evals import RunOptions, RunRecord, load_suite
from laneway.evals._runner import new_run
from laneway.ledger import open_database
from laneway.testing import FakeOpenAI, FakeReply, FakeTurn, running
from tests.evals._cli import cli_process, eval_cli
from tests.evals.conftest import ENV, Plan, PlantedFake, case_index, deployment


def json_judge(turn: FakeTurn) -> FakeReply:
    """Grades and picks by the planted truth, in the judge's JSON schema."""
    text = turn.last_user_text
    i = case_index(text)
    if "[Answer A]" in text:
        a = text.split("[Answer A]\n", 1)[1].split("\n\n[Answer B]", 1)[0].strip()
        winner = "A" if a == str(2 * i) else "B"
        return FakeReply(text=orjson.dumps({"reasoning": "checked", "winner": winner}).decode())
    answer = text.split("Answer:\n", 1)[1].split("\n\nRubric:", 1)[0].strip()
    grade = 9 if answer == str(2 * i) else 2
    return FakeReply(text=orjson.dumps({"reasoning": "checked", "grade": grade}).decode())


def _suite_text(n: int, *, rubric: bool = False, scorer: str | None = None) -> str:
    lines = ["name: cli", "cases:"]
    extra = f", scorer: '{scorer}'" if scorer else ""
    for i in range(n):
        prompt = f"Q{i}: what is {i} plus {i}?"
        lines.append(f'  - {{id: q{i:03d}, prompt: "{prompt}", numeric: {2 * i}{extra}}}')
    if rubric:
        lines.insert(1, "defaults: {rubric: The sum is right.}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def fakes() -> Iterator[dict[str, FakeOpenAI]]:
    with running(
        PlantedFake(Plan()),
        PlantedFake(Plan(wrong=frozenset(range(0, 40, 2)))),  # half wrong
        FakeOpenAI(responder=json_judge, api_key=ENV["FAKE_KEY"]),
    ) as (good, half, judge):
        yield {"good": good, "half": half, "judge": judge}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: Any, fakes: dict[str, FakeOpenAI]) -> Path:
    monkeypatch.chdir(tmp_path)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LANEWAY_DATABASE_URL", raising=False)
    deployments = [deployment(name, fake.url) for name, fake in fakes.items()]
    deployments.append(deployment("down", "http://127.0.0.1:9"))
    config = {
        "database": {"url": f"sqlite:///{tmp_path / 'l.db'}"},
        "deployments": deployments,
        "retry": {"max_retries": 0, "base_delay": 0.0},
    }
    (tmp_path / "laneway.yaml").write_text(yaml.safe_dump(config), "utf-8")
    (tmp_path / "s.yaml").write_text(_suite_text(20), "utf-8")
    (tmp_path / "rubric.yaml").write_text(_suite_text(6, rubric=True), "utf-8")
    return tmp_path


def _run(*args: str) -> Result:
    return CliRunner().invoke(eval_cli(), ["eval", "run", *args])


def _status(home: Path, run_id: str) -> str:
    engine = open_database(f"sqlite:///{home / 'l.db'}")
    try:
        return RunRecord(engine, run_id).info().status
    finally:
        engine.dispose()


def test_progress_is_printed_as_lines_without_a_terminal(home: Path) -> None:
    out = _run("rubric.yaml", "--models", "good,half", "--judge", "judge", "--run-id", "p1")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    progress = [line for line in lines if re.fullmatch(r"cli: \d+/12", line)]
    judge = [line for line in lines if re.fullmatch(r"cli judge: \d+/6", line)]
    assert progress[0] == "cli: 0/12" and progress[-1] == "cli: 12/12"
    assert len(progress) >= 5  # every tenth of the work, not one line at the end
    assert judge[-1] == "cli judge: 6/6" and len(judge) >= 3
    # Printed as the work went, before the results table and the status line.
    assert lines.index(progress[-1]) < lines.index(judge[-1])
    assert lines.index(judge[-1]) < next(i for i, t in enumerate(lines) if "status complete" in t)


def test_an_incomplete_run_exits_1_with_the_resume_hint(home: Path) -> None:
    out = _run("s.yaml", "--models", "down", "--retries", "0", "--run-id", "inc")
    assert out.exit_code == 1, out.output
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "run inc is incomplete: 20 failed calls" in errors[0]
    assert "--resume inc" in errors[0]
    assert "Traceback" not in out.output
    assert _status(home, "inc") == "incomplete"


def test_min_pass_gates_the_run(home: Path) -> None:
    out = _run("s.yaml", "--models", "good,half", "--min-pass", "0.8", "--run-id", "g1")
    assert out.exit_code == 1, out.output
    assert "FAIL half: pass rate 50.0% < --min-pass 80.0%" in out.stdout
    assert "FAIL good" not in out.stdout
    out = _run("s.yaml", "--models", "good,half", "--min-pass", "0.5", "--run-id", "g2")
    assert out.exit_code == 0, out.output
    assert "PASS: every candidate at or above --min-pass 50.0%" in out.stdout


def test_resume_keeps_the_judge(home: Path, fakes: dict[str, FakeOpenAI]) -> None:
    engine = open_database(f"sqlite:///{home / 'l.db'}")
    suite = load_suite(home / "rubric.yaml")
    new_run(engine, suite, RunOptions(models=("good", "half"), judge="judge"), "j1")
    engine.dispose()
    out = _run("rubric.yaml", "--resume", "j1")  # no --judge: the run's own is kept
    assert out.exit_code == 0, out.output
    assert "judge judge" in out.stdout
    # 12 rubric grades; 3 of the 6 pairs differ (both orders), 3 are identical (no call).
    assert len(fakes["judge"].received) == 12 + 2 * 3
    engine = open_database(f"sqlite:///{home / 'l.db'}")
    record = RunRecord(engine, "j1")
    assert sum(1 for r in record.results() for c in r.checks if c["kind"] == "judge") == 12
    assert len(record.pairs("judge")) == 6
    engine.dispose()


def test_an_unimportable_scorer_is_one_line_before_any_call(
    home: Path, fakes: dict[str, FakeOpenAI]
) -> None:
    (home / "bad.yaml").write_text(_suite_text(3, scorer="tests.evals.nope:score"), "utf-8")
    out = _run("bad.yaml", "--models", "good", "--run-id", "s1")
    assert out.exit_code == 1, out.output
    assert out.stderr.splitlines() == [
        line for line in out.stderr.splitlines() if line.startswith("error: scorer")
    ]
    assert len(out.stderr.splitlines()) == 1
    assert "cannot be imported" in out.stderr
    assert fakes["good"].received == []
    engine = open_database(f"sqlite:///{home / 'l.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM eval_runs")).all() == []
    engine.dispose()


def test_a_failing_scorer_leaves_the_run_incomplete_with_one_error_line(home: Path) -> None:
    (home / "boom.yaml").write_text(_suite_text(5, scorer="tests.evals._scorers:boom"), "utf-8")
    out = _run("boom.yaml", "--models", "good", "--run-id", "s2")
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output
    errors = out.stderr.splitlines()
    assert errors[0].startswith(
        "error: scorer 'tests.evals._scorers:boom' raised ValueError: cannot score"
    )
    assert len(errors) == 2 and errors[1].startswith("error: run s2 is incomplete")
    assert "scorer_error x5" in errors[1]
    assert _status(home, "s2") == "incomplete"


async def test_a_run_stopped_by_an_unexpected_error_is_not_complete(
    tmp_path: Path, monkeypatch: Any, fakes: dict[str, FakeOpenAI]
) -> None:
    from laneway.evals import _runner, run_suite
    from laneway.server import build_gateway
    from tests.evals.conftest import settings_for

    async def broken_judge(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug in the judge phase")

    monkeypatch.setattr(_runner, "judge_pair", broken_judge)
    path = tmp_path / "rubric.yaml"
    path.write_text(_suite_text(3), "utf-8")
    suite = load_suite(path)
    engine = open_database(f"sqlite:///{tmp_path / 'laneway.db'}")
    gateway = build_gateway(settings_for(tmp_path, fakes), env=ENV, engine=engine)
    await gateway.start()
    try:
        options = RunOptions(models=("good", "half"), judge="judge")
        record = new_run(engine, suite, options, "crash")
        with pytest.raises(RuntimeError, match="a bug in the judge phase"):
            await run_suite(gateway, suite, record, options)
        assert record.info().status == "incomplete"
    finally:
        await gateway.aclose()
        engine.dispose()


def test_resume_keeps_every_option_the_run_started_with(
    home: Path, fakes: dict[str, FakeOpenAI], monkeypatch: Any
) -> None:
    # The provider is down: the run is left incomplete. Its resume command used to be
    # `laneway eval run s.yaml --resume ID` only, and a resume dropped --min-pass (the
    # gate was not applied: exit 0), --out (no files), --tokens-per-day, --concurrency,
    # --retries and --rps-per-provider, and lost --config (the run was not found).
    (home / "sub").mkdir()
    config = yaml.safe_load((home / "laneway.yaml").read_text("utf-8"))
    (home / "sub" / "lw.yaml").write_text(yaml.safe_dump(config), "utf-8")
    first = _run(
        "s.yaml", "--models", "down", "--run-id", "k1", "--config", "sub/lw.yaml",
        "--min-pass", "0.8", "--out", "reports", "--tokens-per-day", "1000000",
        "--concurrency", "3", "--retries", "0", "--rps-per-provider", "500",
    )  # fmt: skip
    assert first.exit_code == 1, first.output
    hint = "resume with: laneway eval run s.yaml --resume k1 --config sub/lw.yaml"
    assert first.stderr.rstrip().endswith(hint), first.stderr
    # The provider is back, answering half the cases wrong.
    for item in config["deployments"]:
        if item["name"] == "down":
            item["api_base"] = fakes["half"].url + "/v1"
    (home / "sub" / "lw.yaml").write_text(yaml.safe_dump(config), "utf-8")
    seen: list[RunOptions] = []
    real = evals.run_suite

    async def spy(gateway: Any, suite: Any, record: Any, options: RunOptions, **kw: Any) -> Any:
        seen.append(options)
        return await real(gateway, suite, record, options, **kw)

    monkeypatch.setattr(evals, "run_suite", spy)
    resumed = _run("s.yaml", "--resume", "k1", "--config", "sub/lw.yaml")
    assert resumed.exit_code == 1, resumed.output  # the gate, kept
    assert "FAIL down: pass rate 50.0% < --min-pass 80.0%" in resumed.stdout
    assert (home / "reports" / "k1.json").is_file() and (home / "reports" / "k1.html").is_file()
    row = next(line for line in resumed.stdout.splitlines() if line.startswith("│ down"))
    assert re.fullmatch(r"\d+\.\d\d", row.split("│")[-2].strip()), row  # $/month projected
    assert [(o.concurrency, o.retries, o.rps_per_provider) for o in seen] == [(3, 0, 500.0)]
    # An option given again overrides the stored one.
    again = _run("s.yaml", "--resume", "k1", "--config", "sub/lw.yaml", "--min-pass", "0.5")
    assert again.exit_code == 0, again.output
    assert "PASS: every candidate at or above --min-pass 50.0%" in again.stdout


def test_ctrl_c_prints_the_whole_resume_command(home: Path, monkeypatch: Any) -> None:
    # It printed "interrupted; resume with --resume ID": no suite, no --database (the run
    # is not found without it).
    from laneway.cli import _eval

    async def interrupted(*args: Any) -> Any:
        args[-1]()  # start(): the run exists
        raise KeyboardInterrupt

    monkeypatch.setattr(_eval, "_run_async", interrupted)
    db = f"sqlite:///{home / 'other.db'}"
    out = _run("s.yaml", "--models", "good", "--run-id", "c1", "--db", db)
    assert out.exit_code == 130, out.output
    assert out.stderr.splitlines() == [
        f"interrupted; resume with: laneway eval run s.yaml --resume c1 --database {db}"
    ]


def test_sigterm_stops_a_run_like_ctrl_c(home: Path) -> None:
    # A CI job cancelled, `timeout` or `kill` sends SIGTERM: it killed the process at
    # once, losing the answers not yet written (up to 32) and leaving the run "running".
    import signal

    with PlantedFake(Plan(slow=frozenset(range(20)))) as slow:
        config = yaml.safe_load((home / "laneway.yaml").read_text("utf-8"))
        config["deployments"].append(deployment("slow", slow.url))
        (home / "laneway.yaml").write_text(yaml.safe_dump(config), "utf-8")
        args = ["eval", "run", "s.yaml", "--models", "slow", "--run-id", "t1", "--concurrency", "1"]
        proc = cli_process(args, home)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("cli: 4/20"):
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert err.splitlines() == ["terminated; resume with: laneway eval run s.yaml --resume t1"]
    assert _status(home, "t1") == "interrupted"
    engine = open_database(f"sqlite:///{home / 'l.db'}")
    rows = list(RunRecord(engine, "t1").results())
    engine.dispose()
    assert 4 <= len(rows) < 20 and all(r.error_code is None for r in rows)
