"""`drift check` compares one source of traffic with itself: client traffic by default,
shadow copies or eval calls with ``--source``. Eval, canary and shadow calls to a
deployment counted as its client traffic raised false alarms (an eval suite's longer,
failing answers) and hid real drift (a slower deployment under faster eval calls)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from laneway.cli import build_app
from laneway.errors import ConfigError
from laneway.evals import drift_from_ledger
from laneway.evals._drift_store import DriftCollector
from laneway.ledger import open_database
from tests.drift.test_drift import _drift, _ledger_rows, home, upstream

__all__ = ["home", "upstream"]  # fixtures used here

DAY = timedelta(days=1)


def _engine(home: Path) -> sa.Engine:
    return open_database(f"sqlite:///{home / 'l.db'}")


def _steady_clients(engine: sa.Engine, now: datetime, deployment: str = "prod") -> None:
    """200 client calls five days ago and 100 in the last 12 hours, alike."""
    _ledger_rows(engine, now - timedelta(days=5), 200, deployment=deployment)
    _ledger_rows(engine, now - timedelta(hours=12), 100, deployment=deployment)


def test_an_eval_suite_in_the_recent_window_is_not_client_drift(home: Path) -> None:
    engine = _engine(home)
    now = datetime.now(UTC)
    _steady_clients(engine, now)
    # This morning's eval suite: long answers, 10 of 60 failing.
    _ledger_rows(
        engine, now - timedelta(hours=3), 60, source="eval", completion_tokens=300, errors=10
    )
    engine.dispose()
    out = _drift("check", "--deployment", "prod", "--window", "1d", "--baseline", "7d")
    # It read output_length and error_rate ALARM (6.2% (10/160) against 0/200), exit 1.
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[-1] == "no drift"
    assert "client traffic (source=api)" in out.stdout
    as_json = _drift("check", "--deployment", "prod", "--json")
    report = json.loads(as_json.stdout)
    assert report["source"] == "client traffic (source=api)"
    rates = {s["signal"]: s["recent"] for s in report["signals"]}
    assert rates["error_rate"] == "0.0% (0/100)"


def test_client_drift_is_not_hidden_by_eval_calls(home: Path) -> None:
    engine = _engine(home)
    now = datetime.now(UTC)
    _ledger_rows(engine, now - timedelta(days=5), 200)
    _ledger_rows(engine, now - timedelta(hours=12), 100, latency=200.0)  # twice as slow
    # A canary suite every hour at the old speed: 300 calls that outnumber the clients'.
    _ledger_rows(engine, now - timedelta(hours=11), 300, source="eval", deployment="prod")
    engine.dispose()
    out = _drift("check", "--deployment", "prod", "--json")
    # The median of the mixed window was the eval calls' 100 ms: no alarm, exit 0.
    assert out.exit_code == 1, out.output
    alarms = {s["signal"] for s in json.loads(out.stdout)["signals"] if s["alarm"]}
    assert alarms == {"latency"}


def test_a_shadow_candidate_is_checked_on_its_shadow_copies(home: Path) -> None:
    engine = _engine(home)
    now = datetime.now(UTC)
    _steady_clients(engine, now)
    _ledger_rows(engine, now - timedelta(days=4), 100, source="shadow", deployment="cand")
    _ledger_rows(
        engine, now - timedelta(hours=10), 80, source="shadow", deployment="cand", errors=30
    )
    engine.dispose()
    # It serves no client: the default check says so and names the traffic it has.
    plain = _drift("check", "--deployment", "cand")
    assert plain.exit_code == 1, plain.output
    assert plain.stderr.splitlines() == [
        "error: deployment 'cand' has no logged client traffic (source=api) in the recent "
        "window; it has 80 shadow calls there (compare those with --source shadow)"
    ]
    shadow = _drift("check", "--deployment", "cand", "--source", "shadow", "--json")
    assert shadow.exit_code == 1, shadow.output  # 30 of 80 copies failed
    report = json.loads(shadow.stdout)
    assert report["target"] == "deployment:cand:shadow"
    assert report["source"] == "shadow copies (source=shadow)"
    assert {s["signal"] for s in report["signals"] if s["alarm"]} == {"error_rate"}
    # The gauges keep each source's check apart; client traffic keeps its plain target.
    assert _drift("check", "--deployment", "prod").exit_code == 0
    engine = _engine(home)
    registry = CollectorRegistry()
    registry.register(DriftCollector(engine))
    text = generate_latest(registry).decode()
    engine.dispose()
    assert 'laneway_drift_alarm{signal="error_rate",target="deployment:cand:shadow"} 1.0' in text
    assert 'laneway_drift_alarm{signal="error_rate",target="deployment:prod"} 0.0' in text
    status = _drift("status")
    targets = {line.split()[0] for line in status.stdout.splitlines()[1:]}
    assert targets == {"deployment:cand:shadow", "deployment:prod"}


def test_a_baseline_of_another_source_is_not_compared(home: Path) -> None:
    # Promoted last night: shadow copies before, client traffic since. Comparing the two
    # would be comparing a sample of another deployment's requests with this one's.
    engine = _engine(home)
    now = datetime.now(UTC)
    _ledger_rows(engine, now - timedelta(days=4), 100, source="shadow", deployment="cand")
    _ledger_rows(engine, now - timedelta(hours=10), 80, deployment="cand")
    engine.dispose()
    out = _drift("check", "--deployment", "cand")
    assert out.exit_code == 1
    assert out.stderr.splitlines() == [
        "error: deployment 'cand' has no logged client traffic (source=api) in the baseline "
        "window; it has 100 shadow calls there (compare those with --source shadow)"
    ]


@pytest.mark.parametrize("value", ["bogus", "canary", "API", ""])
def test_an_unknown_source_is_a_usage_error(home: Path, value: str) -> None:
    args = ["drift", "check", "--deployment", "prod", "--source", value]
    out = CliRunner().invoke(build_app(), args)
    assert out.exit_code == 2, out.output
    assert out.stderr.startswith("error: Invalid value for '--source'"), out.stderr
    assert "'api', 'shadow', 'eval'" in out.stderr
    engine = _engine(home)
    with pytest.raises(ConfigError, match="unknown traffic source"):
        drift_from_ledger(engine, "prod", window=DAY, baseline=7 * DAY, source=value)
    engine.dispose()


def test_a_canary_run_is_compared_with_canary_runs_and_is_not_client_traffic(
    home: Path,
) -> None:
    assert _drift("run", "--suite", "canary.yaml", "--model", "prod").exit_code == 0
    again = _drift("run", "--suite", "canary.yaml", "--model", "prod", "--json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["source"] == "canary runs of suite canary (the pinned baseline run)"
    assert (
        "canary runs of suite canary"
        in _drift("run", "--suite", "canary.yaml", "--model", "prod").stdout
    )
    # The 90 canary calls are in the ledger as eval calls of `prod`, not as its clients'.
    out = _drift("check", "--deployment", "prod", "--window", "1h")
    assert out.exit_code == 1
    assert out.stderr.startswith(
        "error: deployment 'prod' has no logged client traffic (source=api) in the recent "
        "window; it has 90 eval calls there"
    ), out.stderr


def test_the_cli_offers_the_sources_the_library_compares() -> None:
    from laneway.cli._drift import _Source
    from laneway.evals._canary import LEDGER_SOURCES

    assert [s.value for s in _Source] == list(LEDGER_SOURCES)
