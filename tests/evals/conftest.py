"""Fake candidates with planted behaviour, and a gateway over them (in-process)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from aiohttp import web

from laneway.evals import RunRecord, Suite, load_suite
from laneway.ledger import open_database
from laneway.server import Gateway, build_gateway
from laneway.settings import Settings
from laneway.testing import FakeOpenAI, FakeReply, FakeTurn, Fault

ENV = {"FAKE_KEY": "sk-fake"}
SCHEMA = {
    "type": "object",
    "required": ["answer"],
    "properties": {"answer": {"type": "integer"}},
}
SLOW_S = 0.15
_Q = re.compile(r"Q(\d+):")


def case_index(text: str) -> int:
    found = _Q.search(text)
    assert found is not None, text
    return int(found.group(1))


@dataclass(frozen=True)
class Plan:
    """The planted truth: which cases a fake gets wrong, answers in broken JSON, varies
    across repeats (right on even calls, wrong on odd ones) or answers slowly."""

    wrong: frozenset[int] = frozenset()
    bad_json: frozenset[int] = frozenset()
    varies: frozenset[int] = frozenset()
    slow: frozenset[int] = frozenset()

    def is_json(self, i: int) -> bool:
        return i % 2 == 0

    def value(self, i: int, call: int) -> int:
        wrong = call % 2 == 1 if i in self.varies else i in self.wrong
        return 2 * i + 1 if wrong else 2 * i

    def valid_json(self, i: int) -> bool:
        return self.is_json(i) and i not in self.bad_json

    def passes(self, i: int, call: int) -> bool:
        if self.is_json(i) and not self.valid_json(i):
            return False
        return self.value(i, call) == 2 * i


@dataclass
class PlantedResponder:
    plan: Plan
    calls: dict[int, int] = field(default_factory=dict)

    def __call__(self, turn: FakeTurn) -> FakeReply:
        i = case_index(turn.last_user_text)
        call = self.calls.get(i, 0)
        self.calls[i] = call + 1
        value = self.plan.value(i, call)
        if not turn.wants_json:
            return FakeReply(text=str(value))
        if i in self.plan.bad_json:
            return FakeReply(text=f"answer: {value}")
        return FakeReply(text=orjson.dumps({"answer": value}).decode())


class PlantedFake(FakeOpenAI):
    """A fake OpenAI upstream that answers the planted cases slowly."""

    def __init__(self, plan: Plan, *, slow_s: float = SLOW_S, **kwargs: Any) -> None:
        super().__init__(responder=PlantedResponder(plan), api_key=ENV["FAKE_KEY"], **kwargs)
        self.plan = plan
        self.slow_s = slow_s

    async def before_answer(self, request: web.Request, fault: Fault | None) -> None:
        await super().before_answer(request, fault)
        body = orjson.loads(await request.read())
        text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        found = _Q.search(text)
        if found and int(found.group(1)) in self.plan.slow:
            await asyncio.sleep(self.slow_s)


def planted_suite_yaml(n: int) -> str:
    lines = ["name: planted", "cases:"]
    for i in range(n):
        lines.append(f"  - id: q{i:03d}")
        lines.append(f'    prompt: "Q{i}: what is {i} plus {i}?"')
        lines.append(f"    numeric: {2 * i}")
        lines.append(f"    tags: [{'json' if i % 2 == 0 else 'text'}]")
        if i % 2 == 0:
            lines.append(f"    json_schema: {orjson.dumps(SCHEMA).decode()}")
    return "\n".join(lines) + "\n"


def write_planted_suite(tmp_path: Path, n: int) -> Suite:
    path = tmp_path / "planted.yaml"
    path.write_text(planted_suite_yaml(n), "utf-8")
    return load_suite(path)


def deployment(name: str, url: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": "gpt-4o",
        "provider": "openai",
        "api_base": url + "/v1",
        "api_key": "env:FAKE_KEY",
        "price": {"input_per_mtok": "1", "output_per_mtok": "2"},
    }


def settings_for(tmp_path: Path, fakes: dict[str, FakeOpenAI], **extra: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'laneway.db'}"},
            "deployments": [deployment(n, f.url) for n, f in fakes.items()],
            "retry": {"max_retries": 0, "base_delay": 0.0},
            **extra,
        }
    )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = open_database(f"sqlite:///{tmp_path / 'laneway.db'}")
    yield eng
    eng.dispose()


async def started_gateway(settings: Settings, engine: sa.Engine) -> Gateway:
    gateway = build_gateway(settings, env=ENV, engine=engine)
    await gateway.start()
    return gateway


@pytest.fixture
async def gateway_factory(engine: sa.Engine) -> AsyncIterator[Any]:
    opened: list[Gateway] = []

    async def make(settings: Settings) -> Gateway:
        gateway = await started_gateway(settings, engine)
        opened.append(gateway)
        return gateway

    yield make
    for gateway in opened:
        await gateway.aclose()


def ledger_sources(engine: sa.Engine, status: int = 200) -> list[str]:
    """``source`` of the ledger's request rows with ``status``."""
    query = sa.text("SELECT source FROM ledger WHERE attempt = 0 AND status = :s")
    with engine.connect() as conn:
        return list(conn.scalars(query, {"s": status}))


def record(engine: sa.Engine, run_id: str) -> RunRecord:
    return RunRecord(engine, run_id)
