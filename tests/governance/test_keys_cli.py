"""``laneway keys``, ``laneway kill`` and ``laneway unkill`` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from laneway.cli._keys import register
from laneway.governance._store import GovernanceStore
from laneway.ledger import open_database


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    return app


MASTER = {"LANEWAY_MASTER_KEY": "master-for-cli-tests"}


def _run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    env = {"LANEWAY_DATABASE_URL": "", **MASTER, **(env or {})}
    return CliRunner().invoke(_app(), list(args), env=env)


def test_create_prints_the_key_once_and_list_never_shows_it(db_url: str) -> None:
    result = _run(
        "keys", "create", "--name", "team-a", "--budget-usd", "10", "--period", "day",
        "--models", "gpt-x, llama", "--rpm", "30", "--database", db_url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip()
    assert plaintext.startswith("lw-") and "\n" not in plaintext
    assert "cannot be shown again" in result.stderr
    listed = _run("keys", "list", "--json", "--database", db_url)
    assert listed.exit_code == 0
    assert plaintext not in listed.output
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "team-a" and row["prefix"] == plaintext[:8]
    assert (row["budget_usd"], row["spent_usd"], row["period"]) == ("10", "0", "day")
    assert row["models"] == ["gpt-x", "llama"] and row["rpm"] == 30
    assert row["resets_at"].endswith("T00:00:00Z")
    table = _run("keys", "list", "--database", db_url)
    assert table.exit_code == 0
    assert "team-a" in table.stdout and "$0.00 of $10.00 per day" in table.stdout
    assert plaintext not in table.stdout


def test_create_json_revoke_and_rotate(db_url: str) -> None:
    created = json.loads(
        _run("keys", "create", "--name", "svc", "--json", "--database", db_url).stdout
    )
    engine = open_database(db_url)
    try:
        store = GovernanceStore(engine)
        assert store.authenticate(created["key"]) is not None
        rotated = _run("keys", "rotate", "svc", "--database", db_url)
        assert rotated.exit_code == 0, rotated.output
        new = rotated.stdout.strip()
        assert new.startswith("lw-") and new != created["key"]
        assert "old secret no longer works" in rotated.stderr
        assert store.authenticate(created["key"]) is None
        assert store.authenticate(new) is not None
        revoked = _run("keys", "revoke", created["id"], "--database", db_url)
        assert revoked.exit_code == 0 and "Revoked key 'svc'" in revoked.stdout
        assert store.authenticate(new) is None
    finally:
        engine.dispose()
    listed = "keys", "list", "--json", "--database", db_url
    assert json.loads(_run(*listed, "--active").stdout) == []
    (row,) = json.loads(_run(*listed).stdout)
    assert row["active"] is False and row["revoked_at"] is not None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--budget-usd", "ten"), 2, "not a number"),
        (("--period", "day"), 2, "needs a budget"),
        (("--budget-usd", "-1"), 2, "more than $0"),
    ],
)
def test_create_refuses_bad_input(
    db_url: str, args: tuple[str, ...], code: int, message: str
) -> None:
    result = _run("keys", "create", "--name", "x", *args, "--database", db_url)
    assert result.exit_code == code
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stdout == ""


def test_operational_errors_exit_1(db_url: str, tmp_path: Path) -> None:
    assert _run("keys", "create", "--name", "dup", "--database", db_url).exit_code == 0
    dup = _run("keys", "create", "--name", "dup", "--database", db_url)
    assert dup.exit_code == 1 and "exists already" in dup.stderr
    missing = _run("keys", "revoke", "nobody", "--database", db_url)
    assert missing.exit_code == 1 and "no key with id or active name 'nobody'" in missing.stderr
    nodb = _run("keys", "list", "--database", f"sqlite:///{tmp_path / 'none.db'}")
    assert nodb.exit_code == 1 and "no ledger database" in nodb.stderr
    assert not (tmp_path / "none.db").exists()


def test_database_from_environment_and_config(tmp_path: Path) -> None:
    env_db = tmp_path / "env.db"
    result = _run(
        "keys", "create", "--name", "e", env={"LANEWAY_DATABASE_URL": f"sqlite:///{env_db}"}
    )
    assert result.exit_code == 0 and env_db.exists()
    cfg_db = tmp_path / "cfg.db"
    config = tmp_path / "laneway.yaml"
    config.write_text(f"database:\n  url: sqlite:///{cfg_db}\n")
    result = _run("keys", "create", "--name", "c", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert cfg_db.exists()
    bad = _run("keys", "list", "--config", str(tmp_path / "missing.yaml"))
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ")  # a file, not the syntax


def test_kill_list_and_unkill(db_url: str) -> None:
    killed = _run(
        "kill",
        "deployment",
        "gpt-x",
        "--reason",
        "bad answers",
        "--actor",
        "ops",
        "--database",
        db_url,
        "--force",  # no config here names gpt-x
    )
    assert killed.exit_code == 1 and "no ledger database" in killed.stderr  # not created
    open_database(db_url).dispose()  # as `laneway serve` does on its first start
    killed = _run("kill", "deployment", "gpt-x", "--reason", "bad answers", "--actor", "ops",
                  "--database", db_url, "--force")  # fmt: skip
    assert killed.exit_code == 0, killed.output
    assert "Killed deployment 'gpt-x'" in killed.stdout
    listed = _run("kill", "--list", "--database", db_url)
    assert "deployment gpt-x: killed" in listed.stdout and "by ops — bad answers" in listed.stdout
    assert _run("unkill", "deployment", "gpt-x", "--database", db_url).exit_code == 0
    again = _run("unkill", "deployment", "gpt-x", "--database", db_url)
    assert again.exit_code == 1 and "is not killed" in again.stderr
    assert "No kill switches are active." in _run("kill", "--list", "--database", db_url).stdout
    bad_kind = _run("kill", "region", "eu", "--database", db_url)
    assert bad_kind.exit_code == 2
    no_name = _run("kill", "model", "--database", db_url)
    assert no_name.exit_code == 2 and "give KIND and NAME" in no_name.stderr
    engine = open_database(db_url)
    try:
        actions = [(e.action, e.actor) for e in GovernanceStore(engine).kill_history()]
    finally:
        engine.dispose()
    assert actions[-1] == ("kill", "ops") and actions[0][0] == "unkill"
    assert actions[0][1].startswith("cli")


def test_help_texts_explain() -> None:
    wide = {"COLUMNS": "200", "LANEWAY_DATABASE_URL": ""}
    assert "shown once" in _run("keys", "--help", env=wide).stdout
    create_help = _run("keys", "create", "--help", env=wide).stdout
    assert "--budget-usd" in create_help and "--allow-unknown-price" in create_help
    assert "--no-allow-unknown-price" not in create_help
    assert "within a second" in _run("kill", "--help", env=wide).stdout


def test_kill_refuses_a_name_the_config_lacks_and_a_database_that_is_not_there(
    db_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "laneway.yaml"
    config.write_text(
        "deployments:\n"
        "  - {name: gpt-x, model: gpt-4o, provider: openai, api_key: env:OPENAI_API_KEY}\n"
        "tiers: {frontier: [gpt-x]}\n"
    )
    open_database(db_url).dispose()
    typo = _run("kill", "deployment", "gpt-y", "--database", db_url, "--config", str(config))
    assert typo.exit_code == 1 and "has no deployment 'gpt-y'" in typo.stderr
    assert "known: gpt-x" in typo.stderr
    for kind, name in (("deployment", "gpt-x"), ("model", "gpt-4o"), ("provider", "openai"),
                       ("tier", "frontier")):  # fmt: skip
        ok = _run("kill", kind, name, "--database", db_url, "--config", str(config))
        assert ok.exit_code == 0, ok.output
    missing = tmp_path / "typo" / "ledger.db"
    lost = _run("kill", "deployment", "gpt-x", "--database", f"sqlite:///{missing}",
                "--config", str(config))  # fmt: skip
    assert lost.exit_code != 0 and "error:" in lost.stderr
    assert not missing.exists() and not missing.parent.exists()


def test_create_refuses_without_a_master_key_unless_forced(db_url: str, tmp_path: Path) -> None:
    no_master: dict[str, str | None] = {"LANEWAY_MASTER_KEY": None}
    refused = _run("keys", "create", "--name", "a", "--database", db_url, env=no_master)
    assert refused.exit_code == 1 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: LANEWAY_MASTER_KEY is not set")
    assert "accepts every request" in line and "--force" in line
    assert not (tmp_path / "cli.db").exists()  # refused before the database is touched
    forced = _run("keys", "create", "--name", "a", "--force", "--database", db_url, env=no_master)
    assert forced.exit_code == 0, forced.output
    assert forced.stdout.strip().startswith("lw-")
    assert "warning: LANEWAY_MASTER_KEY is not set" in forced.stderr
    listed = _run("keys", "list", "--database", db_url, env=no_master)
    assert listed.exit_code == 0 and "note: LANEWAY_MASTER_KEY is not set" in listed.stderr
    assert "note:" not in _run("keys", "list", "--database", db_url).stderr


def test_list_shows_revoked_keys_as_revoked_and_active_hides_them(db_url: str) -> None:
    created = _run("keys", "create", "--name", "gone", "--database", db_url)
    assert created.exit_code == 0, created.output
    assert _run("keys", "revoke", "gone", "--database", db_url).exit_code == 0
    wide: dict[str, str | None] = {"COLUMNS": "200"}
    table = _run("keys", "list", "--database", db_url, env=wide)
    assert table.exit_code == 0
    assert "No keys" not in table.stdout
    (row,) = [line for line in table.stdout.splitlines() if "gone" in line]
    assert "revoked 20" in row
    hidden = _run("keys", "list", "--active", "--database", db_url)
    assert hidden.stdout.startswith("No keys (1 revoked; drop --active to see them).")


def test_list_table_separates_thousands_and_prints_no_none(db_url: str) -> None:
    created = _run("keys", "create", "--name", "big", "--budget-usd", "12500", "--tpm",
                   "250000", "--database", db_url)  # fmt: skip
    assert created.exit_code == 0, created.output
    table = _run("keys", "list", "--database", db_url, env={"COLUMNS": "200"}).stdout
    assert "$0.00 of $12,500.00 per month" in table
    assert "tpm 250,000" in table
    assert "None" not in table
