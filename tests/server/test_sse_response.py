"""The SSE response renders the core's stream; a rendering failure (a bug in an encoder)
still ends the stream with an error event, and the core records it as an internal error."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

from starlette.types import Message

from laneway.errors import LanewayError
from laneway.gateway import RequestContext, build_gateway
from laneway.ledger import open_database
from laneway.providers import ChatRequest, StreamDelta, Usage
from laneway.server._chat import SSEResponse
from laneway.settings import Settings
from laneway.testing import FakeOpenAI
from tests.e2e.conftest import ENV, ledger_rows, openai_deployment


class _BrokenEncoder:
    """Renders the first delta, then fails on the next one."""

    def delta(self, delta: StreamDelta, first: bool) -> bytes:
        if not first:
            raise KeyError("a bug in the encoder")
        return b"data: first\n\n"

    def end(self, usage: Usage | None, finish: str, cost: Decimal | None) -> bytes:
        return b"data: end\n\n"

    def error(self, exc: LanewayError) -> bytes:
        return b"data: error " + exc.code.encode() + b"\n\n"


async def test_a_rendering_failure_ends_with_an_error_event_and_is_recorded(
    tmp_path: Path,
) -> None:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        settings = Settings.model_validate({"deployments": [openai_deployment("gpt", fake.url)]})
        engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
        gateway = build_gateway(settings, env=ENV, engine=engine)
        await gateway.start()
        request = ChatRequest(
            model="gpt", messages=({"role": "user", "content": "one two three"},), stream=True
        )
        ctx = RequestContext(
            request_id=gateway.new_request_id(),
            started=time.perf_counter(),
            requested_model="gpt",
            stream=True,
            request=request,
        )
        sent: list[Message] = []

        async def receive() -> Message:
            await asyncio.sleep(3600)  # the client stays
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        try:
            events = gateway.stream(ctx, request)
            first = await anext(events)
            assert isinstance(first, StreamDelta)
            response = SSEResponse(first, events, _BrokenEncoder(), [], ctx)
            await response({"type": "http"}, receive, send)
        finally:
            await gateway.aclose()
    bodies = [m.get("body") for m in sent if m["type"] == "http.response.body"]
    assert bodies[0] == b"data: first\n\n"
    assert bodies[-1] == b"data: error internal_error\n\n"
    summary = ledger_rows(tmp_path)[0]
    assert summary["status"] == 500
    assert summary["error_kind"] == "internal_error"
