"""Shadow traffic end to end: copies of answered requests go to a candidate off the
client's path, are ledgered as ``source=shadow`` with ``mirror_of``, governed like live
traffic (a sensitive request never reaches a closed candidate), and ``laneway shadow
report`` with a blind judge flags a candidate 10 points worse (80% vs 70% right, n=400)
and passes an identical one; ``shadow export`` feeds ``router train``."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from laneway.cli import build_app
from laneway.testing import FakeOpenAI, FakeReply, FakeTurn
from tests.e2e.conftest import ENV, GatewayFactory

N = 400


def _bucket(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10


def _right_below(limit: int) -> Any:
    def respond(turn: FakeTurn) -> FakeReply:
        ok = _bucket(turn.last_user_text) < limit
        return FakeReply(text=("RIGHT: " if ok else "WRONG: ") + turn.last_user_text[:20])

    return respond


def _judge(turn: FakeTurn) -> FakeReply:
    text = turn.last_user_text
    a = text.split("[Answer A]", 1)[1].split("[Answer B]", 1)[0]
    b = text.split("[Answer B]", 1)[1]
    winner = "tie"
    if "RIGHT" in a and "RIGHT" not in b:
        winner = "A"
    elif "RIGHT" in b and "RIGHT" not in a:
        winner = "B"
    return FakeReply(text=json.dumps({"reasoning": "checked the facts", "winner": winner}))


@pytest.fixture
def fakes() -> Iterator[dict[str, FakeOpenAI]]:
    with (
        FakeOpenAI(responder=_right_below(8)) as primary,
        FakeOpenAI(responder=_right_below(7)) as worse,
        FakeOpenAI(responder=_right_below(8)) as same,
        FakeOpenAI(responder=_judge) as judge,
    ):
        yield {"primary": primary, "worse": worse, "same": same, "judge": judge}


def _config(fakes: dict[str, FakeOpenAI], tmp_path: Path) -> dict[str, Any]:
    def deployment(name: str) -> dict[str, Any]:
        hosting = "serverless" if name in ("worse", "judge") else "self_hosted"
        return {"name": name, "model": f"{name}-model", "provider": "openai_compatible",
                "api_base": fakes[name].url + "/v1", "hosting": hosting,
                "price": {"input_per_mtok": "1", "output_per_mtok": "2"}}  # fmt: skip

    rule = {"name": "trial", "match": {"model": ["primary"]}, "sample_rate": 1.0,
            "candidates": ["worse", "same"], "daily_budget_usd": "5"}  # fmt: skip
    return {
        "database": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
        "deployments": [deployment(n) for n in ("primary", "worse", "same", "judge")],
        "shadow": {"rules": [rule]},
        "ledger": {"flush_interval": 0.05},
    }


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        value = conn.execute(sql).fetchone()[0]
    return int(value)


def test_shadow_report_flags_a_worse_candidate_and_passes_an_identical_one(
    start_gateway: GatewayFactory, fakes: dict[str, FakeOpenAI], tmp_path: Path
) -> None:
    config = _config(fakes, tmp_path)
    gw = start_gateway(config)
    url = gw.base_url + "/chat/completions"
    with httpx.Client(timeout=30) as client:
        for i in range(N):
            body = {"model": "primary", "messages": [{"role": "user", "content": f"question {i}"}]}
            response = client.post(url, json=body)
            assert response.status_code == 200
            assert response.json()["choices"][0]["message"]["content"].split(":")[0] in (
                "RIGHT",
                "WRONG",
            )  # the client's answer is the primary's
        body = {
            "model": "primary",
            "messages": [{"role": "user", "content": "mail ada@example.org"}],
        }
        assert client.post(url, json=body).status_code == 200
    db = tmp_path / "ledger.db"
    deadline = time.monotonic() + 60
    pairs = 2 * N + 1  # the sensitive request: to the private candidate only
    while _count(db, "SELECT count(*) FROM shadow_pairs") < pairs and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _count(db, "SELECT count(*) FROM shadow_pairs") == pairs
    assert not any("ada@example.org" in str(r.body) for r in fakes["worse"].received)
    assert any("ada@example.org" in str(r.body) for r in fakes["same"].received)
    stored = _count(db, "SELECT count(*) FROM shadow_pairs WHERE prompt LIKE '%ada@example%'")
    assert stored == 0  # the stored prompt is redacted
    echoed = _count(  # and so are the answers, which repeat it (the fakes echo the prompt)
        db,
        "SELECT count(*) FROM shadow_pairs WHERE primary_output LIKE '%ada@example%' "
        "OR candidate_output LIKE '%ada@example%'",
    )
    assert echoed == 0
    while _count(db, "SELECT count(*) FROM ledger WHERE source = 'shadow'") < pairs:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    orphans = _count(
        db,
        "SELECT count(*) FROM ledger s WHERE s.source = 'shadow' AND NOT EXISTS "
        "(SELECT 1 FROM ledger p WHERE p.request_id = s.mirror_of AND p.source = 'api')",
    )
    assert orphans == 0
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'laneway_shadow_copies_total{outcome="skipped_sensitive",rule="trial"} 1.0' in metrics
    gw.stop()

    path = tmp_path / "laneway.yaml"
    path.write_text(yaml.safe_dump(config))
    runner = CliRunner(env=ENV)
    worse = runner.invoke(
        build_app(),
        [
            "shadow",
            "report",
            "--candidate",
            "worse",
            "--judge",
            "judge",
            "--gate",
            "--margin",
            "0.05",
            "--config",
            str(path),
            "--json",
        ],
    )
    assert worse.exit_code == 1, worse.output
    report = json.loads(worse.stdout)["worse"]
    assert report["pairs"] == N  # the sensitive request was not sent to it
    judge = report["judge"]
    assert judge["wins"] == 0 and judge["losses"] > 20
    assert judge["p_value"] < 0.01
    assert report["gates"][0]["passed"] is False
    same = runner.invoke(
        build_app(),
        [
            "shadow",
            "report",
            "--candidate",
            "same",
            "--judge",
            "judge",
            "--gate",
            "--margin",
            "0.05",
            "--config",
            str(path),
        ],
    )
    assert same.exit_code == 0, same.output
    assert "PASS" in same.output
    # identical answers are ties without a judge call: only the differing pairs were judged
    assert len(fakes["judge"].received) == 2 * judge["losses"]

    out = tmp_path / "outcomes.jsonl"
    exported = runner.invoke(
        build_app(), ["shadow", "export", "--out", str(out), "--config", str(path)]
    )
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 * N + 1
    assert {tuple(sorted(r["outcomes"])) for r in rows} >= {("primary-model", "worse-model")}


def test_drift_alarms_are_exported_in_metrics(
    start_gateway: GatewayFactory, fakes: dict[str, FakeOpenAI], tmp_path: Path
) -> None:
    from laneway.evals import DriftReport, DriftSignal
    from laneway.evals._drift_store import save_report
    from laneway.ledger import open_database

    gw = start_gateway(_config(fakes, tmp_path))
    signal = DriftSignal("served_model", "changed", "gpt-a", "gpt-b", None, True)
    report = DriftReport("primary", "run-1", "run-2", 0.05, (signal,))
    save_report(open_database(f"sqlite:///{tmp_path / 'ledger.db'}"), report, "run-2")
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'laneway_drift_alarm{signal="served_model",target="primary"} 1.0' in metrics
