"""Router v2 through the gateway: task-tagged requests route per task (header or
``metadata.laneway_task``, never forwarded), and a cascade escalates on an invalid JSON
answer, on ``finish_reason: length`` and on a low-confidence answer (log-probabilities)
— with both calls in the ledger and the check that fired in the audit."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from typer.testing import CliRunner

from laneway.cli import build_app
from tests.e2e.conftest import GatewayFactory

SAME_TEXT = "Please look at this case and tell me what to do next."


class ScriptedUpstream:
    """An OpenAI-compatible upstream whose answer (text, finish, log-probabilities) is
    chosen per request by ``script(body)``."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.bodies: list[dict[str, Any]] = []
        self.port = 0
        self._ready = threading.Event()

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        text, finish, logprob = self.script(body)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish,
            "logprobs": None,
        }
        if body.get("logprobs") and logprob is not None:
            words = text.split() or [""]
            choice["logprobs"] = {
                "content": [{"token": w, "logprob": logprob, "top_logprobs": []} for w in words]
            }
        usage = {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
        reply = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                 "choices": [choice], "usage": usage}  # fmt: skip
        return web.json_response(reply)

    def __enter__(self) -> ScriptedUpstream:
        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _deployment(name: str, base: str) -> dict[str, Any]:
    return {"name": name, "model": name, "provider": "openai_compatible", "api_base": base,
            "price": {"input_per_mtok": "1", "output_per_mtok": "2"}}  # fmt: skip


def _rows(path: Path, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if path.exists():
            with sqlite3.connect(path) as conn:
                conn.row_factory = sqlite3.Row
                try:
                    rows = [dict(r) for r in conn.execute("SELECT * FROM ledger ORDER BY id")]
                except sqlite3.OperationalError:
                    rows = []
            if len([r for r in rows if r["attempt"] == 0]) >= count:
                return rows
        time.sleep(0.05)
    raise AssertionError(f"ledger rows: {rows}")


@pytest.fixture(scope="module")
def task_router(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A router trained on outcomes where one wording needs the strong tier for the task
    'legal' and not for 'triage': only the task can tell them apart."""
    folder = tmp_path_factory.mktemp("router")
    data = folder / "outcomes.jsonl"
    with data.open("w") as f:
        for i in range(400):
            task = "legal" if i % 2 else "triage"
            row = {"id": f"r{i}", "prompt": f"{SAME_TEXT} ({i})", "task": task,
                   "outcomes": {"cheap": int(task == "triage"), "strong": 1}}  # fmt: skip
            f.write(json.dumps(row) + "\n")
    out = folder / "router"
    result = CliRunner().invoke(
        build_app(),
        [
            "router",
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--tiers",
            "cheap=cheap;strong=strong",
            "--no-verifier",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def upstreams() -> Iterator[tuple[ScriptedUpstream, ScriptedUpstream]]:
    def cheap(body: dict[str, Any]) -> tuple[str, str, float | None]:
        last = body["messages"][-1]["content"]
        if "JSON" in last:
            return "not json at all", "stop", -0.1
        if "long" in last:
            return "cut off in the midd", "length", -0.1
        if "unsure" in last:
            return "maybe it is this", "stop", -3.5
        return (
            '{"answer": "cheap"}' if body.get("response_format") else "cheap answer",
            "stop",
            -0.05,
        )

    def strong(body: dict[str, Any]) -> tuple[str, str, float | None]:
        return (
            ('{"answer": "strong"}' if body.get("response_format") else "strong answer"),
            "stop",
            None,
        )

    with ScriptedUpstream(cheap) as a, ScriptedUpstream(strong) as b:
        yield a, b


def test_tasks_route_per_task_and_are_not_forwarded(
    start_gateway: GatewayFactory,
    upstreams: tuple[ScriptedUpstream, ScriptedUpstream],
    task_router: Path,
    tmp_path: Path,
) -> None:
    cheap, strong = upstreams
    gw = start_gateway(
        {
            "deployments": [_deployment("cheap", cheap.base), _deployment("strong", strong.base)],
            "tiers": {"cheap": ["cheap"], "strong": ["strong"]},
            "router": {"path": str(task_router)},
            "ledger": {"flush_interval": 0.05},
        }
    )
    url = gw.base_url + "/chat/completions"
    messages = [{"role": "user", "content": f"{SAME_TEXT} (now)"}]
    triage = httpx.post(url, json={"model": "auto", "messages": messages},
                        headers={"x-laneway-task": "triage"})  # fmt: skip
    legal = httpx.post(
        url,
        json={
            "model": "auto",
            "messages": messages,
            "metadata": {"laneway_task": "legal", "team": "a"},
        },
    )
    assert triage.headers["x-laneway-deployment"] == "cheap", triage.headers
    assert legal.headers["x-laneway-deployment"] == "strong", legal.headers
    assert strong.bodies[-1]["metadata"] == {"team": "a"}  # the task is not forwarded
    bad = httpx.post(url, json={"model": "auto", "messages": messages},
                     headers={"x-laneway-task": "x" * 100})  # fmt: skip
    assert bad.status_code == 400
    rows = _rows(tmp_path / "ledger.db", 2)
    assert [r["task"] for r in rows if r["attempt"] == 0][:2] == ["triage", "legal"]


@pytest.mark.parametrize(
    ("content", "extra", "check"),
    [
        ("give JSON please", {"response_format": {"type": "json_schema", "json_schema": {
            "name": "a", "schema": {"type": "object", "required": ["answer"]}}}}, "json_schema"),
        ("write a long essay", {}, "finish_length"),
        ("I am unsure, guess", {}, "logprob"),
        ("plain question", {}, None),
    ],
)  # fmt: skip
def test_a_cascade_escalates_when_a_check_fires(
    start_gateway: GatewayFactory,
    upstreams: tuple[ScriptedUpstream, ScriptedUpstream],
    task_router: Path,
    tmp_path: Path,
    content: str,
    extra: dict[str, Any],
    check: str | None,
) -> None:
    cheap, strong = upstreams
    checks = ["json_schema", "finish_length", {"name": "logprob", "threshold": -1.0}]
    cascade = {"from": "cheap", "to": "strong", "checks": checks}
    gw = start_gateway(
        {
            "deployments": [_deployment("cheap", cheap.base), _deployment("strong", strong.base)],
            "tiers": {"cheap": ["cheap"], "strong": ["strong"]},
            "router": {"path": str(task_router), "cascades": {"default": cascade}},
            "ledger": {"flush_interval": 0.05},
        }
    )
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
    for stream in (False, True):
        response = httpx.post(gw.base_url + "/chat/completions", json={**body, "stream": stream})
        assert response.status_code == 200, response.text
        text = response.text
        if check is None:
            assert response.headers["x-laneway-deployment"] == "cheap"
            assert "cheap" in text and "strong" not in text
        else:
            assert response.headers["x-laneway-deployment"] == "strong"
            assert "strong" in text
            assert f"escalated:{check}" in response.headers["x-laneway-route-reason"]
        if stream:
            assert text.rstrip().endswith("data: [DONE]")
    assert cheap.bodies and cheap.bodies[-1].get("logprobs") is True  # asked for them
    rows = _rows(tmp_path / "ledger.db", 2)
    summary = next(r for r in rows if r["attempt"] == 0)
    audit = orjson.loads(summary["audit"])["cascade"]
    assert audit["escalated"] is (check is not None)
    assert audit["check"] == check
    if check is not None:  # both calls are in the ledger, each with its cost
        attempts = [
            r for r in rows if r["request_id"] == summary["request_id"] and r["attempt"] > 0
        ]
        assert [a["deployment"] for a in attempts] == ["cheap", "strong"]
        assert all(a["cost_nusd"] and a["cost_nusd"] > 0 for a in attempts)
        assert summary["tier"] == "strong"
