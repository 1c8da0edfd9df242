"""End-to-end fixtures: fake upstream servers speaking real wire protocols, and the
gateway running on a real loopback port, called with the official ``openai`` SDK."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from laneway.ledger import open_database
from laneway.server import create_app
from laneway.settings import Settings
from laneway.testing import FakeAnthropic, FakeGemini, FakeOpenAI, RunningGateway

ENV = {"FAKE_KEY": "sk-upstream-secret", "OTHER_KEY": "sk-other-secret"}

GatewayFactory = Callable[..., RunningGateway]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"], model="gpt-4o") as server:
        yield server


@pytest.fixture
def fake_backup() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(model="llama-3.1-70b-instruct") as server:
        yield server


def openai_deployment(
    name: str, api_base: str, model: str = "gpt-4o", **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "provider": "openai",
        "api_base": api_base + "/v1",
        "api_key": "env:FAKE_KEY",
        **extra,
    }


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    running: list[RunningGateway] = []

    def start(config: dict[str, Any], **kwargs: Any) -> RunningGateway:
        config = {"database": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}, **config}
        settings = Settings.model_validate(config)
        app = create_app(settings, env=ENV, **kwargs)
        gateway = RunningGateway(app).start()
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


def ledger_rows(tmp_path: Path) -> list[dict[str, Any]]:
    engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
    with engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("SELECT * FROM ledger ORDER BY id")).mappings().all()
    engine.dispose()
    return [dict(r) for r in rows]


@pytest.fixture
def client_factory() -> Iterator[Any]:
    clients: list[OpenAI] = []

    def make(base_url: str) -> OpenAI:
        client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def rows_when(tmp_path: Path, ready: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    """The ledger's rows once ``ready`` says so (the writer flushes in the background)."""
    path = tmp_path / "ledger.db"
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if path.exists():
            with sqlite3.connect(path) as conn:
                conn.row_factory = sqlite3.Row
                try:
                    rows = [dict(r) for r in conn.execute("SELECT * FROM ledger ORDER BY id")]
                except sqlite3.OperationalError:  # table not created yet
                    rows = []
            if ready(rows):
                return rows
        time.sleep(0.05)
    raise AssertionError(f"ledger never got the expected rows: {rows}")


Upstreams = tuple[FakeOpenAI, FakeAnthropic, FakeGemini]


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    """One fake upstream per wire format: OpenAI, Anthropic, Gemini."""
    with (
        FakeOpenAI(api_key="sk-upstream-secret", model="gpt-4o") as openai_fake,
        FakeAnthropic(api_key="sk-upstream-secret") as claude,
        FakeGemini(api_key="sk-other-secret") as gemini,
    ):
        yield openai_fake, claude, gemini


def three_formats(
    upstreams: Upstreams, price: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Deployments ``gpt``, ``claude`` and ``gemini`` on the three fakes."""
    openai_fake, claude, gemini = upstreams
    gpt = openai_deployment("gpt", openai_fake.url, **({"price": price} if price else {}))
    return [
        gpt,
        {"name": "claude", "model": "claude-sonnet-4-6", "provider": "anthropic",
         "api_base": claude.url, "api_key": "env:FAKE_KEY"},
        {"name": "gemini", "model": "gemini-2.5-pro", "provider": "gemini",
         "api_base": gemini.url, "api_key": "env:OTHER_KEY"},
    ]  # fmt: skip
