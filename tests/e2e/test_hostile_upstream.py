"""A hostile (or broken) upstream that reports absurd token counts: the client still gets
its answer, billed as an estimate (never a 500, never a bill of billions), and the
ledger keeps every row (a count past SQLite's 64-bit integers dropped the row's whole
write batch)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from laneway.testing import FakeUpstreamServer
from tests.e2e.conftest import GatewayFactory, openai_deployment, rows_when

PRICE = {"input_per_mtok": "2.50", "output_per_mtok": "10.00"}
HI = [{"role": "user", "content": "hi"}]


class AbsurdUsage(FakeUpstreamServer):
    """Answers OpenAI chat and Anthropic Messages with ``usage`` holding ``counts`` (raw
    JSON text, so that numbers past 64 bits can be sent)."""

    counts = b"1"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self._chat),
            web.post("/v1/messages", self._messages),
        ]

    async def _chat(self, request: web.Request) -> web.Response:
        await self.record(request)
        body = (
            b'{"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": '
            b'[{"index": 0, "message": {"role": "assistant", "content": "ok"}, '
            b'"finish_reason": "stop"}], "usage": {"prompt_tokens": ' + self.counts + b", "
            b'"completion_tokens": ' + self.counts + b"}}"
        )
        return web.Response(body=body, content_type="application/json")

    async def _messages(self, request: web.Request) -> web.Response:
        await self.record(request)
        body = (
            b'{"id": "msg_x", "type": "message", "role": "assistant", "model": "m", '
            b'"content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", '
            b'"usage": {"input_tokens": ' + self.counts + b', "output_tokens": 3}}'
        )
        return web.Response(body=body, content_type="application/json")


@pytest.mark.parametrize(
    "counts",
    [b"1e300", b"18446744073709551615", b"10000000000000000"],
    ids=["float-1e300", "uint64-max", "1e16"],
)
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_absurd_token_counts_are_estimated_not_billed_or_fatal(
    start_gateway: GatewayFactory, tmp_path: Path, counts: bytes, provider: str
) -> None:
    with AbsurdUsage() as upstream:
        upstream.counts = counts
        if provider == "openai":
            deployment = openai_deployment("up", upstream.url, price=PRICE)
        else:
            deployment = {
                "name": "up",
                "model": "claude-sonnet-4-6",
                "provider": "anthropic",
                "api_base": upstream.url,
                "api_key": "env:FAKE_KEY",
                "price": PRICE,
            }
        gw = start_gateway({"deployments": [deployment], "ledger": {"flush_interval": 0.05}})
        body = {"model": "up", "messages": HI}
        answer = httpx.post(gw.base_url + "/chat/completions", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        usage = answer.json()["usage"]
        assert usage is None  # unknown, as when the upstream sends none (billed as an estimate)
        assert Decimal(answer.headers["x-laneway-cost-usd"]) < Decimal("0.01")
        upstream.counts = b"7"
        normal = httpx.post(gw.base_url + "/chat/completions", json=body, timeout=30)
        assert normal.status_code == 200
        rows = rows_when(tmp_path, lambda rows: len(rows) == 2)  # both requests recorded
    assert rows[0]["estimated"] in (1, True)
    assert rows[0]["prompt_tokens"] < 1000
    assert rows[1]["prompt_tokens"] == 7 and rows[1]["estimated"] in (0, False)


class OddTokenHeader(FakeUpstreamServer):
    """TEI's ``POST /embed`` answering with an ``x-compute-tokens`` header of ``value``."""

    value = "7"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/embed", self._embed)]

    async def _embed(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(
            body=b"[[0.5, 0.25]]",
            content_type="application/json",
            headers={"x-compute-tokens": self.value},
        )


@pytest.mark.parametrize(
    "value", ["\u00b2", "99999999999999999999999"], ids=["superscript", "huge"]
)
def test_a_tei_token_header_that_is_no_count_is_estimated(
    start_gateway: GatewayFactory, tmp_path: Path, value: str
) -> None:
    with OddTokenHeader() as tei:
        tei.value = value
        deployment = {
            "name": "tei",
            "model": "bge-m3",
            "provider": "openai_compatible",
            "vendor": "tei",
            "api_base": tei.url,
            "hourly_cost_usd": "0",
        }
        gw = start_gateway({"deployments": [deployment], "ledger": {"flush_interval": 0.05}})
        body = {"model": "tei", "input": "hello"}
        answer = httpx.post(gw.base_url + "/embeddings", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"][0]["embedding"] == [0.5, 0.25]
        rows = rows_when(tmp_path, lambda rows: len(rows) == 1)
    assert rows[0]["estimated"] in (1, True)
    assert 0 < rows[0]["prompt_tokens"] < 100


class RateLimitedWith(FakeUpstreamServer):
    """Every chat request answered 429 with the ``header`` (name, value) given."""

    header = ("retry-after", "1")

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/chat/completions", self._chat)]

    async def _chat(self, request: web.Request) -> web.Response:
        await self.record(request)
        body = b'{"error": {"message": "slow down", "type": "rate_limit_exceeded"}}'
        return web.Response(
            status=429, body=body, content_type="application/json", headers=dict([self.header])
        )


@pytest.mark.parametrize("header", ["retry-after", "retry-after-ms"])
def test_a_nan_retry_after_from_the_upstream_is_ignored(
    start_gateway: GatewayFactory, header: str
) -> None:
    with RateLimitedWith() as upstream:
        upstream.header = (header, "nan")
        gw = start_gateway(
            {
                "deployments": [openai_deployment("up", upstream.url)],
                "retry": {"max_retries": 1, "base_delay": 0.01},
            }
        )
        body = {"model": "up", "messages": HI}
        answer = httpx.post(gw.base_url + "/chat/completions", json=body, timeout=30)
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"]["code"] == "rate_limited"
    assert answer.headers["retry-after"] == "5"  # as when the upstream names none
    assert len(upstream.received) == 2  # retried once, as configured


class EndlessEvent(FakeUpstreamServer):
    """A stream whose second event never ends: one content chunk, then ``data: `` and
    ``total`` bytes with no blank line; ``written`` counts what reached the socket before
    the reader left."""

    total = 40 * 1024 * 1024
    written = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/chat/completions", self._chat), web.post("/v1/messages", self._chat)]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        if request.path == "/v1/messages":
            await response.write(
                b'event: message_start\ndata: {"type": "message_start", "message": {"id": "m", '
                b'"type": "message", "role": "assistant", "model": "m", "content": [], '
                b'"usage": {"input_tokens": 3, "output_tokens": 0}}}\n\n'
                b'event: content_block_start\ndata: {"type": "content_block_start", "index": 0, '
                b'"content_block": {"type": "text", "text": ""}}\n\n'
                b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
                b'"delta": {"type": "text_delta", "text": "hi"}}\n\n'
            )
        else:
            await response.write(
                b'data: {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": '
                b'"m", "choices": [{"index": 0, "delta": {"content": "hi"}, '
                b'"finish_reason": null}]}\n\n'
            )
        await response.write(b"data: ")
        piece = b"a" * 65536
        try:
            while self.written < self.total:
                await response.write(piece)
                self.written += len(piece)
        except (ConnectionError, RuntimeError):  # the reader left
            return response
        await response.write_eof()
        return response


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_event_that_never_ends_is_cut_off_not_buffered(
    start_gateway: GatewayFactory, tmp_path: Path, provider: str
) -> None:
    """An upstream that streams one event without end (a broken or hostile server) must
    not fill the gateway's memory: past the event size limit (16 MiB) the stream ends
    with an error event and the upstream connection is dropped."""
    with EndlessEvent() as upstream:
        if provider == "openai":
            deployment = openai_deployment("up", upstream.url, price=PRICE)
        else:
            deployment = {
                "name": "up",
                "model": "claude-sonnet-4-6",
                "provider": "anthropic",
                "api_base": upstream.url,
                "api_key": "env:FAKE_KEY",
            }
        gw = start_gateway({"deployments": [deployment], "ledger": {"flush_interval": 0.05}})
        body = {"model": "up", "messages": HI, "stream": True}
        with httpx.stream("POST", gw.base_url + "/chat/completions", json=body, timeout=60) as r:
            assert r.status_code == 200
            lines = [line for line in r.iter_lines() if line.startswith("data: ")]
        rows = rows_when(tmp_path, lambda rows: len(rows) >= 1)
        written = upstream.written
    assert '"code":"upstream_error"' in lines[-1]
    assert written < 32 * 1024 * 1024  # cut off near 16 MiB, not read to its 40 MiB
    assert rows[0]["status"] == 502 and rows[0]["partial"] in (1, True)
