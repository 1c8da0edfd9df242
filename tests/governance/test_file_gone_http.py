"""Over HTTP, the database file deleted under a running gateway: a key with a budget is
refused with 503 governance_unavailable and Retry-After before any upstream call (its
spend would have gone into the deleted file), while a key without limits is still
served and the ledger keeps its rows (/health/ready says the ledger is not writing)."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from laneway.governance._store import GovernanceStore
from laneway.ledger import open_database
from laneway.testing import FakeOpenAI
from tests.e2e.conftest import GatewayFactory, openai_deployment, start_gateway
from tests.e2e.test_governance_keys import master_key

__all__ = ["master_key", "start_gateway"]  # fixtures, used by name

HELLO = {"model": "primary", "messages": [{"role": "user", "content": "hello"}]}


def _keys(path: Path) -> tuple[str, str]:
    engine = open_database(f"sqlite:///{path}")
    try:
        store = GovernanceStore(engine)
        budgeted = store.create_key("team", budget_usd=Decimal("10"), period="day")[0]
        free = store.create_key("free")[0]
    finally:
        engine.dispose()
    return budgeted, free


@pytest.mark.usefixtures("master_key")
def test_a_budgeted_key_is_refused_once_the_file_is_gone(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    with FakeOpenAI(api_key="sk-upstream-secret") as vendor:
        gw = start_gateway(
            {
                "deployments": [openai_deployment("primary", vendor.url)],
                "ledger": {"flush_interval": 0.05},
            }
        )
        budgeted, free = _keys(path)
        root = gw.base_url.removesuffix("/v1")

        def post(key: str) -> httpx.Response:
            headers = {"authorization": f"Bearer {key}"}
            return client.post("/v1/chat/completions", json=HELLO, headers=headers)

        with httpx.Client(base_url=root, timeout=20) as client:
            assert post(budgeted).status_code == 200
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            time.sleep(0.2)  # the gateway looks at the file every 0.1 s
            called = len(vendor.received)
            refused = post(budgeted)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "governance_unavailable"
            assert refused.headers["retry-after"] == "5"
            assert len(vendor.received) == called  # refused before any upstream call
            assert post(free).status_code == 200

            def ledger() -> Any:
                return client.get("/health/ready").json()["ledger"]

            deadline = time.monotonic() + 10
            while ledger()["writing"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "deleted" in ledger()["error"]
        assert not path.exists()  # nothing recreated it empty
