"""The gateway's own upstream keys never reach a client, and a long sensitive-data scan
does not stall the event loop (``/health/live`` keeps answering)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from laneway.governance import Scanner
from laneway.governance._detectors import Detector, Hit
from laneway.server import create_app
from laneway.settings import Settings
from laneway.testing import FakeOpenAI, Fault, RunningGateway
from tests._quiet_gc import session_heap_frozen

GROQ_KEY = "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"
PLAIN_KEY = "sk-upstream-secret-AAAABBBBCCCCDDDD"  # no digit: not a known key shape alone
ENV = {"GROQ_KEY": GROQ_KEY, "PLAIN_KEY": PLAIN_KEY}
HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.fixture
def upstreams() -> Iterator[dict[str, FakeOpenAI]]:
    with (
        FakeOpenAI(api_key=GROQ_KEY, model="gpt-4o") as groq,
        FakeOpenAI(api_key=PLAIN_KEY, model="gpt-4o") as plain,
    ):
        yield {"GROQ_KEY": groq, "PLAIN_KEY": plain}


def _gateway(tmp_path: Path, upstreams: dict[str, FakeOpenAI]) -> RunningGateway:
    config: dict[str, Any] = {
        "database": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
        "deployments": [
            {
                "name": name.lower(),
                "model": "gpt-4o",
                "provider": "openai",
                "api_base": server.url + "/v1",
                "api_key": f"env:{name}",
            }
            for name, server in upstreams.items()
        ],
        "retry": {"max_retries": 0},
        "policies": {"sensitive": {"action": "allow"}},
    }
    return RunningGateway(create_app(Settings.model_validate(config), env=ENV)).start()


@pytest.fixture
def gateway(tmp_path: Path, upstreams: dict[str, FakeOpenAI]) -> Iterator[RunningGateway]:
    running = _gateway(tmp_path, upstreams)
    yield running
    running.stop()


def _post(gateway: RunningGateway, model: str, *, stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return httpx.post(gateway.base_url + "/chat/completions", json=body, timeout=30)


@pytest.mark.parametrize("name", ["GROQ_KEY", "PLAIN_KEY"])
@pytest.mark.parametrize("status", [400, 500])
@pytest.mark.parametrize("stream", [False, True])
def test_an_echoed_upstream_key_never_reaches_the_client(
    gateway: RunningGateway,
    upstreams: dict[str, FakeOpenAI],
    name: str,
    status: int,
    stream: bool,
) -> None:
    key = ENV[name]
    message = f"bad request: key {key} rejected; tk {HEX}; auth Bearer {key}"
    upstreams[name].fail_next(Fault("status", status=status, message=message))
    response = _post(gateway, name.lower(), stream=stream)
    assert response.status_code >= 400
    text = response.text
    assert "rejected" in text  # the message itself still reaches the client
    assert key not in text
    assert key[:12] not in text
    assert HEX not in text
    assert "[API_KEY]" in text


def test_a_key_cut_off_by_the_message_limit_is_scrubbed(
    gateway: RunningGateway, upstreams: dict[str, FakeOpenAI]
) -> None:
    # the adapter keeps the first 500 characters of an upstream message: the key's
    # first part ends the message the client would see
    message = "x" * 480 + " " + PLAIN_KEY
    upstreams["PLAIN_KEY"].fail_next(Fault("status", status=400, message=message))
    response = _post(gateway, "plain_key")
    assert response.status_code == 400
    assert PLAIN_KEY[:12] not in response.text
    assert "[API_KEY]" in response.text


def _slow_scanner(seconds: float) -> Scanner:
    def find(text: str) -> list[Hit]:
        if len(text) > 40_000:
            time.sleep(seconds)  # stands in for a long scan of a large body
        return []

    slow = Detector("slow", frozenset({"slow"}), 99, find)
    return Scanner(Settings.model_validate({}).policies.sensitive, extra=(slow,))


def test_health_answers_while_a_large_request_is_scanned(
    gateway: RunningGateway,
) -> None:
    app: Any = gateway.app
    app.state.gateway.governance.scanner = _slow_scanner(2.0)
    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                start = time.perf_counter()
                assert client.get(gateway.url + "/health/live").status_code == 200
                latencies.append(time.perf_counter() - start)
                time.sleep(0.05)

    body = {"model": "groq_key", "messages": [{"role": "user", "content": "hello " * 10_000}]}
    thread = threading.Thread(target=probe)
    with session_heap_frozen():  # a full collection of the session's heap is no stall of ours
        start = time.perf_counter()
        thread.start()
        try:
            response = httpx.post(gateway.base_url + "/chat/completions", json=body, timeout=30)
        finally:
            done.set()
            thread.join()
    assert response.status_code == 200
    assert time.perf_counter() - start >= 2.0  # the scan did run
    assert len(latencies) >= 5
    assert max(latencies) < 1.0, max(latencies)  # 2 s when the scan ran on the loop
