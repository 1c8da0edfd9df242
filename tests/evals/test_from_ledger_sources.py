"""``eval from-ledger`` samples client traffic only: a shadow copy (or any source but
``api``) is another deployment's answer to a client's request, not a request; the filter
was ``source != "eval"``, which let shadow rows with a logged prompt in."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from laneway.evals import load_suite, suite_from_ledger
from laneway.ledger import LEDGER
from tests.evals._cli import eval_cli
from tests.evals.test_ledger_and_outcomes import _ledger_row


def test_only_client_requests_are_sampled(engine: sa.Engine) -> None:
    rows = [
        _ledger_row(1),
        _ledger_row(2, source="shadow", mirror_of="req1"),
        _ledger_row(3, source="eval"),
        _ledger_row(4, source="canary"),  # a source this version does not write
    ]
    for row in rows:
        row.setdefault("mirror_of", None)  # every row has every key (one executemany)
    with engine.begin() as conn:
        conn.execute(LEDGER.insert(), rows)
    data = suite_from_ledger(engine, sample=10, name="s")
    assert [c["id"] for c in data["cases"]] == ["ledger-req1"]


def test_a_sample_too_large_for_a_yaml_suite_goes_to_a_cases_file(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``eval run`` refuses a YAML suite over MAX_SUITE_BYTES; ``from-ledger`` must not
    write one: past the limit the cases go to a JSONL file the suite names, and the suite
    loads with every case and its defaults (the judge rubric)."""
    import laneway.evals
    import laneway.evals._suite

    rows = [_ledger_row(i, prompt=_long_prompt(i)) for i in range(40)]
    with engine.begin() as conn:
        conn.execute(LEDGER.insert(), rows)
    url = str(engine.url)
    for module in (laneway.evals, laneway.evals._suite):
        monkeypatch.setattr(module, "MAX_SUITE_BYTES", 4000)
    out = tmp_path / "big.yaml"
    args = ["eval", "from-ledger", "--sample", "40", "--out", str(out), "--db", url]
    result = CliRunner().invoke(eval_cli(), args)
    assert result.exit_code == 0, result.output
    assert "big.cases.jsonl" in result.output
    assert (tmp_path / "big.cases.jsonl").stat().st_size > 4000 >= out.stat().st_size
    suite = load_suite(out)
    assert len(suite.cases) == 40
    assert all(c.rubric for c in suite.cases)
    small = tmp_path / "small.yaml"
    args = ["eval", "from-ledger", "--sample", "2", "--out", str(small), "--db", url]
    result = CliRunner().invoke(eval_cli(), args)
    assert result.exit_code == 0, result.output
    assert len(load_suite(small).cases) == 2
    assert not (tmp_path / "small.cases.jsonl").exists()


def _long_prompt(i: int) -> str:
    return orjson.dumps([{"role": "user", "content": f"prompt {i} " + "words " * 40}]).decode()
