"""`laneway serve --workers 2` as a real multi-process server: one ledger, one budget."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from openai import AsyncOpenAI

from laneway.testing import FakeOpenAI
from tests.e2e.conftest import rows_when

MASTER = "master-key-for-workers"
PRICE = Decimal("1000")  # USD per million tokens, so each request costs a few cents


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _laneway(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "laneway.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], FakeOpenAI]]:
    with FakeOpenAI() as upstream:
        config = {
            "database": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
            "deployments": [
                {
                    "name": "paid",
                    "model": "paid-model",
                    "provider": "openai_compatible",
                    "api_base": upstream.url + "/v1",
                    "price": {"input_per_mtok": str(PRICE), "output_per_mtok": str(PRICE)},
                }
            ],
        }
        path = tmp_path / "laneway.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**os.environ, "LANEWAY_MASTER_KEY": MASTER, "LANEWAY_CONFIG": str(path)}
        env.pop("LANEWAY_DATABASE_URL", None)
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "laneway.cli",
                "serve",
                "--workers",
                "2",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(url + "/health/live", timeout=2):  # noqa: S310
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(server.stderr.read() if server.stderr else "") from None
                    time.sleep(0.2)
            yield url, env, upstream
        finally:
            server.terminate()
            server.wait(20)
            if server.stderr is not None:
                server.stderr.close()


def test_budget_holds_under_concurrency_across_workers(
    served: tuple[str, dict[str, str], FakeOpenAI], tmp_path: Path
) -> None:
    url, env, upstream = served
    created = _laneway(
        "keys", "create", "--name", "race", "--budget-usd", "1.00", "--period", "day", env=env
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("lw-")
    outcomes = asyncio.run(_storm(url, key, 200))
    assert outcomes.get("budget_exceeded", 0) > 0
    assert outcomes.get("ok", 0) > 0
    assert set(outcomes) <= {"ok", "budget_exceeded"}, outcomes
    # each worker's ledger writer flushes in the background: wait for every answer's row
    # (written after its budget settlement), not for a guess at the flush interval
    rows = rows_when(tmp_path, lambda rows: len(_answered(rows)) >= outcomes["ok"])
    listed = _laneway("keys", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    record = next(k for k in json.loads(listed.stdout) if k["name"] == "race")
    spent = Decimal(str(record.get("spent_usd") or record.get("spend", {}).get("spent_usd")))
    # one request costs at most (prompt bytes / 3 + max_tokens) tokens at PRICE per million
    max_cost = Decimal(200 // 3 + 1 + 5) * PRICE / 1_000_000
    assert spent <= Decimal("1.00") + max_cost
    rows = _answered(rows)
    assert len(rows) == outcomes["ok"]
    ledger_spent = sum(Decimal(r["cost_nusd"]) for r in rows) / Decimal(10**9)
    assert ledger_spent == spent
    assert len(upstream.received) == outcomes["ok"]


def _answered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["attempt"] == 0 and r["status"] == 200]


async def _storm(url: str, key: str, n: int) -> dict[str, int]:
    client = AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)
    semaphore = asyncio.Semaphore(50)

    async def one() -> str:
        async with semaphore:
            try:
                await client.chat.completions.create(
                    model="paid", max_tokens=5, messages=[{"role": "user", "content": "hello"}]
                )
            except openai.APIStatusError as exc:
                body: Any = exc.body
                return str(body.get("code")) if isinstance(body, dict) else str(exc.status_code)
            return "ok"

    results = await asyncio.gather(*(one() for _ in range(n)))
    await client.close()
    counts: dict[str, int] = {}
    for result in results:
        counts[result] = counts.get(result, 0) + 1
    return counts
