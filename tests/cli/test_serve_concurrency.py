"""``laneway serve`` limits the connections and requests each worker holds at once
(uvicorn's ``limit_concurrency``, default 2048): past it a client gets 503 and retries,
instead of a flood growing the worker's memory and open files without end."""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn
import yaml
from typer.testing import CliRunner

from laneway.cli import build_app
from laneway.cli._serve import MAX_CONCURRENCY
from laneway.server import create_app
from laneway.settings import ServerSettings, Settings
from laneway.testing import FakeOpenAI, Fault


def _settings(api_base: str, tmp_path: Path) -> dict[str, Any]:
    """One OpenAI-compatible deployment: starts without keys or an embedded model."""
    deployment = {"name": "up", "model": "gpt-4o", "provider": "openai_compatible"}
    return {
        "deployments": [{**deployment, "api_base": api_base}],
        "database": {"url": f"sqlite:///{tmp_path}/l.db"},
    }


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "laneway.yaml"
    path.write_text(yaml.safe_dump(_settings("http://127.0.0.1:9/v1", tmp_path)))
    return path


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``uvicorn.run`` was called with (it returns at once)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    return calls


@pytest.fixture
def low_file_limit() -> Iterator[int]:
    """This process's soft limit on open files set to 1024 (a common default), restored."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip("the hard limit on open files is too low to lift the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _wait(ready: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _serve(*args: str) -> Any:
    env: dict[str, str | None] = {"LANEWAY_CONFIG": None, "LANEWAY_DATABASE_URL": None}
    return CliRunner().invoke(build_app(), ["serve", *args], env=env)


def test_help_names_the_limit_and_the_503() -> None:
    result = CliRunner().invoke(build_app(), ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "--max-concurrency" in text
    assert "503 Service Unavailable" in text and "Default 2048" in text


def test_the_limit_reaches_uvicorn_and_lifts_the_open_file_limit(
    config: Path, started: list[dict[str, Any]], low_file_limit: int
) -> None:
    result = _serve("--config", str(config), "--log-level", "warning")
    assert result.exit_code == 0, result.stderr
    assert started[0]["limit_concurrency"] == 2048
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == min(low_file_limit, 2048 + 1152)  # the clients and the rest of a worker
    result = _serve("--config", str(config), "--max-concurrency", "64")
    assert result.exit_code == 0, result.stderr
    assert started[1]["limit_concurrency"] == 64


def test_the_config_sets_the_limit_and_the_option_overrides_it(
    tmp_path: Path, started: list[dict[str, Any]]
) -> None:
    settings = _settings("http://127.0.0.1:9/v1", tmp_path) | {"server": {"max_concurrency": 100}}
    config = tmp_path / "limited.yaml"
    config.write_text(yaml.safe_dump(settings))
    assert _serve("--config", str(config)).exit_code == 0
    assert _serve("--config", str(config), "--max-concurrency", "50").exit_code == 0
    assert [call["limit_concurrency"] for call in started] == [100, 50]
    assert ServerSettings().max_concurrency == MAX_CONCURRENCY  # --help names the default


def test_a_limit_below_16_is_a_usage_error(config: Path, started: list[dict[str, Any]]) -> None:
    result = _serve("--config", str(config), "--max-concurrency", "3")
    assert result.exit_code == 2
    assert started == []


def test_a_request_past_the_limit_gets_a_503_the_sdk_can_retry(tmp_path: Path) -> None:
    """The gateway under uvicorn with a limit of 2: one slow request holds a connection,
    so the next one (a second connection) is refused at once with 503; once the slow one
    is done, the SDK's own retry gets through."""
    with FakeOpenAI() as upstream:
        upstream.fail_next(Fault("stall", seconds=2.0))
        settings = Settings.model_validate(_settings(upstream.url + "/v1", tmp_path))
        config = uvicorn.Config(
            create_app(settings), log_level="error", lifespan="on", limit_concurrency=2
        )
        server = uvicorn.Server(config)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        _wait(lambda: server.started)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        hi = [{"role": "user", "content": "hi"}]
        try:
            with ThreadPoolExecutor(1) as pool:
                slow_client = openai.OpenAI(base_url=base, api_key="x", max_retries=0)
                slow = pool.submit(slow_client.chat.completions.create, model="up", messages=hi)
                _wait(lambda: bool(upstream.received))  # the slow one holds its connection
                client = openai.OpenAI(base_url=base, api_key="x", max_retries=0)
                with pytest.raises(openai.InternalServerError) as refused:
                    client.chat.completions.create(model="up", messages=hi)  # type: ignore[arg-type]
                assert slow.result(timeout=30).choices[0].message.content == "Echo: hi"
                slow_client.close()  # its idle keep-alive connection would count too
                client.close()
                retrying = openai.OpenAI(base_url=base, api_key="x", max_retries=3)
                answer = retrying.chat.completions.create(model="up", messages=hi)  # type: ignore[arg-type]
                retrying.close()
        finally:
            server.should_exit = True
            thread.join(15)
            sock.close()
    assert refused.value.status_code == 503
    assert answer.choices[0].message.content == "Echo: hi"  # served once under the limit
