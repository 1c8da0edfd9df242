"""``laneway advise`` / ``laneway tco`` as a new user meets them: ``--help`` names what
``--set`` takes, ``tco`` prints the per-million figures the source articles quote, and
options that do nothing where they are given are a wrong command line (exit 2, one
``error:`` line)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from laneway.advisor import default_assumptions
from laneway.cli import build_app

W27 = Path(__file__).parent / "workloads" / "w27_rtsn_1m_tokens_day.yaml"


def _run(*args: str) -> Result:
    return CliRunner().invoke(build_app(), list(args))


def _usage_error(result: Result, *words: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for word in words:
        assert word in err, (word, err)


@pytest.mark.parametrize("command", ["advise", "tco"])
def test_help_lists_every_assumption_set_takes(command: str) -> None:
    result = _run(command, "--help")
    assert result.exit_code == 0, result.output
    assert "--set NAME=VALUE" in result.output
    listed = result.output.split("Assumptions --set can override", 1)[1]
    names = set(re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b|\bgpu\b", listed))
    assert names == {a.name for a in default_assumptions()}


def test_tco_prints_gpu_rent_per_million_output_tokens_beside_the_total() -> None:
    # Digital Applied, Apr 2026: "A reserved 8xH100 node ... approximately $16-$20 per hour.
    # For a 100B MoE model at reasonable utilization, that maps to roughly $0.50 to $1.00 per
    # million output tokens": $18/h = $2.25/GPU-hour, Nemotron 3 Super (the article's 120B
    # MoE) at 2B tokens/day, a quarter of them output.
    args = ("tco", "--tokens-per-day", "2e9", "--model", "nemotron-3-super-120b")
    args += ("--gpu-hourly", "2.25")
    data = json.loads(_run(*args, "--json").stdout)
    assert data["gpus"] == 8
    rent = Decimal(data["gpu_rent_usd_per_million_output_tokens"])
    # 8 x $2.25 x 24 x 30 = $12,960 a month over 0.5B x 30 output tokens
    assert rent == Decimal("0.8640") and Decimal("0.50") <= rent <= Decimal("1.00")
    assert data["usd_per_million_output_tokens"] == "2.2513"  # ops staff and updates too
    assert data["usd_per_million_tokens"] == "0.5628"
    text = _run(*args).stdout
    assert "per million output tokens: GPU rent $0.86, total $2.25" in text, text
    assert "per million tokens (input and output): total $0.56" in text, text


def test_tco_without_output_tokens_says_so() -> None:
    args = ("tco", "--tokens-per-day", "1e9", "--model", "llama-3.3-70b", "--output-share", "0")
    data = json.loads(_run(*args, "--json").stdout)
    assert data["gpu_rent_usd_per_million_output_tokens"] is None
    assert data["usd_per_million_tokens"] is not None
    assert "no output tokens" in _run(*args).stdout


def test_options_that_do_nothing_where_given_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(W27.read_text("utf-8"))["workload"]))
    for extra in (["--ops", "full"], ["--since", "7d"]):
        _usage_error(_run("advise", str(path), *extra), "--from-ledger", "ops_capacity")
    _usage_error(_run("advise", str(path), "--seed-check"), "--seed-check")
    _usage_error(_run("advise", "--from-ledger", "--seed-check"), "--seed-check")
    # with --from-ledger they are read (here the database is missing: exit 1)
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    result = _run("advise", "--from-ledger", "--ops", "full", "--since", "7d", "--db", missing)
    assert result.exit_code == 1, result.output
