"""Every ``laneway`` command follows the README's "Exit codes" rule: 1 when the work could
not be done (a missing config, database or file, an unknown name or id, a failed check),
2 only when the command line itself is wrong (an unknown option, a missing argument, a
value that cannot be what it names); either way one ``error:`` line (or click's usage
block for 2) on stderr and no traceback.

``router`` and ``shadow`` have their own tests (tests/router, tests/evals/…shadow…);
only their usage errors are checked here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from laneway.cli import build_app

CONFIG = {
    "database": {"url": "sqlite:///ledger.db"},
    "deployments": [
        {
            "name": "local",
            "model": "smollm2-135m-instruct",
            "provider": "local",
            "hosting": "embedded",
            "hourly_cost_usd": 0,
        }
    ],
    "tiers": {"simple": ["local"]},
}

SUITE = """\
name: tiny
cases:
  - id: one
    prompt: "Say yes."
    contains: ["yes"]
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a config, a migrated empty ledger and a suite; no
    LANEWAY_* variable, no master key, no provider key."""
    import os

    from laneway.ledger import open_database

    for name in list(os.environ):
        if name.startswith("LANEWAY_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "laneway.yaml").write_text(yaml.safe_dump(CONFIG), "utf-8")
    (tmp_path / "tiny.yaml").write_text(SUITE, "utf-8")
    (tmp_path / "bad-workload.yaml").write_text(
        "name: x\ntiers:\n  simple: {tokens_per_day: 1000, data: {residency: XX}}\n", "utf-8"
    )
    open_database("sqlite:///ledger.db").dispose()
    return tmp_path


def _run(*args: str) -> Result:
    return CliRunner().invoke(build_app(), list(args))


def _check(result: Result, code: int, args: tuple[str, ...]) -> None:
    shown = f"laneway {' '.join(args)}"
    detail = f"{shown}: exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert isinstance(result.exception, SystemExit), f"{detail}\n{result.exception!r}"
    assert result.exit_code == code, detail
    assert "Traceback" not in result.output, detail
    if code == 1:
        lines = result.stderr.splitlines()
        assert lines, detail
        assert all(line.startswith("error: ") for line in lines), detail
    else:
        # One line, like every other error (click's own was three: usage, a hint,
        # "Error: ..."), naming the help to read.
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), detail


# The work cannot be done: exit 1, `error: ...` lines only.
RUNTIME = [
    ("serve", "--config", "missing.yaml"),
    ("usage", "--config", "missing.yaml"),
    ("usage", "--database", "sqlite:///missing.db"),
    ("audit", "--database", "sqlite:///missing.db"),
    ("audit", "--request", "no-such-request"),
    ("kill", "deployment", "no-such-deployment", "--reason", "x"),
    ("unkill", "deployment", "local"),
    ("route", "hello", "--router", "missing-router-dir"),
    ("route", "hello", "--profile", "no-such-profile"),
    ("advise", "missing-workload.yaml"),
    ("advise", "bad-workload.yaml"),
    ("advise", "--from-ledger", "--database", "sqlite:///missing.db"),
    ("tco", "--tokens-per-day", "1000000", "--model", "no-such-model"),
    ("tco", "--tokens-per-day", "1000000", "--model", "llama-3.1-8b", "--gpu", "no-such-gpu"),
    ("catalog", "show", "no-such-model"),
    ("keys", "create", "--name", "team-a"),
    ("keys", "list", "--database", "sqlite:///missing.db"),
    ("keys", "revoke", "no-such-key"),
    ("keys", "rotate", "no-such-key"),
    ("policy", "check", "--config", "missing.yaml"),
    ("eval", "init", "laneway.yaml"),
    ("eval", "run", "no-such-suite.yaml", "--models", "local"),
    ("eval", "run", "tiny.yaml", "--models", "no-such-model"),
    ("eval", "show", "no-such-run"),
    ("eval", "report", "no-such-run", "--out", "r.html"),
    ("eval", "compare", "no-such-run", "other-run"),
    ("eval", "review", "no-such-run", "--no-browser"),
    ("eval", "export-outcomes", "no-such-run", "--out", "o.jsonl"),
    ("eval", "from-ledger", "--database", "sqlite:///missing.db", "--out", "s.yaml"),
    ("eval", "show", "x", "--database", "sqlite:///missing.db"),
    ("drift", "run", "--suite", "missing.yaml", "--model", "local"),
    ("drift", "check", "--deployment", "no-such-deployment", "--database", "sqlite:///m.db"),
    ("drift", "status", "--database", "sqlite:///missing.db"),
    ("router", "report", "--database", "sqlite:///missing.db"),
    ("shadow", "report", "--database", "sqlite:///missing.db"),
]

# The command line is wrong: exit 2.
USAGE = [
    ("no-such-command",),
    ("serve", "--no-such-option"),
    ("serve", "--port", "many"),
    ("usage", "--since", "yesterday-ish"),
    ("usage", "--by", "colour"),
    ("audit", "--since", "soon"),
    ("kill", "deployment"),
    ("route",),
    ("advise", "--ops", "lots", "x.yaml"),
    ("advise",),
    ("tco", "--tokens-per-day", "many"),
    ("catalog", "show"),
    ("keys", "create"),
    ("keys", "create", "--name", "a", "--budget-usd", "fifty"),
    ("keys", "revoke"),
    ("policy", "check", "--no-such-option"),
    ("eval", "run"),
    ("eval", "run", "tiny.yaml", "--run-id", "a/b"),
    ("eval", "run", "tiny.yaml", "--run-id", "a", "--resume", "b"),
    ("eval", "run", "tiny.yaml", "--models", "local", "--repeats", "x"),
    ("eval", "show"),
    ("eval", "compare"),
    ("drift", "run", "--model", "local"),
    ("drift", "check", "--deployment", "local", "--window", "a-while"),
    ("router", "report", "--no-such-option"),
    ("shadow", "report", "--since", "a-while"),
    ("--no-such-option",),
    ("eval", "from-ledger", "--where", "colour=red"),  # exited 1
    ("eval", "from-ledger", "--where", "since=soon"),
    ("eval", "no-such-command"),
]


def test_a_wrong_command_line_names_the_help_to_read(home: Path) -> None:
    result = _run("eval", "run", "tiny.yaml", "--repeats", "0")
    assert result.stderr == (
        "error: Invalid value for '--repeats': Input should be greater than or equal to 1 "
        "(see `laneway eval run --help`)\n"
    )


def test_a_group_with_no_command_still_prints_its_help(home: Path) -> None:
    result = _run("eval")
    assert "Usage: laneway eval [OPTIONS] COMMAND" in result.output
    assert "export-outcomes" in result.output


@pytest.mark.parametrize("args", RUNTIME, ids=" ".join)
def test_a_command_that_cannot_do_its_work_exits_1(home: Path, args: tuple[str, ...]) -> None:
    _check(_run(*args), 1, args)


@pytest.mark.parametrize("args", USAGE, ids=" ".join)
def test_a_wrong_command_line_exits_2(home: Path, args: tuple[str, ...]) -> None:
    _check(_run(*args), 2, args)
