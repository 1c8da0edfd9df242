"""`drift run` stopped by SIGTERM (cron's or systemd's time limit): one line on stderr,
exit 143, the canary run saved as interrupted. It was killed at once, without a word,
leaving the run "running" and the answers of the last batch unsaved."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import sqlalchemy as sa

from laneway.ledger import open_database
from tests.drift.test_drift import Swappable, home, upstream
from tests.evals._cli import cli_process

__all__ = ["home", "upstream"]  # the fixtures this module uses


def test_sigterm_stops_a_canary_run_like_ctrl_c(home: Path, upstream: Swappable) -> None:
    args = ["drift", "run", "--suite", "canary.yaml", "--model", "prod", "--repeats", "20"]
    proc = cli_process(args, home)
    deadline = time.monotonic() + 60
    while len(upstream.received) < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert err.splitlines() == ["terminated: canary run stopped, nothing compared"]
    engine = open_database(f"sqlite:///{home / 'l.db'}")
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM eval_runs")).scalar_one()
        saved = conn.execute(sa.text("SELECT COUNT(*) FROM eval_results")).scalar_one()
        pinned = conn.execute(sa.text("SELECT COUNT(*) FROM drift_baselines")).scalar_one()
    engine.dispose()
    assert status == "interrupted"
    assert 8 <= saved < 600  # the calls answered before the signal (4 in flight at once)
    assert pinned == 0
