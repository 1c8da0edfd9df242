"""``laneway eval`` against hostile input: every failure is one ``error:`` line on stderr
with exit code 2 (never a traceback), and leaves no half-written data behind (no run
row, no file, no directory)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from typer.main import get_command
from typer.testing import CliRunner, Result

from laneway.errors import ConfigError
from laneway.evals import RunOptions, _runner, load_suite
from laneway.evals._runner import new_run
from laneway.ledger import open_database
from tests.evals._cli import eval_cli
from tests.evals.conftest import ENV, deployment

SUITE = "name: tiny\ncases:\n  - id: a\n    prompt: hi\n    expected: hi\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: Any) -> Path:
    """A working directory with a config (one deployment, never called), a suite and
    a database holding run ``r1``."""
    monkeypatch.chdir(tmp_path)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LANEWAY_DATABASE_URL", raising=False)
    config = {
        "database": {"url": f"sqlite:///{tmp_path / 'l.db'}"},
        "deployments": [deployment("cand", "http://127.0.0.1:9")],
    }
    (tmp_path / "laneway.yaml").write_text(yaml.safe_dump(config), "utf-8")
    (tmp_path / "tiny.yaml").write_text(SUITE, "utf-8")
    engine = open_database(f"sqlite:///{tmp_path / 'l.db'}")
    new_run(engine, load_suite(tmp_path / "tiny.yaml"), RunOptions(models=("cand",)), "r1")
    engine.dispose()
    return tmp_path


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(eval_cli(), ["eval", *args])


def _error(result: Result, *parts: str, code: int = 1) -> str:
    """The one ``error:`` line of a failed command (exit 1, or 2 for a wrong command line;
    no traceback)."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def _runs(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "l.db") as conn:
        return list(conn.execute("SELECT run_id, status FROM eval_runs ORDER BY run_id"))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_an_existing_run_id_is_refused_with_the_resume_hint(home: Path) -> None:
    line = _error(_invoke("run", "tiny.yaml", "--models", "cand", "--run-id", "r1"))
    assert "already exists" in line and "--resume r1" in line
    assert _runs(home) == [("r1", "created")]


def test_new_run_on_a_taken_id_is_a_config_error(home: Path) -> None:
    engine = open_database(f"sqlite:///{home / 'l.db'}")
    try:
        with pytest.raises(ConfigError, match="already exists"):
            new_run(engine, load_suite(home / "tiny.yaml"), RunOptions(models=("x",)), "r1")
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name: \xff\xfe\n", "not UTF-8 text (byte 0xff at offset 6)"),
        (b"name: a\x01\n", "unacceptable character #x0001"),
        (b"[" * 1000 + b"]" * 1000, "nested too deeply"),
    ],
)
def test_an_unreadable_suite_is_one_line(home: Path, content: bytes, expected: str) -> None:
    (home / "bad.yaml").write_bytes(content)
    _error(_invoke("run", "bad.yaml", "--models", "cand"), "bad.yaml", expected)
    assert _runs(home) == [("r1", "created")]


def test_a_directory_as_suite_says_so(home: Path) -> None:
    (home / "dir").mkdir()
    _error(_invoke("run", "dir", "--models", "cand"), "dir is a directory")


def test_init_into_a_missing_directory(home: Path) -> None:
    _error(_invoke("init", str(home / "nope" / "x.yaml")), "directory", "does not exist")
    assert not (home / "nope").exists()
    _error(_invoke("init", str(home)), "is a directory")


def test_a_file_of_random_bytes_is_not_a_database(home: Path) -> None:
    garbage = home / "garbage.db"
    garbage.write_bytes(bytes(range(256)) * 16)
    before = garbage.read_bytes()
    url = f"sqlite:///{garbage}"
    _error(_invoke("from-ledger", "--db", url), "not a SQLite database")
    _error(_invoke("show", "r1", "--database", url), "not a SQLite database")
    assert garbage.read_bytes() == before
    assert not (home / "ledger-suite.yaml").exists()


def test_reading_commands_never_create_a_database(home: Path) -> None:
    url = f"sqlite:///{home / 'typo.db'}"
    for args in (["show", "r1"], ["from-ledger"], ["export-outcomes", "r1"], ["review", "r1"]):
        _error(_invoke(*args, "--database", url), "no ledger database")
    assert not (home / "typo.db").exists()


def test_a_locked_database_says_so(home: Path) -> None:
    holder = sqlite3.connect(home / "l.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock (5 s timeout)
        _error(_invoke("from-ledger", "--out", "s.yaml"), "database is locked")
    finally:
        holder.close()
    assert not (home / "s.yaml").exists()


@pytest.mark.parametrize("bad", ["../escaped", "../../etc/x", "a/b", ".hidden", "", "x" * 65])
def test_run_ids_cannot_escape_out(home: Path, bad: str) -> None:
    (home / "out" / "a" / "b").mkdir(parents=True)
    args = ["run", "tiny.yaml", "--models", "cand", "--run-id", bad, "--out", "out/a/b"]
    _error(_invoke(*args), "invalid run id", code=2)
    assert _tree(home / "out") == {"a", "a/b"}
    assert _runs(home) == [("r1", "created")]
    with pytest.raises(ConfigError):
        _runner.check_run_id(bad)


def test_valid_run_ids() -> None:
    for good in ("r1", "2024-05-01.nightly_v2", "A", "x" * 64, "a..b"):
        assert _runner.check_run_id(good) == good


def test_run_out_is_a_directory_whose_parent_must_exist(home: Path) -> None:
    base = ["run", "tiny.yaml", "--models", "cand", "--run-id", "r10"]
    missing = home / "missing"
    _error(_invoke(*base, "--out", str(missing / "x.json")), "takes a directory")
    _error(_invoke(*base, "--out", str(missing / "dir")), f"directory {missing} does not exist")
    (home / "file.txt").write_text("x", "utf-8")
    _error(_invoke(*base, "--out", "file.txt"), "file.txt is a file")
    assert not missing.exists()
    assert _runs(home) == [("r1", "created")]  # failed before the run was created


@pytest.mark.parametrize(
    "args",
    [
        ["report", "r1", "--out"],
        ["export-outcomes", "r1", "--out"],
        ["from-ledger", "--out"],
    ],
)
def test_file_outs_never_create_directories(home: Path, args: list[str]) -> None:
    missing = home / "missing"
    _error(_invoke(*args, str(missing / "f.out")), f"directory {missing} does not exist")
    assert not missing.exists()
    (home / "adir").mkdir()
    _error(_invoke(*args, "adir"), "adir is a directory")


def test_an_unknown_model_creates_no_run(home: Path) -> None:
    result = _invoke("run", "tiny.yaml", "--models", "nope", "--run-id", "r2")
    _error(result, "candidate 'nope'", "not served here")
    assert "run r2:" not in result.stdout  # no header, no progress bar
    assert _runs(home) == [("r1", "created")]  # the id is still free
    result = _invoke("run", "tiny.yaml", "--models", "cand", "--judge", "nope", "--run-id", "r2")
    _error(result, "judge 'nope'")
    assert _runs(home) == [("r1", "created")]


def test_a_damaged_export_is_one_line(home: Path) -> None:
    (home / "bad.json").write_text('{"format": "laneway.eval-run", "version": 1}', "utf-8")
    _error(_invoke("show", "bad.json"), "damaged eval run export", "run")
    _error(_invoke("compare", "bad.json", "bad.json"), "damaged eval run export")


def test_database_and_db_are_both_accepted(home: Path) -> None:
    url = f"sqlite:///{home / 'l.db'}"
    (home / "laneway.yaml").unlink()  # only the option can name the database
    for flag in ("--database", "--db"):
        result = _invoke("show", "r1", "--json", flag, url)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == "[]"  # a run with no results yet


def _commands() -> list[tuple[str, Any]]:
    group: Any = get_command(eval_cli()).commands["eval"]  # type: ignore[attr-defined]
    return sorted(group.commands.items())


def test_every_option_has_help_and_no_double_negatives() -> None:
    names = set()
    for name, command in _commands():
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help and len(param.help) > 15, (name, param.opts)
                assert not any(o.startswith("--no-no-") for o in param.secondary_opts)
                names.add((name, *param.opts))
    assert ("review", "--no-browser") in names
    assert ("run", "--database", "--db") in names


def test_a_database_error_is_one_line(home: Path) -> None:
    with sa.create_engine(f"sqlite:///{home / 'l.db'}").begin() as conn:
        conn.exec_driver_sql("DROP TABLE eval_pairs")  # a damaged schema
    _error(_invoke("show", "r1"), "database error", "no such table: eval_pairs")
