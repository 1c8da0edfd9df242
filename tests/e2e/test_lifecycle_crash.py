"""``laneway serve`` killed with SIGKILL mid-traffic, then started again on the same
ledger: the SQLite file is intact, no request is counted twice, the key's spend is what
was settled, and what a crash loses is the ledger rows of the writer's last interval and
the reservations of the requests in flight (held until their time-to-live)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest

from laneway.testing import FakeOpenAI
from tests.e2e.test_lifecycle_signals import MESSAGES, Served

MASTER = "master-for-crash-tests"


def _create_key(config: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "laneway.cli", "keys", "create", "--name", "team",
         "--budget-usd", "100", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return next(word for word in done.stdout.split() if word.startswith("lw-"))


def test_kill_9_then_restart_on_the_same_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANEWAY_MASTER_KEY", MASTER)
    price = {"input_per_mtok": "1000", "output_per_mtok": "1000"}
    with FakeOpenAI(model="gpt-4o", latency=0.05) as upstream:
        served = Served(tmp_path, upstream.url, {}, price=price)
        key = _create_key(tmp_path / "laneway.yaml")
        answered: list[int] = []
        stop = threading.Event()

        def traffic() -> None:
            client = openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0)
            with client:
                while not stop.is_set():
                    try:
                        client.chat.completions.create(model="gpt", messages=MESSAGES)
                    except openai.APIConnectionError:
                        return  # the gateway is gone
                    answered.append(1)

        threads = [threading.Thread(target=traffic) for _ in range(6)]
        try:
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while len(answered) < 60:
                assert time.monotonic() < deadline, "the traffic never got going"
                time.sleep(0.01)
            served.process.send_signal(signal.SIGKILL)
            served.process.wait(30)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            served.stop()

        with sqlite3.connect(served.db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            rows, distinct, cost = conn.execute(
                "SELECT count(*), count(DISTINCT request_id), sum(cost_nusd) FROM ledger"
            ).fetchone()
            spent, reserved = conn.execute(
                "SELECT spent_nusd, reserved_nusd FROM gov_spend"
            ).fetchone()
            held = conn.execute("SELECT count(*) FROM gov_reservations").fetchone()[0]
        assert rows == distinct <= len(answered)  # nothing twice; the last interval may be lost
        each = cost // rows  # every request here costs the same
        settled, rest = divmod(spent, each)
        assert rest == 0
        assert settled <= len(answered)
        # every request that reserved is settled or still holds its reservation (the ones
        # in flight, and answered ones whose settlement had not committed): none is free
        assert len(answered) <= settled + held <= len(answered) + len(threads)
        assert (reserved > 0) == (held > 0)

        again = Served(tmp_path, upstream.url, {}, price=price)
        try:
            client = openai.OpenAI(base_url=again.url + "/v1", api_key=key, max_retries=0)
            with client:
                for _ in range(5):
                    client.chat.completions.create(model="gpt", messages=MESSAGES)
            again.process.send_signal(signal.SIGTERM)
            again.process.wait(60)
        finally:
            again.stop()
    with sqlite3.connect(served.db) as conn:
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (rows + 5,)
        assert conn.execute("SELECT spent_nusd FROM gov_spend").fetchone() == (spent + 5 * each,)
