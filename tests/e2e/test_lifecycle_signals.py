"""``laneway serve`` as a real process stopped with SIGTERM while requests are in flight,
called with the official ``openai`` and ``anthropic`` SDKs on all three client protocols:
within the grace period every request finishes and is recorded; past it each one gets a
503 ``shutting_down`` (a stream an error event, never a clean end) and its rows say so."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml

from laneway.testing import FakeOpenAI

WORDS = " ".join(["word"] * 12)
MESSAGES: list[Any] = [{"role": "user", "content": WORDS}]


class Served:
    """A ``laneway serve`` subprocess on a free port with a one-deployment config."""

    def __init__(
        self,
        tmp_path: Path,
        upstream: str,
        server: dict[str, Any],
        workers: int = 1,
        price: dict[str, str] | None = None,
    ) -> None:
        self.db = tmp_path / "ledger.db"
        config = {
            "database": {"url": f"sqlite:///{self.db}"},
            "server": server,
            "deployments": [{"name": "gpt", "model": "gpt-4o", "provider": "openai_compatible",
                             "api_base": upstream + "/v1", **({"price": price} if price else {})}],
        }  # fmt: skip
        (tmp_path / "laneway.yaml").write_text(yaml.safe_dump(config))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "laneway.cli", "serve", "--config",
                   str(tmp_path / "laneway.yaml"), "--port", str(self.port),
                   "--workers", str(workers)]  # fmt: skip
        self.log = (tmp_path / "serve.log").open("w")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health/live", timeout=2):  # noqa: S310
                    return
            except OSError:
                assert self.process.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "laneway serve never became live"
                time.sleep(0.1)

    def rows(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM ledger ORDER BY id")]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        self.log.close()


def _calls(url: str) -> dict[str, Callable[[], str]]:
    """One call per protocol and mode; each returns how it ended (a finish reason)."""
    oa = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)
    an = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0, timeout=60)

    def chat() -> str:
        return str(
            oa.chat.completions.create(model="gpt", messages=MESSAGES).choices[0].finish_reason
        )

    def chat_stream() -> str:
        ends = [c.choices[0].finish_reason for c in oa.chat.completions.create(
            model="gpt", messages=MESSAGES, stream=True) if c.choices]  # fmt: skip
        return str([e for e in ends if e])

    def message() -> str:
        return str(an.messages.create(model="gpt", max_tokens=100, messages=MESSAGES).stop_reason)

    def message_stream() -> str:
        with an.messages.stream(model="gpt", max_tokens=100, messages=MESSAGES) as stream:
            return str(stream.get_final_message().stop_reason)

    def response() -> str:
        return str(oa.responses.create(model="gpt", input=WORDS).status)

    def response_stream() -> str:
        with oa.responses.stream(model="gpt", input=WORDS) as stream:
            return str(stream.get_final_response().status)

    return {"chat": chat, "chat_stream": chat_stream, "message": message,
            "message_stream": message_stream, "response": response,
            "response_stream": response_stream}  # fmt: skip


def _in_flight(
    served: Served, upstream: FakeOpenAI
) -> tuple[dict[str, str], list[threading.Thread]]:
    """Start the six calls and return once the upstream has received all of them."""
    got: dict[str, str] = {}

    def run(name: str, call: Callable[[], str]) -> None:
        try:
            got[name] = call()
        except Exception as exc:  # what the client saw
            got[name] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=run, args=item) for item in _calls(served.url).items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(upstream.received) < len(threads):
        assert time.monotonic() < deadline, "the calls never reached the upstream"
        time.sleep(0.02)
    return got, threads


def _wait_until_refused(port: int) -> None:
    deadline = time.monotonic() + 20
    while not _refused(port):
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        time.sleep(0.05)


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(model="gpt-4o") as server:
        yield server


def test_sigterm_lets_requests_in_flight_finish_and_records_them(
    tmp_path: Path, upstream: FakeOpenAI
) -> None:
    upstream.latency = 0.8
    upstream.chunk_delay = 0.05
    served = Served(tmp_path, upstream.url, {"graceful_shutdown_s": 30})
    try:
        got, threads = _in_flight(served, upstream)
        served.process.send_signal(signal.SIGTERM)
        _wait_until_refused(served.port)  # a new connection during the drain is refused
        for thread in threads:
            thread.join(60)
        served.process.wait(60)
    finally:
        served.stop()
    assert got == {"chat": "stop", "chat_stream": "['stop']", "message": "end_turn",
                   "message_stream": "end_turn", "response": "completed",
                   "response_stream": "completed"}  # fmt: skip
    rows = served.rows()
    assert [r["status"] for r in rows] == [200] * 6  # flushed at shutdown


def test_past_the_grace_period_clients_get_503_and_rows_say_shutting_down(
    tmp_path: Path, upstream: FakeOpenAI
) -> None:
    upstream.latency = 5  # answers long after the grace period (0.5 s) ended
    served = Served(tmp_path, upstream.url, {"graceful_shutdown_s": 0.5})
    try:
        got, threads = _in_flight(served, upstream)
        served.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        served.process.wait(60)
    finally:
        served.stop()
    for name, seen in got.items():
        assert "503" in seen or "shutting down" in seen, (name, seen)
    rows = served.rows()
    assert len({r["request_id"] for r in rows}) == 6
    # every row, the call in flight's included, says the gateway stopped it (it used to
    # record that call as a 499 client_closed: the client had not gone anywhere)
    assert {(r["status"], r["error_kind"]) for r in rows} == {(503, "shutting_down")}, rows


def _chat(url: str) -> int:
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)
    with client:
        client.chat.completions.create(model="gpt", messages=MESSAGES)
    return 200


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def test_with_workers_new_connections_are_refused_during_the_drain(
    tmp_path: Path, upstream: FakeOpenAI
) -> None:
    """``--workers 2``: the supervisor kept its copy of the listening socket open until it
    exited, so during the drain a new connection was accepted and never answered (the
    client waited out its timeout) instead of refused."""
    upstream.latency = 8  # the drain lasts this long
    served = Served(tmp_path, upstream.url, {"graceful_shutdown_s": 30}, workers=2)
    got: list[int] = []
    try:
        call = threading.Thread(target=lambda: got.append(_chat(served.url)))
        call.start()
        deadline = time.monotonic() + 20
        while not upstream.received:
            assert time.monotonic() < deadline, "the call never reached the upstream"
            time.sleep(0.02)
        served.process.send_signal(signal.SIGTERM)
        while not _refused(served.port):
            assert call.is_alive(), "new connections were accepted during the whole drain"
            time.sleep(0.05)
        assert call.is_alive()  # refused while the request in flight was still draining
        call.join(60)
        served.process.wait(60)
    finally:
        served.stop()
    assert got == [200]
    assert [r["status"] for r in served.rows()] == [200]


def _workers_of(supervisor: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(supervisor)], capture_output=True, text=True)
    pids = {int(p) for p in found.stdout.split()}
    return {p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_a_killed_worker_is_replaced_and_the_other_keeps_serving(
    tmp_path: Path, upstream: FakeOpenAI
) -> None:
    served = Served(tmp_path, upstream.url, {}, workers=2)
    try:
        deadline = time.monotonic() + 30
        while len(workers := _workers_of(served.process.pid)) < 2:
            assert time.monotonic() < deadline, "two workers never started"
            time.sleep(0.1)
        assert [_chat(served.url) for _ in range(5)] == [200] * 5
        while len(served.rows()) < 5:  # flushed (a crash loses the last interval's rows)
            assert time.monotonic() < deadline, "the first rows were never written"
            time.sleep(0.05)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        assert [_chat(served.url) for _ in range(20)] == [200] * 20
        while len(_workers_of(served.process.pid) - {victim}) < 2:
            assert time.monotonic() < deadline + 30, "the killed worker was not replaced"
            time.sleep(0.1)
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(60)
    finally:
        served.stop()
    rows = served.rows()
    assert len(rows) == 25
    assert len({r["request_id"] for r in rows}) == 25
