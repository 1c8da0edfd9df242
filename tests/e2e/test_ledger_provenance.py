"""The ledger says which model really answered: the model id and ``system_fingerprint``
the upstream reported (what drift checks on traffic compare), streamed or not."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from openai import OpenAI

from laneway.testing import FakeOpenAI
from tests.e2e.conftest import GatewayFactory, openai_deployment


def test_served_model_and_fingerprint_are_ledgered(
    start_gateway: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("gpt", fake_openai.url)],
            "ledger": {"flush_interval": 0.05},
        }
    )
    with OpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as client:
        answer = client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "hi"}]
        )
        list(client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True
        ))  # fmt: skip
    assert answer.model == "gpt-4o-2024-05-13"  # the catalog id, as before
    deadline = time.monotonic() + 10
    rows: list[tuple[str, str, int]] = []
    while len(rows) < 2 and time.monotonic() < deadline:
        with sqlite3.connect(tmp_path / "ledger.db") as conn:
            rows = conn.execute(
                "SELECT served_model, fingerprint, stream FROM ledger ORDER BY id"
            ).fetchall()
        time.sleep(0.05)
    assert [r[0] for r in rows] == ["gpt-4o", "gpt-4o"]  # what the upstream said
    assert all(r[1] for r in rows)  # the fake sends a system_fingerprint
