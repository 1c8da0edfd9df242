"""`drift check` on real gateway traffic: what the ledger holds for a failed request (a
summary row naming no deployment, and one attempt row per call) must count as a call of
the deployment, and a window with too few calls is said to be one, never an alarm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from laneway.evals import drift_from_ledger
from laneway.gateway import run_request
from laneway.ledger import LEDGER, open_database
from laneway.providers import ChatRequest
from laneway.server import build_gateway
from laneway.settings import Settings
from laneway.testing import FakeOpenAI, FakeReply, Fault, running
from tests.drift.test_drift import _drift, _ledger_rows
from tests.evals.conftest import ENV, deployment


class FailsOnAsk(FakeOpenAI):
    """Answers "ok", or HTTP 500 to a request whose text contains FAIL."""

    def __init__(self) -> None:
        super().__init__(responder=lambda _t: FakeReply(text="ok"), api_key=ENV["FAKE_KEY"])

    def take_fault(self) -> Fault | None:
        body: Any = self.received[-1].body if self.received else None
        if "FAIL" in str(body):
            return Fault("status", status=500)
        return super().take_fault()


async def _traffic(settings: Settings, engine: sa.Engine, texts: list[str]) -> None:
    gateway = build_gateway(settings, env=ENV, engine=engine)
    await gateway.start()
    try:
        for text in texts:
            request = ChatRequest(
                model="prod", messages=({"role": "user", "content": text},), stream=False
            )
            await run_request(gateway, request, source="api")
    finally:
        await gateway.aclose()


async def test_failed_requests_count_as_calls_of_their_deployment(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'l.db'}")
    with running(FailsOnAsk()) as (fake,):
        settings = Settings.model_validate(
            {
                "database": {"url": f"sqlite:///{tmp_path / 'l.db'}"},
                "deployments": [deployment("prod", fake.url)],
                "retry": {"max_retries": 0, "base_delay": 0.0},
                "circuit": {"failure_threshold": 1000},
            }
        )
        start = datetime.now(UTC)
        await _traffic(settings, engine, [f"hello {i}" for i in range(40)])
        split = datetime.now(UTC)
        await _traffic(settings, engine, [f"{'FAIL' if i % 2 else 'hi'} {i}" for i in range(40)])
        end = datetime.now(UTC) + timedelta(seconds=1)
    with engine.connect() as conn:  # what the gateway wrote for a failed request
        failed = conn.execute(
            sa.select(LEDGER.c.attempt, LEDGER.c.deployment).where(LEDGER.c.status != 200)
        ).all()
    assert sorted(failed) == [(0, None)] * 20 + [(1, "prod")] * 20
    report = drift_from_ledger(
        engine, "prod", window=end - split, baseline=split - start, now=end, save=False
    )
    engine.dispose()
    signals = {s.signal: s for s in report.signals}
    # It read "0.0% (0/20)": the 20 failed requests were not the deployment's calls.
    assert signals["error_rate"].recent == "50.0% (20/40)"
    assert signals["error_rate"].baseline == "0.0% (0/40)"
    assert signals["error_rate"].alarm


def test_a_window_with_too_few_calls_is_said_to_be_one_not_an_alarm(tmp_path: Path) -> None:
    # The home fixture of test_drift, by hand: a config and a database.
    import yaml

    (tmp_path / "laneway.yaml").write_text(
        yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path / 'l.db'}"}}), "utf-8"
    )
    engine = open_database(f"sqlite:///{tmp_path / 'l.db'}")
    now = datetime.now(UTC)
    _ledger_rows(engine, now - timedelta(days=5), 200)
    _ledger_rows(engine, now - timedelta(minutes=10), 3, errors=3, latency=400.0)
    engine.dispose()
    out = _drift(
        "check", "--deployment", "prod", "--window", "1h", "--baseline", "7d",
        "--config", str(tmp_path / "laneway.yaml"),
    )  # fmt: skip
    # 3 of 3 failing against 0 of 200 was an error_rate and latency alarm (p < 1e-4).
    assert out.exit_code == 0, out.output
    assert "DRIFT ALARM" not in out.stdout
    assert (
        "too few calls to test: 3 in the recent window (at least 20 in each); "
        "only model id and fingerprint changes checked" in out.stdout
    )
    assert out.stdout.splitlines()[-1] == "no model id or fingerprint change"  # not "no drift"
