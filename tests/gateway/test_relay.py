"""A relayed Responses request in the core without HTTP (``Gateway.relay`` /
``Gateway.relay_stream``): governed, answered by a Responses API deployment, accounted
from the upstream's usage and recorded as one ledger row; a refusal is recorded too."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from laneway.errors import UnsupportedParameter
from laneway.gateway import (
    CallOutcome,
    Gateway,
    RelayRequest,
    RequestContext,
    build_gateway,
    close_stream,
)
from laneway.ledger import open_database
from laneway.providers import ChatRequest
from laneway.settings import Settings
from laneway.testing import FakeOpenAIResponses
from tests.e2e.conftest import ENV, ledger_rows, openai_deployment

PRICE = {"input_per_mtok": "1.25", "output_per_mtok": "10"}


def _request(model: str, *, stream: bool = False) -> RelayRequest:
    doc: dict[str, Any] = {
        "model": model,
        "input": "alpha beta gamma",
        "include": ["reasoning.encrypted_content"],
        "stream": stream,
    }
    scan = ChatRequest(model=model, messages=({"role": "user", "content": "alpha beta gamma"},))
    return RelayRequest(doc, "'include' asks for reasoning", None, scan)


def _context(gateway: Gateway, request: RelayRequest) -> RequestContext:
    return RequestContext(
        request_id=gateway.new_request_id(),
        started=time.perf_counter(),
        requested_model=request.scan.model,
        stream=bool(request.doc["stream"]),
        request=request.scan,
    )


async def _gateway(tmp_path: Path, fake: FakeOpenAIResponses) -> Gateway:
    config = Settings.model_validate(
        {
            "deployments": [openai_deployment("gpt", fake.url, model="gpt-5.4", price=PRICE)],
            "tiers": {"reasoning": ["gpt"]},
        }
    )
    gateway = build_gateway(
        config, env=ENV, engine=open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
    )
    await gateway.start()
    return gateway


async def test_relay_answers_with_the_upstream_response_and_records_it(tmp_path: Path) -> None:
    with FakeOpenAIResponses(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        request = _request("tier:reasoning")
        ctx = _context(gateway, request)
        try:
            outcome = await gateway.relay(ctx, request)
        finally:
            await gateway.aclose()
    assert outcome.error is None
    assert outcome.response is not None
    assert outcome.response["object"] == "response"
    assert outcome.usage is not None
    assert outcome.usage.prompt_tokens > 0
    assert outcome.cost is not None
    assert outcome.cost > 0
    [row] = ledger_rows(tmp_path)
    assert row["request_id"] == ctx.request_id
    assert row["status"] == 200
    assert row["deployment"] == "gpt"
    assert row["prompt_tokens"] == outcome.usage.prompt_tokens


async def test_relay_stream_sends_the_events_and_records_on_close(tmp_path: Path) -> None:
    with FakeOpenAIResponses(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        request = _request("tier:reasoning", stream=True)
        ctx = _context(gateway, request)
        try:
            opened = await gateway.relay_stream(ctx, request)
            assert not isinstance(opened, CallOutcome)
            items = [item async for item in opened]
            await close_stream(opened)
        finally:
            await gateway.aclose()
    assert items
    assert all(isinstance(item, bytes) for item in items)
    assert b"response.completed" in b"".join(i for i in items if isinstance(i, bytes))
    [row] = ledger_rows(tmp_path)
    assert row["status"] == 200
    assert row["deployment"] == "gpt"
    assert row["prompt_tokens"] > 0


async def test_a_refused_relay_stream_is_a_recorded_outcome(tmp_path: Path) -> None:
    with FakeOpenAIResponses(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        request = _request("auto", stream=True)
        ctx = _context(gateway, request)
        try:
            opened = await gateway.relay_stream(ctx, request)
        finally:
            await gateway.aclose()
    assert isinstance(opened, CallOutcome)
    assert isinstance(opened.error, UnsupportedParameter)
    assert opened.status == 400
    assert fake.received == []  # refused before any call
    [row] = ledger_rows(tmp_path)
    assert row["status"] == 400


async def test_a_bug_in_a_relay_is_an_internal_error_recorded_as_such(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """An unexpected exception below the relay gives the client a readable 500 and a 500
    ledger row (the relay's own try/except recorded such a request as a 200)."""
    from laneway.gateway import _relay

    async def broken(*args: object) -> Any:
        raise RuntimeError("a bug with request data in its message")

    monkeypatch.setattr(_relay, "_create", broken)
    with FakeOpenAIResponses(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        request = _request("tier:reasoning")
        ctx = _context(gateway, request)
        try:
            outcome = await gateway.relay(ctx, request)
        finally:
            await gateway.aclose()
    assert outcome.status == 500
    assert outcome.error is not None
    assert outcome.error.code == "internal_error"
    assert "request data" not in outcome.error.message
    [row] = ledger_rows(tmp_path)
    assert row["status"] == 500
