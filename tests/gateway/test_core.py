"""The core without HTTP: one call per request (``complete`` / ``stream``), how each kind of
ending is accounted for, and one ledger row builder for requests and their calls."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from laneway.gateway import (
    CallOutcome,
    Gateway,
    RequestContext,
    build_gateway,
    close_stream,
)
from laneway.ledger import open_database
from laneway.providers import ChatRequest, StreamDelta
from laneway.settings import Settings
from laneway.testing import FakeOpenAI, Fault
from tests.e2e.conftest import ENV, ledger_rows, openai_deployment

PRICE = {"input_per_mtok": "1", "output_per_mtok": "2"}
MESSAGES = ({"role": "user", "content": "alpha beta gamma"},)


def _context(gateway: Gateway, request: ChatRequest) -> RequestContext:
    return RequestContext(
        request_id=gateway.new_request_id(),
        started=time.perf_counter(),
        requested_model=request.model,
        stream=request.stream,
        request=request,
    )


async def _gateway(tmp_path: Path, fake: FakeOpenAI, **settings: Any) -> Gateway:
    config = Settings.model_validate(
        {
            "deployments": [openai_deployment("gpt", fake.url, price=PRICE)],
            "tiers": {"frontier": ["gpt"]},
            **settings,
        }
    )
    gateway = build_gateway(
        config, env=ENV, engine=open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
    )
    await gateway.start()
    return gateway


async def test_complete_answers_prices_and_records_the_request(tmp_path: Path) -> None:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        request = ChatRequest(model="tier:frontier", messages=MESSAGES)
        ctx = _context(gateway, request)
        try:
            outcome = await gateway.complete(ctx, request)
        finally:
            await gateway.aclose()
    assert outcome.error is None
    assert outcome.status == 200
    assert outcome.result is not None
    assert outcome.result.content == "Echo: alpha beta gamma"
    assert outcome.priced
    assert outcome.cost is not None
    assert outcome.cost > 0
    [row] = ledger_rows(tmp_path)  # one call, one row: the summary is also the call's record
    assert row["request_id"] == ctx.request_id
    assert row["status"] == 200
    assert row["tier"] == "frontier"
    assert row["route_reason"] == "tier:frontier"
    assert outcome.usage is not None
    assert row["prompt_tokens"] == outcome.usage.prompt_tokens


async def test_stream_yields_deltas_then_one_outcome(tmp_path: Path) -> None:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        request = ChatRequest(model="gpt", messages=MESSAGES, stream=True)
        ctx = _context(gateway, request)
        try:
            items = [item async for item in gateway.stream(ctx, request)]
        finally:
            await gateway.aclose()
    *deltas, last = items
    assert deltas
    assert all(isinstance(d, StreamDelta) for d in deltas)
    assert isinstance(last, CallOutcome)
    assert last.error is None
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert last.ttft is not None
    text = "".join(d.content or "" for d in deltas if isinstance(d, StreamDelta))
    assert text == "Echo: alpha beta gamma"
    [row] = ledger_rows(tmp_path)
    assert row["status"] == 200
    assert row["stream"] in (1, True)
    assert not row["partial"]


async def test_a_stream_closed_after_its_first_delta_is_billed_as_partial(
    tmp_path: Path,
) -> None:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        fake.fail_next(Fault("slow", seconds=0.2))
        request = ChatRequest(model="gpt", messages=MESSAGES, stream=True)
        ctx = _context(gateway, request)
        events = gateway.stream(ctx, request)
        try:
            first = await anext(events)
            await close_stream(events)  # the client went away: the core's finally runs now
        finally:
            await gateway.aclose()
    assert isinstance(first, StreamDelta)
    rows = ledger_rows(tmp_path)
    summary = rows[0]
    assert summary["status"] == 499
    assert summary["partial"]
    assert summary["prompt_tokens"] > 0  # what was sent is billed (estimated: no usage came)
    assert summary["cost_nusd"] > 0
    [call] = rows[1:]
    assert call["partial"]
    assert call["error_kind"] == "client_closed"


async def test_a_failure_before_the_first_delta_is_the_first_item(tmp_path: Path) -> None:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        fake.fail_next(Fault("status", status=400, error_code="context_length_exceeded"))
        request = ChatRequest(model="gpt", messages=MESSAGES, stream=True)
        ctx = _context(gateway, request)
        events = gateway.stream(ctx, request)
        try:
            first = await anext(events)
            await close_stream(events)
        finally:
            await gateway.aclose()
    assert isinstance(first, CallOutcome)
    assert first.error is not None
    assert first.error.code == "context_length_exceeded"
    assert ledger_rows(tmp_path)[0]["error_kind"] == "context_length_exceeded"


async def _cancel_silent_call(
    gateway: Gateway, ctx: RequestContext, request: ChatRequest, *, client_gone: bool
) -> asyncio.Task[CallOutcome]:
    task = asyncio.ensure_future(gateway.complete(ctx, request))
    for _ in range(200):  # until the call is in flight upstream
        await asyncio.sleep(0.01)
        if ctx.trace.attempts:
            break
    ctx.client_gone = client_gone
    task.cancel()
    await asyncio.wait([task])
    return task


async def test_the_client_leaving_is_recorded_as_499_and_cancels(tmp_path: Path) -> None:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        fake.fail_next(Fault("silent"))
        request = ChatRequest(model="gpt", messages=MESSAGES)
        ctx = _context(gateway, request)
        try:
            task = await _cancel_silent_call(gateway, ctx, request, client_gone=True)
        finally:
            await gateway.aclose()
    assert task.cancelled()
    summary = ledger_rows(tmp_path)[0]
    assert summary["status"] == 499
    assert summary["partial"]
    assert summary["prompt_tokens"] > 0  # the call in flight is billed its prompt


async def test_any_other_cancellation_is_the_server_shutting_down(tmp_path: Path) -> None:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        fake.fail_next(Fault("silent"))
        request = ChatRequest(model="gpt", messages=MESSAGES)
        ctx = _context(gateway, request)
        try:
            task = await _cancel_silent_call(gateway, ctx, request, client_gone=False)
        finally:
            await gateway.aclose()
    assert not task.cancelled()  # the client still gets an answer it can read
    outcome = task.result()
    assert outcome.error is not None
    assert outcome.error.code == "shutting_down"
    assert ledger_rows(tmp_path)[0]["error_kind"] == "shutting_down"


async def test_one_builder_writes_the_request_row_and_each_calls_row(tmp_path: Path) -> None:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(
            tmp_path, fake, retry={"max_retries": 1, "base_delay": 0.0, "max_delay": 0.0}
        )
        fake.fail_next(Fault("status", status=500))
        request = ChatRequest(model="tier:frontier", messages=MESSAGES)
        ctx = _context(gateway, request)
        try:
            outcome = await gateway.complete(ctx, request)
        finally:
            await gateway.aclose()
    assert outcome.error is None
    summary, failed, served = ledger_rows(tmp_path)
    assert [r["attempt"] for r in (summary, failed, served)] == [0, 1, 2]
    assert summary["route_reason"] == "tier:frontier"
    assert summary["status"] == 200
    assert failed["status"] == 500
    assert failed["route_reason"] is None  # request-level facts are on the summary only
    assert served["status"] == 200
    assert served["tier"] == summary["tier"] == "frontier"


async def test_a_stream_is_drawn_for_shadow_once_routed_and_only_a_sampled_one_is_copied(
    tmp_path: Path,
) -> None:
    """The sample is drawn once the stream is routed: a rule at rate 0 never copies, a rule
    at rate 1 copies the whole streamed answer (kept only because it was drawn)."""
    import sqlite3

    rules = [
        {"name": "never", "match": {"model": ["gpt"]}, "sample_rate": 0.0,
         "candidates": ["cand"], "daily_budget_usd": "5"},
        {"name": "always", "match": {"model": ["gpt"]}, "sample_rate": 1.0,
         "candidates": ["cand"], "daily_budget_usd": "5"},
    ]  # fmt: skip
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake, FakeOpenAI(api_key=ENV["FAKE_KEY"]) as c:
        gateway = await _gateway(
            tmp_path,
            fake,
            deployments=[
                openai_deployment("gpt", fake.url, price=PRICE),
                openai_deployment("cand", c.url, price=PRICE),
            ],
            shadow={"rules": rules},
        )
        request = ChatRequest(model="gpt", messages=MESSAGES, stream=True)
        ctx = _context(gateway, request)
        try:
            assert gateway.shadow is not None
            items = [item async for item in gateway.stream(ctx, request)]
            assert [r.name for r in gateway.shadow.draw(ctx)] == ["always"]
            await asyncio.wait_for(gateway.shadow.drain(), 30)
        finally:
            await gateway.aclose()
        assert isinstance(items[-1], CallOutcome)
        assert len(c.received) == 1  # one copy: the 'always' rule's
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        pairs = conn.execute("SELECT rule, primary_output FROM shadow_pairs").fetchall()
    assert pairs == [("always", "Echo: alpha beta gamma")]
